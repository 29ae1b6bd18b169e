// Many instances: a request that arrives at an instance without a local
// agent for its connection goes to an instance that has one. Each instance
// claims its connections in the shared route table (route-table.ts) under a
// lease, and serves an internal listener where peers forward requests that
// they have already authenticated, inspected and started recording: the
// holder only moves bytes between the request and its local agent.
//
// Every forwarded request carries an HMAC (the shared `routing.secret`) over
// who sends it to whom, when it expires, a one-time nonce, the connection,
// method, path, headers and a digest of the body. The holder refuses a
// missing, wrong, expired, replayed or misaddressed one before any agent
// sees it, so nothing reaches a model around the receiving instance's
// guardrails and recording.
//
// The workers of `gateway --workers N` route to each other the same way:
// each has a listener of its own (never shared through node:cluster) and
// its own claims. With `agents.routing` configured, worker i listens on the
// configured port + i and advertises that port; without it, on SQLite
// storage (one host by nature), the workers route over loopback with a
// secret their primary made for this run (see routingPlan).
import { createHash, createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { Agent as Dispatcher, type Dispatcher as DispatcherTypes } from 'undici';
import type { StorageConfig } from '../audit/config.js';
import type { ConnectionConfig } from '../config/schema.js';
import { GatewayError, type ErrorType } from '../http/errors.js';
import type { Logger } from '../ops/logger.js';
import type { AgentsConfig, RoutingConfig } from './config.js';
import { isAgentServed, NotStartedError, type AgentHub, type TunnelRequest, type TunnelResponse } from './hub.js';
import { HOP_BY_HOP } from './protocol.js';
import { RouteTable, type RouteHolder } from './route-table.js';

export const ROUTE_PATH = '/v1/internal/agent-route';
export const ROUTE_HEADER = {
  token: 'x-modelgate-route-token',
  from: 'x-modelgate-route-from',
  to: 'x-modelgate-route-to',
  connection: 'x-modelgate-route-connection',
  method: 'x-modelgate-route-method',
  path: 'x-modelgate-route-path',
  /** The request's own headers, base64url JSON, so they are signed exactly as sent. */
  headers: 'x-modelgate-route-headers',
  /** On the holder's answer when it did not pass the request to an agent: `not_started`, or `gateway_error` with an error body. */
  outcome: 'x-modelgate-route-outcome',
} as const;
/**
 * A token is good this long: one hop, even to a swamped holder, and too short
 * to be worth stealing (each is for one request, once). Longer than a
 * connection's default response_headers wait (120 s), after which its sender
 * has given up anyway: at 30 s, 2,127 of 5,000 soak streams through
 * `--workers 2` were refused as expired at a holder running ~40 s late.
 */
export const ROUTE_TOKEN_LIFETIME_MS = 150_000;
/** Larger than any request body the gateway forwards. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

export interface RouteClaims {
  from: string;
  to: string;
  connection: string;
  method: string;
  path: string;
  headers: string;
  body: string;
}

function mac(secret: string, claims: RouteClaims, expires: number, nonce: string): string {
  const digest = createHash('sha256').update(claims.body).digest('base64url');
  const signed = ['modelgate-route/1', claims.from, claims.to, expires, nonce, claims.connection, claims.method, claims.path, claims.headers, digest].join('\n');
  return createHmac('sha256', secret).update(signed).digest('base64url');
}

/** `v1.<expires ms>.<nonce>.<hmac>` */
export function signRoute(secret: string, claims: RouteClaims, now = Date.now()): string {
  const expires = now + ROUTE_TOKEN_LIFETIME_MS;
  const nonce = randomUUID();
  return `v1.${expires}.${nonce}.${mac(secret, claims, expires, nonce)}`;
}

/** The headers that carry a routed request's claims, and its token when there is one. */
export function routeHeaders(claims: RouteClaims, token: string | undefined): Record<string, string> {
  return {
    ...(token !== undefined && { [ROUTE_HEADER.token]: token }),
    [ROUTE_HEADER.from]: claims.from,
    [ROUTE_HEADER.to]: claims.to,
    [ROUTE_HEADER.connection]: claims.connection,
    [ROUTE_HEADER.method]: claims.method,
    [ROUTE_HEADER.path]: claims.path,
    [ROUTE_HEADER.headers]: claims.headers,
  };
}

/** Why a token is refused, or undefined when it is good (and its nonce is now spent). */
export function checkRoute(secret: string, token: string | undefined, claims: RouteClaims, seen: Map<string, number>, now = Date.now()): string | undefined {
  const [version, expiresText, nonce, sig, extra] = (token ?? '').split('.');
  if (version !== 'v1' || !expiresText || !nonce || !sig || extra !== undefined) return 'route_token_missing';
  const expires = Number(expiresText);
  const expected = Buffer.from(mac(secret, claims, expires, nonce));
  const given = Buffer.from(sig);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'route_token_invalid';
  // Clocks of instances differ a little; a token from further ahead than its own lifetime is not ours.
  if (!Number.isFinite(expires) || expires <= now || expires > now + 2 * ROUTE_TOKEN_LIFETIME_MS) return 'route_token_expired';
  // Nonces lapse in about the order they came: drop the oldest until a live one, not a walk over every live nonce per request.
  for (const [n, until] of seen) {
    if (until > now) break;
    seen.delete(n);
  }
  if (seen.has(nonce)) return 'route_token_replayed';
  seen.set(nonce, expires);
  return undefined;
}

/** One process of `gateway --workers N`: its slot (0 to N-1; a replacement takes its predecessor's) and the routing secret its primary made for this run. */
export interface WorkerSlot {
  slot: number;
  count: number;
  siblingSecret: string;
}

export interface RoutingPlan {
  config: RoutingConfig;
  /** Added to the configured port (and the advertised one): each worker of one host needs its own. */
  portOffset: number;
}

/** Connections the kernel queues for the internal listener (capped by net.core.somaxconn), as `server.listen_backlog` for the front door. */
const ROUTING_BACKLOG = 4096;

/** Sibling workers' claims lapse quickly: a killed worker is replaced within seconds. */
const SIBLING_LEASE_MS = 5_000;

/** Workers of one host can share the route table without `agents.routing`: SQLite on a file (WAL) is one host's by nature. */
export function siblingRoutingPossible(storage: StorageConfig): boolean {
  return storage.driver === 'sqlite' && storage.sqlite.path !== ':memory:';
}

/**
 * How this process routes to agents held elsewhere, if at all: the
 * configured `agents.routing` (shifted by the worker's slot), or, for a
 * worker of several with agent-served connections and SQLite storage, a
 * loopback listener on a port of its own signed with its primary's secret.
 * PostgreSQL storage is shared across hosts, where a loopback address means
 * nothing: there workers need `agents.routing`.
 */
export function routingPlan(agents: AgentsConfig | undefined, storage: StorageConfig, connections: readonly ConnectionConfig[], worker?: WorkerSlot): RoutingPlan | undefined {
  if (!agents) return undefined;
  if (agents.routing) return { config: agents.routing, portOffset: worker?.slot ?? 0 };
  if (!worker || worker.count < 2 || !connections.some(isAgentServed) || !siblingRoutingPossible(storage)) return undefined;
  return { config: { listen: { host: '127.0.0.1', port: 0 }, secret: worker.siblingSecret, lease: SIBLING_LEASE_MS }, portOffset: 0 };
}

export interface AgentRouterOptions {
  hub: AgentHub;
  config: RoutingConfig;
  /** This worker's slot: its listener is the configured port + this (0 outside `--workers`). */
  portOffset?: number;
  storage: StorageConfig;
  connections: readonly ConnectionConfig[];
  log: Logger;
}

export class AgentRouter {
  readonly instance = randomUUID();
  private server: http.Server | undefined;
  private table: RouteTable | undefined;
  private opening: Promise<RouteTable> | undefined;
  private renew: NodeJS.Timeout | undefined;
  private publishing: Promise<void> | undefined;
  private republish = false;
  private readonly dispatcher: Dispatcher;
  private readonly seen = new Map<string, number>();
  private readonly refusals = new Map<string, number>();

  constructor(private readonly options: AgentRouterOptions) {
    const ca = options.config.tls?.ca_file ? readFileSync(options.config.tls.ca_file) : undefined;
    const servername = options.config.tls?.server_name;
    this.dispatcher = new Dispatcher({ connect: { timeout: 5_000, ...(ca ? { ca } : {}), ...(servername ? { servername } : {}) }, keepAliveTimeout: 30_000 });
  }

  /** Refusals of forged or stale internal requests, by code (also logged). */
  get refused(): ReadonlyMap<string, number> {
    return this.refusals;
  }

  /** Opens the internal listener and starts claiming this instance's connections. */
  async start(): Promise<string> {
    const { listen, tls } = this.options.config;
    const server = tls ? https.createServer({ cert: readFileSync(tls.cert_file), key: readFileSync(tls.key_file) }) : http.createServer();
    server.on('request', (req, res) => void this.serve(req, res));
    const offset = this.options.portOffset ?? 0;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // Exclusive: in a worker, node:cluster would otherwise share the port among all workers, and a request for this one would land on any.
      // Backlog: a burst at the front door arrives here at once too; node's default (511) timed out connects at 5,000 streams over 2 workers.
      server.listen({ port: listen.port === 0 ? 0 : listen.port + offset, host: listen.host, exclusive: true, backlog: ROUTING_BACKLOG }, () => resolve());
    });
    this.server = server;
    this.options.hub.onChange(() => this.publishSoon());
    this.renew = setInterval(() => this.publishSoon(), Math.max(250, Math.floor(this.options.config.lease / 3))).unref();
    this.publishSoon();
    return this.address;
  }

  /** Where peers reach this instance. */
  get address(): string {
    const { address, port } = this.server!.address() as AddressInfo;
    const { advertise_url: advertised, listen } = this.options.config;
    const offset = this.options.portOffset ?? 0;
    if (advertised && offset > 0) {
      // Worker i of a host is reached at the advertised port + i, as it listens on the configured port + i.
      const url = new URL(advertised);
      url.port = String(listen.port === 0 ? port : Number(url.port || (url.protocol === 'https:' ? 443 : 80)) + offset);
      return url.href.replace(/\/$/, '');
    }
    if (advertised) return advertised.replace(/\/$/, '');
    return `${this.options.config.tls ? 'https' : 'http'}://${address.includes(':') ? `[${address}]` : address}:${port}`;
  }

  /** Other instances holding agents for `connection`; none while the route table cannot be read (and nothing cached). */
  async holders(connection: string): Promise<RouteHolder[]> {
    try {
      return await (await this.openTable()).holders(connection);
    } catch (err) {
      this.options.log.warn({ err: (err as Error).message, connection }, 'could not read the agent route table');
      return [];
    }
  }

  /** Sends an already inspected request to `holder`'s agents. NotStartedError when the holder did not pass it on. */
  async forward(holder: RouteHolder, request: TunnelRequest): Promise<TunnelResponse> {
    const { connection } = request;
    const claims: RouteClaims = {
      from: this.instance,
      to: holder.instance,
      connection: connection.name,
      method: request.method,
      path: request.path,
      headers: Buffer.from(JSON.stringify(request.headers)).toString('base64url'),
      body: request.body ?? '',
    };
    let response: DispatcherTypes.ResponseData;
    try {
      response = await this.dispatcher.request({
        origin: holder.address,
        path: ROUTE_PATH,
        method: 'POST',
        headers: {
          'content-type': 'application/octet-stream',
          ...routeHeaders(claims, signRoute(this.options.config.secret, claims)),
        },
        body: claims.body,
        signal: request.signal,
        // The holder keeps the connection's own timeouts; these only catch a holder that went silent.
        headersTimeout: connection.timeouts.response_headers + 5_000,
        bodyTimeout: connection.timeouts.idle + 5_000,
      });
    } catch (err) {
      if (request.signal.aborted) throw err;
      // Nothing was delivered (or nothing answered before the holder vanished): a dead holder whose lease has not lapsed yet.
      throw new NotStartedError(`instance ${holder.instance} (${holder.address}) is unreachable: ${(err as Error).message}`, 'route_unreachable');
    }
    const outcome = response.headers[ROUTE_HEADER.outcome];
    if (outcome === 'not_started' || outcome === 'refused') {
      const text = await response.body.text().catch(() => '');
      if (outcome === 'refused') this.options.log.error({ holder: holder.address, answer: text.slice(0, 300) }, 'a peer refused a forwarded request: do all instances share routing.secret?');
      throw new NotStartedError(`instance ${holder.instance} did not take the request (${text.slice(0, 200)})`, outcome === 'refused' ? 'route_refused' : 'route_not_started');
    }
    if (outcome === 'gateway_error') throw await gatewayErrorFrom(response);
    const headers: Record<string, string | string[] | undefined> = {};
    for (const [k, v] of Object.entries(response.headers)) if (!HOP_BY_HOP.has(k) && k !== 'content-length') headers[k] = v as string | string[] | undefined;
    return { status: response.statusCode, headers, body: response.body };
  }

  async close(): Promise<void> {
    clearInterval(this.renew);
    await this.publishing;
    const server = this.server;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    if (this.table) {
      await this.table.withdraw().catch((err: Error) => this.options.log.warn({ err: err.message }, 'could not withdraw agent routes; they lapse with their lease'));
      await this.table.close();
    }
    await this.dispatcher.close();
  }

  private openTable(): Promise<RouteTable> {
    if (this.table) return Promise.resolve(this.table);
    this.opening ??= RouteTable.open(this.options.storage, this.instance, this.address, this.options.config.lease).then(
      (table) => (this.table = table),
      (err: unknown) => {
        this.opening = undefined;
        throw err;
      },
    );
    return this.opening;
  }

  /** One publish at a time; changes while one runs are folded into one more. */
  private publishSoon(): void {
    if (this.publishing) {
      this.republish = true;
      return;
    }
    this.publishing = (async () => {
      try {
        await (await this.openTable()).publish(this.options.hub.held());
      } catch (err) {
        this.options.log.warn({ err: (err as Error).message }, 'could not publish agent routes; retrying');
      }
    })().finally(() => {
      this.publishing = undefined;
      if (this.republish) {
        this.republish = false;
        this.publishSoon();
      }
    });
  }

  /** The holder's side: check the signature, then hand the request to a local agent and stream its answer back. */
  private async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const header = (name: string) => {
      const v = req.headers[name];
      return typeof v === 'string' ? v : '';
    };
    const refuse = (status: number, code: string, message: string) => {
      this.refusals.set(code, (this.refusals.get(code) ?? 0) + 1);
      this.options.log.warn({ code, remote: req.socket.remoteAddress }, `internal route request refused: ${message}`);
      res.writeHead(status, { 'content-type': 'application/json', [ROUTE_HEADER.outcome]: 'refused' });
      res.end(JSON.stringify({ error: { message, type: 'permission_error', param: null, code } }));
    };
    // Judged as of the request's arrival, not after its body is read by a busy event loop.
    const received = Date.now();
    if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== ROUTE_PATH) return refuse(404, 'unknown_endpoint', `this listener accepts only POST ${ROUTE_PATH} from other modelgate instances`);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) return refuse(413, 'route_body_too_large', 'body too large');
      chunks.push(chunk);
    }
    const claims: RouteClaims = {
      from: header(ROUTE_HEADER.from),
      to: header(ROUTE_HEADER.to),
      connection: header(ROUTE_HEADER.connection),
      method: header(ROUTE_HEADER.method),
      path: header(ROUTE_HEADER.path),
      headers: header(ROUTE_HEADER.headers),
      body: Buffer.concat(chunks).toString('utf8'),
    };
    const why = checkRoute(this.options.config.secret, header(ROUTE_HEADER.token), claims, this.seen, received);
    if (why) return refuse(403, why, 'the forwarded request is not signed by a modelgate instance sharing this routing secret, or its token is expired or spent');
    if (claims.to !== this.instance) {
      // Signed by a peer, for a process that had this address before (a replaced worker, whose claim has not lapsed): nothing here took it, so the sender may try another holder.
      this.options.log.info({ to: claims.to }, 'a forwarded request was addressed to a previous holder of this address; answered as not started');
      res.writeHead(503, { 'content-type': 'application/json', [ROUTE_HEADER.outcome]: 'not_started' });
      return void res.end(JSON.stringify({ error: { message: 'the forwarded request was signed for another instance', type: 'service_unavailable', param: null, code: 'route_misaddressed' } }));
    }
    const connection = this.options.connections.find((c) => c.name === claims.connection);
    if (!connection || (claims.method !== 'POST' && claims.method !== 'GET') || !claims.path.startsWith('/') || claims.path.startsWith('//')) {
      return refuse(400, 'route_bad_request', 'unknown connection, method or path');
    }
    let headers: Record<string, string>;
    try {
      headers = JSON.parse(Buffer.from(claims.headers, 'base64url').toString('utf8')) as Record<string, string>;
    } catch {
      return refuse(400, 'route_bad_request', 'unreadable headers');
    }

    // The forwarding instance going away (its client left, or it died) cancels the agent's stream.
    const abort = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) abort.abort(new Error('the forwarding instance went away'));
    });
    let answer: TunnelResponse;
    try {
      answer = await this.options.hub.sendLocal({
        connection,
        method: claims.method,
        path: claims.path,
        headers,
        ...(claims.method === 'POST' ? { body: claims.body } : {}),
        signal: abort.signal,
      });
    } catch (err) {
      if (res.destroyed) return;
      if (err instanceof NotStartedError) {
        res.writeHead(503, { 'content-type': 'text/plain', [ROUTE_HEADER.outcome]: 'not_started' });
        return void res.end(err.code);
      }
      const error = err instanceof GatewayError ? err : new GatewayError('The agent failed before answering.', { status: 502, type: 'upstream_error', code: 'agent_lost' });
      res.writeHead(error.status, { 'content-type': 'application/json', [ROUTE_HEADER.outcome]: 'gateway_error' });
      return void res.end(JSON.stringify({ ...error.toJSON(), headers: error.headers, status: error.status }));
    }
    const out: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(answer.headers)) if (v !== undefined && !HOP_BY_HOP.has(k) && k !== 'content-length') out[k] = v;
    res.writeHead(answer.status, out);
    try {
      await pipeline(answer.body, res);
    } catch {
      // The agent's stream broke: cut the connection so the forwarding instance sees a truncated body, never a complete one.
      res.destroy();
    }
  }
}

async function gatewayErrorFrom(response: DispatcherTypes.ResponseData): Promise<GatewayError> {
  const parsed = (await response.body.json().catch(() => ({}))) as { error?: { message?: string; type?: ErrorType; code?: string }; headers?: Record<string, string> };
  return new GatewayError(parsed.error?.message ?? 'The instance holding the agent failed the request.', {
    status: response.statusCode,
    type: parsed.error?.type ?? 'upstream_error',
    code: parsed.error?.code ?? 'agent_lost',
    headers: parsed.headers ?? {},
  });
}
