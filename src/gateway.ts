// Assembles the gateway from its parts and serves HTTP: operational
// endpoints, the model API (through the pipeline), and OpenAI-style errors
// for everything else. Owns graceful shutdown.
import cluster from 'node:cluster';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { finished } from 'node:stream/promises';
import { handleApprovalsApi, isApprovalsApiPath } from './approvals/api.js';
import { Approvals } from './approvals/approvals.js';
import { openReviewStore, redactRequesterReviews } from './approvals/review-store.js';
import { AuditTrail } from './audit/audit-trail.js';
import { handleSessionsApi, isSessionsApiPath } from './audit/api.js';
import type { Config, ConnectionConfig } from './config/schema.js';
import { asGatewayError, GatewayError, methodNotAllowed } from './http/errors.js';
import { clientRequestId, newRequestId } from './http/request-id.js';
import { retryHintForRefusal } from './http/retry-hint.js';
import { errorShapeFor, sendError, sendJson } from './http/send.js';
import { IdentityServices } from './identity/identity-services.js';
import { handleServiceKeysApi, isServiceKeysApiPath } from './identity/service-keys-api.js';
import { accessLogger, createLogger, pathForLog, type Logger } from './ops/logger.js';
import { GatewayMetrics } from './ops/metrics.js';
import { idleReclaim, type IdleTrigger } from './ops/idle-reclaim.js';
import { tooOpen } from './ops/private-files.js';
import { StoreOutages, type StoreName } from './ops/store-outages.js';
import { MetricsListener, serveMetrics } from './ops/metrics-endpoint.js';
import type { RequestContext } from './pipeline/context.js';
import { authenticate } from './pipeline/authenticate.js';
import { endRecording, endState } from './pipeline/record.js';
import { settleUsage } from './pipeline/limit.js';
import { handleListModels, handleModelCall } from './pipeline/index.js';
import { handleOllamaApi, OLLAMA_INFO_PATHS } from './pipeline/ollama-api.js';
import type { GatewayServices } from './pipeline/services.js';
import { MODEL_ENDPOINTS } from './protocol/endpoints.js';
import { AgentTransport } from './proxy/agent-transport.js';
import { DirectTransport } from './proxy/direct-transport.js';
import { AgentHub, isAgentServed } from './agent/hub.js';
import { AgentKeys } from './agent/registry.js';
import { AgentRouter, routingPlan, type WorkerSlot } from './agent/router.js';
import { openAgentKeyStore } from './agent/key-store.js';
import { ModelRoutes } from './proxy/model-routes.js';
import { GuardrailEngine } from './policy/guardrail-engine.js';
import type { Transport } from './proxy/transport.js';
import { handlePolicyApi, isPolicyApiPath } from './web/policy-api.js';
import { WebRoutes } from './web/web-routes.js';
import { reloadServices, type ReloadOutcome } from './config/reload.js';
import { Tracing } from './ops/tracing.js';
import { createLimiter } from './usage/create-limiter.js';
import { handleUsageApi, isUsageApiPath } from './usage/api.js';
import { LIMIT_REFUSAL_CODES } from './usage/limiter.js';

export interface GatewayOptions {
  logger?: Logger;
  /** Set in a worker of `gateway --workers N`: workers route agent requests to each other as instances do. */
  worker?: WorkerSlot;
}

export class Gateway {
  /** The services of the configuration in force; a reload swaps the whole snapshot at once (config/reload.ts). */
  private current: GatewayServices;
  readonly server: Server;
  /** Transports a reload replaced, closed once the requests that may use them are done. */
  private readonly retiring = new Set<Transport>();
  /** Where /metrics is served when `server.metrics.listen` moves it off the main port. */
  metricsUrl: string | undefined;
  private metricsListener: MetricsListener | undefined;
  private readonly inFlight = new Set<RequestContext>();
  private readonly web: WebRoutes;
  /** `/readyz` reports draining: set on shutdown, before new requests are refused. */
  private draining = false;
  /** Agent tunnels, when a connection is served `via: agent`. */
  private agentHub: AgentHub | undefined;
  /** Shutdown past its drain notice: new model calls are refused. */
  private refusingNew = false;
  /** Storage outages, logged once at their start and once at their end. */
  readonly outages: StoreOutages;
  /** After a burst, once idle: this thread's heap and the store threads' given back (ops/idle-reclaim.ts). */
  private readonly idle: IdleTrigger;
  /** The access log: one line per request (`finish`), see accessLogger. */
  private readonly accessLog: Logger;

  constructor(config: Config, options: GatewayOptions = {}) {
    const log = options.logger ?? createLogger(config.logging.level);
    this.accessLog = accessLogger(log);
    const metrics = new GatewayMetrics({ subjectLabel: config.usage.metrics_subject_label });
    this.outages = new StoreOutages(log, metrics);
    const agentHub = (this.agentHub = config.agents ? new AgentHub({ keys: lazyAgentKeys(config), config: config.agents, connections: config.connections, log, registry: metrics.registry }) : undefined);
    const routing = routingPlan(config.agents, config.storage, config.connections, options.worker);
    if (agentHub && routing) {
      agentHub.router = new AgentRouter({ hub: agentHub, config: routing.config, portOffset: routing.portOffset, storage: config.storage, connections: config.connections, log });
    }
    const newTransport = (c: ConnectionConfig): Transport => (isAgentServed(c) && agentHub ? new AgentTransport(c, agentHub, queueObserver(metrics, c.name)) : new DirectTransport(c, queueObserver(metrics, c.name)));
    const transports = new Map<string, Transport>(config.connections.map((c) => [c.name, newTransport(c)]));
    const identity = new IdentityServices(config, log, (issuer) => metrics.jwksFetches.inc({ issuer }));
    this.current = {
      config,
      verifier: identity.verifier,
      identity,
      routes: new ModelRoutes(config.connections),
      guardrails: new GuardrailEngine(config.guardrails),
      transports,
      newTransport,
      metrics,
      limiter: createLimiter(config, metrics, log),
      tracing: Tracing.fromEnv(config.tracing, log),
      log,
    };
    this.web = new WebRoutes(() => this.current);
    this.idle = idleReclaim({
      afterMs: config.server.idle_reclaim,
      log: () => this.services.log,
      collectStores: async () => (await this.services.audit?.reclaimMemory()) ?? [],
      onReclaimed: () => this.services.metrics.idleReclaims.inc(),
    });
    this.server = createServer(
      {
        // Reject ambiguous framing (CL+TE, obs-fold, bad chunk sizes) rather than guess: request smuggling defence.
        insecureHTTPParser: false,
        requireHostHeader: true,
        requestTimeout: config.server.request_timeout,
        headersTimeout: config.server.headers_timeout,
        // Node checks both timeouts only this often (30 s by default): check at a fraction of the shorter one.
        connectionsCheckingInterval: Math.max(100, Math.min(Math.floor(config.server.headers_timeout / 3), 30_000)),
        keepAliveTimeout: config.server.keep_alive_timeout,
        maxHeaderSize: 32 * 1024,
      },
      (req, res) => void this.handle(req, res),
    );
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (!socket.writable) return socket.destroy();
      const [status, code, message] = clientErrorAnswer(err.code);
      const body = JSON.stringify({ error: { message, type: 'invalid_request_error', param: null, code } });
      socket.end(
        `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
      log.debug({ err: err.message }, 'rejected malformed HTTP request');
    });
  }

  async listen(port = this.services.config.server.port, host = this.services.config.server.host): Promise<string> {
    await this.services.identity.start();
    // Write-ahead recording must be ready before the first request can be forwarded.
    if (this.services.config.recording.enabled) {
      const outages = this.outages;
      this.services.audit = await AuditTrail.open(this.services.config, this.services.log, {
        failed: (err) => outages.failed('recording', err),
        recovered: () => outages.recovered('recording'),
      });
      outages.watch('recording');
    }
    await this.openApprovals();
    this.warnAboutOpenState();
    if (!(await this.services.limiter.store.ready())) this.services.log.warn('limit store (Redis) not reachable yet; limits apply their on_store_failure setting');
    if (this.agentHub) this.services.log.info({ url: await this.agentHub.listen() }, 'accepting agent tunnels');
    const router = this.agentHub?.router;
    if (router) this.services.log.info({ url: await router.start(), instance: router.instance, pid: process.pid }, 'accepting requests routed from other instances');
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ port, host, backlog: this.services.config.server.listen_backlog }, () => {
        this.server.off('error', reject);
        this.services.identity.bindUrl(this.url);
        resolve();
      });
    });
    const metrics = this.services.config.server.metrics;
    if (metrics.listen) {
      this.metricsListener = new MetricsListener(this.services.metrics.registry, metrics);
      this.metricsUrl = await this.metricsListener.listen(metrics.listen);
    }
    // Fetch IdP keys now so the first request is not the one paying for discovery.
    void this.services.verifier.warmUp().then((results) => {
      for (const r of results) if (r.status === 'rejected') this.services.log.warn({ err: String(r.reason) }, 'identity provider not reachable yet');
    });
    return this.url;
  }

  /** State holds signing keys and prompts: say so at start-up when other users could read it. */
  private warnAboutOpenState(): void {
    // Workers share the same files: the first one speaks for all.
    if (cluster.isWorker && cluster.worker?.id !== 1) return;
    const { storage, identity } = this.services.config;
    const paths = [storage.driver === 'sqlite' ? storage.sqlite.path : undefined, identity.state.store === 'sqlite' ? identity.state.path : undefined];
    const reported = new Set<string>();
    for (const open of paths.flatMap((path) => (path ? tooOpen(path) : []))) {
      if (reported.has(open.path)) continue; // two databases in one directory
      reported.add(open.path);
      this.services.log.warn(open, 'state readable by other users (signing keys, prompts): chmod 700 its directory and 600 its files');
    }
  }

  /** Reviews live in the storage database, so held requests and grants survive restarts and span instances. */
  private async openApprovals(): Promise<void> {
    const { config, metrics, log } = this.services;
    const approvals = new Approvals(await openReviewStore(config.storage), config.approvals, {
      log,
      baseUrl: () => this.services.identity.publicUrl,
      archive: () => this.services.audit?.archive,
      onEvent: (event, review) => metrics.reviews.inc({ kind: review.kind, event }),
      onWebhook: (outcome) => metrics.webhookDeliveries.inc({ outcome }),
    });
    await approvals.start();
    this.services.approvals = approvals;
    this.outages.watch('reviews', () => approvals.store.get('rev_outage_probe'));
  }

  /** The agent tunnel listener's URL, when agents are configured. */
  get agentsUrl(): string | undefined {
    return this.agentHub?.url;
  }

  /** Connected agent tunnels on this instance. */
  get agents(): AgentHub | undefined {
    return this.agentHub;
  }

  get url(): string {
    const { address, port } = this.server.address() as AddressInfo;
    return `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
  }

  /** Stops accepting, lets in-flight requests finish for up to `graceMs`, then cuts the rest. */
  async close(graceMs = this.services.config.server.shutdown_grace): Promise<void> {
    const deadline = Date.now() + graceMs;
    // First tell load balancers (`/readyz` answers 503 draining) while still serving what they send meanwhile.
    this.draining = true;
    this.idle.close();
    const notice = Math.min(this.services.config.server.drain_notice, graceMs);
    if (notice > 0) this.services.log.info({ ms: notice }, '/readyz reports draining; still serving until load balancers notice');
    await new Promise((r) => setTimeout(r, notice));
    this.refusingNew = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    // Held requests could wait longer than the grace period; their clients retry elsewhere and rejoin the same review.
    this.services.approvals?.releaseHeld();
    while (this.inFlight.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await this.cutInFlight();
    this.server.closeAllConnections();
    await closed;
    await this.agentHub?.router?.close();
    await this.agentHub?.close();
    await this.agentHub?.keys.store.close();
    await Promise.all([...this.services.transports.values(), ...this.retiring].map((t) => t.close()));
    await this.services.approvals?.close();
    await this.services.audit?.close();
    await this.services.identity.close();
    await this.metricsListener?.close();
    await this.services.limiter.store.close();
    await this.services.tracing.close();
    this.outages.close();
  }

  /**
   * Past the grace: stop what is still running with a reason, so each stream
   * ends with an error frame (and is recorded `shutdown`) before its socket
   * is closed, rather than a bare TCP reset.
   */
  private async cutInFlight(): Promise<void> {
    const cut = [...this.inFlight];
    if (cut.length === 0) return;
    const sent = Promise.all(cut.map((ctx) => finished(ctx.res).catch(() => undefined)));
    for (const ctx of cut) ctx.abort.abort(shuttingDown());
    this.services.log.warn({ requests: cut.length }, 'shutdown grace over: cutting the requests still running');
    // A frame needs a moment to leave; a client that does not read does not hold the shutdown.
    let bound: NodeJS.Timeout | undefined;
    await Promise.race([sent, new Promise((resolve) => (bound = setTimeout(resolve, CUT_FLUSH_MS)))]);
    clearTimeout(bound);
  }

  get services(): GatewayServices {
    return this.current;
  }

  /**
   * Puts a new, already validated configuration in force. Requests already
   * under way finish with the snapshot they started with (streams are never
   * cut); new requests see the new one. Only what can change safely at run
   * time is swapped (see config/reload.ts); the rest is reported back.
   */
  applyConfig(config: Config): ReloadOutcome {
    const previous = this.current;
    const { services, retired, outcome } = reloadServices(previous, config);
    this.current = services;
    if (retired.length > 0) this.retireWhenDrained(retired);
    return outcome;
  }

  /** Closes replaced transports after every request that started before the swap has finished. */
  private retireWhenDrained(transports: Transport[]): void {
    const startedBefore = new Set(this.inFlight);
    for (const t of transports) this.retiring.add(t);
    const check = (): void => {
      for (const ctx of startedBefore) if (!this.inFlight.has(ctx)) startedBefore.delete(ctx);
      if (startedBefore.size > 0) return void setTimeout(check, 250).unref();
      for (const t of transports) {
        this.retiring.delete(t);
        void t.close().catch((err: unknown) => this.current.log.warn({ err: (err as Error).message }, 'could not close a replaced connection pool'));
      }
    };
    check();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // One snapshot for the whole request, however long it streams: a reload never changes the rules under it.
    const services = this.current;
    const id = newRequestId();
    res.setHeader('x-request-id', id);
    const clientReqId = clientRequestId(req.headers['x-request-id']);
    const ctx: RequestContext = {
      id,
      receivedAt: performance.now(),
      req,
      res,
      abort: new AbortController(),
      decisions: [],
      clientReqId,
      log: services.log.child({ reqId: id, clientReqId }),
    };
    const trace = services.tracing.startRequest(req.headers, req.method ?? 'GET', (req.url ?? '/').split('?', 1)[0]!, id);
    if (trace) ctx.trace = trace;
    // `close` before the response finished means the client went away: cancel upstream work.
    res.once('close', () => {
      if (res.writableFinished) return;
      ctx.clientGone = true;
      ctx.abort.abort(new Error('client disconnected'));
    });

    this.inFlight.add(ctx);
    services.metrics.inFlight.inc();
    try {
      await this.route(ctx, services);
    } catch (err) {
      this.refuse(ctx, err);
    } finally {
      this.inFlight.delete(ctx);
      services.metrics.inFlight.dec();
      this.finish(ctx, services);
    }
  }

  private async route(ctx: RequestContext, services: GatewayServices): Promise<void> {
    const { req, res } = ctx;
    const path = pathOf(req);
    const method = req.method ?? 'GET';

    const endpoint = MODEL_ENDPOINTS.get(path);
    if (endpoint) {
      if (method !== 'POST') throw methodNotAllowed('POST');
      if (this.refusingNew) throw shuttingDown();
      // Model calls make a burst; probes and scrapes in between do not keep the gateway from being idle.
      this.idle.started();
      try {
        return await handleModelCall(services, ctx, endpoint, path);
      } finally {
        this.idle.ended();
      }
    }
    const ollamaInfo = OLLAMA_INFO_PATHS.get(path);
    if (ollamaInfo) {
      if (method !== ollamaInfo) throw methodNotAllowed(ollamaInfo);
      return handleOllamaApi(services, ctx, path);
    }
    switch (path) {
      case '/v1/models':
      case '/api/tags':
        if (method !== 'GET') throw methodNotAllowed('GET');
        return handleListModels(services, ctx, path === '/api/tags' ? 'ollama' : 'openai');
      case '/healthz':
        return sendJson(res, 200, { status: 'ok' });
      case '/readyz': {
        const identity = services.verifier.ready;
        const ready = identity && !this.draining;
        return sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : this.draining ? 'draining' : 'not_ready', checks: { identity, draining: this.draining } });
      }
      case '/metrics':
        // Moved to its own listener: the main port does not serve it at all.
        if (services.config.server.metrics.listen) throw unknownEndpoint(method, path);
        return serveMetrics(req, res, services.metrics.registry, services.config.server.metrics);
      default:
        if (await this.web.handle(ctx, path, method)) return;
        if (isApprovalsApiPath(path) && services.approvals) {
          ctx.principal = await authenticate(services, ctx);
          const handled = await handleApprovalsApi(req, res, path, {
            approvals: services.approvals,
            principal: ctx.principal,
            auditorGroups: services.config.recording.auditor_groups,
            connections: services.config.connections.map((c) => c.name),
            maxBodyBytes: services.config.server.max_body_bytes,
            signal: ctx.abort.signal,
          });
          if (handled) return;
        }
        if (isServiceKeysApiPath(path)) {
          ctx.principal = await authenticate(services, ctx);
          return handleServiceKeysApi(req, res, path, {
            keys: services.identity.serviceKeys,
            config: services.config.identity.service_keys,
            principal: ctx.principal,
            maxBodyBytes: services.config.server.max_body_bytes,
            log: ctx.log,
          });
        }
        if (isPolicyApiPath(path)) {
          ctx.principal = await authenticate(services, ctx);
          return handlePolicyApi(req, res, path, { config: services.config, guardrails: services.guardrails, principal: ctx.principal });
        }
        if (isUsageApiPath(path) && services.audit) {
          ctx.principal = await authenticate(services, ctx);
          await handleUsageApi(req, res, { archive: services.audit.archive, principal: ctx.principal, config: services.config, costs: services.limiter.costs });
          return;
        }
        if (isSessionsApiPath(path) && services.audit) {
          ctx.principal = await authenticate(services, ctx);
          const handled = await handleSessionsApi(req, res, {
            archive: services.audit.archive,
            principal: ctx.principal,
            auditorGroups: services.config.recording.auditor_groups,
            maxBodyBytes: services.config.server.max_body_bytes,
            redactSubjectElsewhere: async (subject, issuer) => {
              const approvals = services.approvals;
              return approvals ? { reviews_redacted: await redactRequesterReviews(approvals.store, subject, issuer) } : {};
            },
          });
          if (handled) return;
        }
        throw unknownEndpoint(method, path);
    }
  }

  private refuse(ctx: RequestContext, err: unknown): void {
    if (ctx.clientGone && !(err instanceof GatewayError)) {
      // The client left, and the work for it stopped with an abort error: nothing went wrong here.
      ctx.errorCode = 'client_disconnected';
      ctx.log.info({ code: ctx.errorCode }, 'client left before the answer');
      return;
    }
    // An abort error from a stage the gateway itself stopped (shutdown, recording lost) answers with the reason.
    const reason: unknown = ctx.abort.signal.reason;
    const error = !(err instanceof GatewayError) && reason instanceof GatewayError ? reason : asGatewayError(err);
    ctx.errorCode = error.code;
    this.services.metrics.refusals.inc({ code: error.code });
    const outage = OUTAGE_CODES.get(error.code);
    // A store outage is logged once, at its start and its end; each refusal shows in its request line by code.
    if (outage) this.outages.refused(outage, error.cause ?? error);
    else if (error.status >= 500) ctx.log.error({ err: error.cause ?? error, code: error.code }, error.message);
    if (ctx.res.headersSent) {
      ctx.res.destroy();
      return;
    }
    const retryHint = retryHintForRefusal(error, ctx.upstreamMayHavePrompt);
    if (retryHint) ctx.res.setHeader('x-should-retry', retryHint);
    sendError(ctx.res, error, errorShapeFor(pathOf(ctx.req)));
    if (error.headers.connection === 'close') ctx.req.destroy();
  }

  private finish(ctx: RequestContext, services: GatewayServices): void {
    const seconds = (performance.now() - ctx.receivedAt) / 1000;
    if (ctx.route) settleUsage(services, ctx, endState(ctx), seconds);
    endRecording(ctx);
    const status = ctx.res.statusCode;
    const usage = ctx.usageResult;
    ctx.trace?.finish(status, usage, ctx.errorCode, ctx.limits?.decision.outcome);
    const connection = ctx.route?.connection.name ?? '';
    const operation = ctx.request?.operation ?? '';
    if (ctx.route) {
      services.metrics.requests.inc({ connection, model: ctx.route.model, operation, status });
      services.metrics.duration.observe({ connection, operation, stream: String(ctx.request?.stream ?? false) }, seconds);
    }
    this.accessLog.info(
      {
        reqId: ctx.id,
        clientReqId: ctx.clientReqId,
        method: ctx.req.method,
        // Query strings can carry tokens or prompts some client put there: the path alone is logged.
        path: pathForLog(ctx.req.url),
        status,
        ms: Math.round(seconds * 1000 * 10) / 10,
        sub: ctx.principal?.subject,
        iss: ctx.principal?.issuer,
        connection: connection || undefined,
        model: ctx.route?.model,
        target: ctx.upstreamTarget,
        code: ctx.errorCode,
        aborted: ctx.abort.signal.aborted || undefined,
        ...(usage && { usage: { prompt: usage.prompt_tokens, completion: usage.completion_tokens, ...(usage.estimated && { estimated: true }) } }),
        ...(ctx.limits && ctx.limits.decision.outcome !== 'none' && { limits: ctx.limits.decision.outcome }),
        ...(ctx.errorCode && LIMIT_REFUSAL_CODES.has(ctx.errorCode) && { limits: 'refused' }),
        ...(ctx.trace && { traceId: ctx.trace.traceId }),
      },
      'request',
    );
  }
}

function queueObserver(metrics: GatewayMetrics, connection: string) {
  return {
    queued: (delta: number) => metrics.upstreamQueued.inc({ connection }, delta),
    active: (delta: number) => metrics.upstreamActive.inc({ connection }, delta),
    connections: (delta: number) => metrics.upstreamConnections.inc({ connection }, delta),
  };
}

/** Agent keys live in the storage database, opened on first use (a gateway without agents never opens it). */
function lazyAgentKeys(config: Config): AgentKeys {
  let opened: ReturnType<typeof openAgentKeyStore> | undefined;
  const store = () => (opened ??= openAgentKeyStore(config.storage));
  return new AgentKeys({
    insert: async (r) => (await store()).insert(r),
    get: async (id) => (await store()).get(id),
    list: async () => (await store()).list(),
    revokeAgent: async (agent, now) => (await store()).revokeAgent(agent, now),
    expire: async (id, at) => (await store()).expire(id, at),
    close: async () => (opened ? (await opened).close() : undefined),
  });
}

/** What a request Node refused before it reached a handler gets: slow senders 408, huge headers 431, the rest 400. */
function clientErrorAnswer(code: string | undefined): [status: string, code: string, message: string] {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return ['408 Request Timeout', 'request_timeout', 'The request did not arrive in time (headers_timeout / request_timeout).'];
  if (code === 'HPE_HEADER_OVERFLOW') return ['431 Request Header Fields Too Large', 'headers_too_large', 'The request headers exceed 32 KiB.'];
  return ['400 Bad Request', 'bad_http_request', 'Malformed HTTP request.'];
}

/** Refusals that mean a store is down, by store. */
const OUTAGE_CODES = new Map<string, StoreName>([
  ['recording_unavailable', 'recording'],
  ['approvals_unavailable', 'reviews'],
  ['reviews_unavailable', 'reviews'],
]);

/** How long streams cut at shutdown get to send their error frame before their sockets close. */
const CUT_FLUSH_MS = 1_000;

function unknownEndpoint(method: string, path: string): GatewayError {
  const served = path.startsWith('/api/')
    ? 'The gateway serves the Ollama API calls /api/chat, /api/generate, /api/embed, /api/embeddings, /api/tags, /api/show, /api/ps and /api/version; models are managed on the model servers, not through it.'
    : 'The gateway serves /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses, /v1/models, and the Ollama API under /api/.';
  return new GatewayError(`Unknown endpoint ${method} ${path}. ${served}`, { status: 404, type: 'not_found_error', code: 'unknown_endpoint' });
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?', 1)[0]!;
}

function shuttingDown(): GatewayError {
  return new GatewayError('The gateway is shutting down; retry the request.', {
    status: 503,
    type: 'service_unavailable',
    code: 'shutting_down',
    headers: { 'retry-after': '1', connection: 'close' },
  });
}
