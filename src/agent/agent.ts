// `modelgate agent`, run beside the model: dials out to the gateway, upgrades
// to a reversed HTTP/2 session, and forwards each stream the gateway opens to
// the model server of the connection it names. A thin, auditable transport:
// it inspects nothing and only reaches the model URLs it was started with.
// Reconnects with capped exponential backoff and full jitter; a new key
// (rotation) is picked up by dialling a second tunnel before closing the old.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { Counter, Gauge, Registry } from 'prom-client';
import type { Dispatcher } from 'undici';
import { idleReclaim, type IdleTrigger } from '../ops/idle-reclaim.js';
import type { Logger } from '../ops/logger.js';
import { UpstreamConnections } from '../proxy/upstream-connections.js';
import { DEFAULT_HEARTBEAT, keepAlive } from './heartbeat.js';
import { HEADER, HOP_BY_HOP, SESSION_MEMORY_MB, TUNNEL_PATH, UPGRADE_TOKEN } from './protocol.js';

const { NGHTTP2_INTERNAL_ERROR } = http2.constants;
const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);

export interface AgentOptions {
  /** The gateway's agent listener, https:// (or http:// on loopback only). */
  gateway: URL;
  /** Read before every dial, so a rotated key file is used on the next one. */
  readKey: () => Promise<string>;
  /** Connection name → the model server's base URL. */
  serve: ReadonlyMap<string, URL>;
  version: string;
  log: Logger;
  /** PEM CA for the gateway's certificate, when not a public one. */
  ca?: Buffer;
  backoff?: { initialMs: number; maxMs: number };
  /** How long a model may take to send response headers; the gateway keeps its own limits too. */
  upstreamHeadersTimeoutMs?: number;
  /**
   * HTTP/2 PING to the gateway this often; no answer, and nothing else
   * received, within `timeoutMs` ends the tunnel and redials (heartbeat.ts).
   * TCP keepalive alone cannot see a peer (or a middlebox) that stopped
   * forwarding while the connection stays open.
   */
  heartbeat?: { intervalMs: number; timeoutMs: number };
  /** Quiet time after a burst before memory is given back, as the gateway's `server.idle_reclaim` (ops/idle-reclaim.ts); 0 turns it off. */
  idleReclaimMs?: number;
}

/** As the gateway's `server.idle_reclaim` default. */
export const DEFAULT_IDLE_RECLAIM_MS = 10_000;

export type TunnelState = 'connecting' | 'connected' | 'stopped';

export class Agent {
  readonly instance = randomUUID();
  readonly registry = new Registry();
  private session: http2.ServerHttp2Session | undefined;
  private socket: Socket | undefined;
  private readonly h2 = http2.createServer({ maxSessionMemory: SESSION_MEMORY_MB });
  /** Per served connection, the keep-alive connections to its model server (the gateway's own set for direct upstreams). */
  private readonly upstreams = new Map<string, UpstreamConnections>();
  private stopped = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private dialing: Promise<void> | undefined;
  private lastKey: string | undefined;
  private readonly metrics;
  /** After a burst of streams, once none is open: the heap collected and malloc's free pages returned. */
  private readonly idle: IdleTrigger;

  constructor(private readonly options: AgentOptions) {
    const { gateway } = options;
    if (gateway.protocol !== 'https:' && !(gateway.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(gateway.hostname))) {
      throw new Error(`the gateway URL must be https:// (cleartext http:// only to loopback): ${gateway.href}`);
    }
    this.idle = idleReclaim({ afterMs: options.idleReclaimMs ?? DEFAULT_IDLE_RECLAIM_MS, log: () => options.log });
    this.h2.on('stream', (stream, headers) => void this.forward(stream, headers));
    const agent = this;
    const upstreamConnections = new Gauge({
      name: 'modelgate_agent_upstream_connections',
      help: 'Keep-alive connections held to the model servers (in use or idle), by connection; idle ones are dropped once they close.',
      labelNames: ['connection'] as const,
      registers: [this.registry],
    });
    for (const [name, url] of options.serve) {
      upstreamConnections.set({ connection: name }, 0);
      const clientOptions = { headersTimeout: options.upstreamHeadersTimeoutMs ?? 300_000, bodyTimeout: 0, connect: { timeout: 5_000 } };
      this.upstreams.set(name, new UpstreamConnections(url.origin, clientOptions, { onCount: (delta) => upstreamConnections.inc({ connection: name }, delta) }));
    }
    this.metrics = {
      connected: new Gauge({ name: 'modelgate_agent_connected', help: '1 while the tunnel to the gateway is up.', registers: [this.registry], collect() { this.set(agent.state === 'connected' ? 1 : 0); } }),
      active: new Gauge({ name: 'modelgate_agent_active_streams', help: 'Requests being forwarded now.', registers: [this.registry] }),
      streams: new Counter({ name: 'modelgate_agent_streams_total', help: 'Requests forwarded, by connection and outcome.', labelNames: ['connection', 'outcome'] as const, registers: [this.registry] }),
      dials: new Counter({ name: 'modelgate_agent_dials_total', help: 'Tunnel dial attempts by outcome.', labelNames: ['outcome'] as const, registers: [this.registry] }),
    };
  }

  get state(): TunnelState {
    if (this.stopped) return 'stopped';
    return this.session && !this.session.closed && !this.session.destroyed ? 'connected' : 'connecting';
  }

  /** Starts dialling; resolves once the first tunnel is up (or rejects on a refusal that retrying cannot fix, e.g. a bad key, while still retrying). */
  start(): void {
    this.dial();
  }

  /** Re-reads the key; if it changed, opens a tunnel with the new key before closing the old one. */
  async reload(): Promise<void> {
    // A dial under way would set its tunnel after this one and leave two open: rotate from the tunnel it opens.
    await this.dialing;
    const key = (await this.options.readKey()).trim();
    if (key === this.lastKey || this.stopped) return;
    const old = this.session;
    this.session = undefined;
    await this.connect().catch((err: Error) => this.options.log.warn({ err: err.message }, 'tunnel with the new key failed; keeping the old one'));
    if (this.session) old?.close();
    else if (old && !old.closed && !old.destroyed) this.session = old;
    // The old tunnel died meanwhile: its close did not redial, since it was no longer the agent's tunnel.
    else this.scheduleRetry();
  }

  /** Stops taking new requests (GOAWAY), lets open ones finish for up to `graceMs`, then closes. */
  async close(graceMs = 10_000): Promise<void> {
    this.stopped = true;
    this.idle.close();
    clearTimeout(this.retryTimer);
    // A dial under way finishes (and sees `stopped`) before the session is looked at.
    await this.dialing;
    const session = this.session;
    if (session && !session.closed) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          session.destroy();
          resolve();
        }, graceMs);
        session.close(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    // Every stream is done or cut by now; close() would wait on a model that never answers.
    await Promise.all([...this.upstreams.values()].map((u) => u.destroy()));
  }

  /** Kills the tunnel without a goodbye, as a crash would: the socket, or the HTTP/2 session (for tests of the gateway's side). */
  destroyTunnel(how: 'socket' | 'session' = 'socket'): void {
    if (how === 'socket') this.socket?.destroy();
    else this.session?.destroy();
  }

  private dial(): void {
    if (this.stopped || this.dialing || this.session) return;
    this.dialing = this.connect()
      .then(() => {
        this.attempt = 0;
      })
      .catch((err: Error) => {
        this.options.log.warn({ err: err.message, gateway: this.options.gateway.origin }, 'could not open the tunnel; retrying');
        this.scheduleRetry();
      })
      .finally(() => {
        this.dialing = undefined;
      });
  }

  /** Full jitter: a random delay up to the capped exponential, so a fleet does not reconnect in step. */
  private scheduleRetry(): void {
    if (this.stopped) return;
    const { initialMs, maxMs } = this.options.backoff ?? { initialMs: 500, maxMs: 30_000 };
    const ceiling = Math.min(maxMs, initialMs * 2 ** this.attempt++);
    const delay = Math.max(50, Math.round(Math.random() * ceiling));
    this.retryTimer = setTimeout(() => this.dial(), delay);
    this.retryTimer.unref?.();
  }

  private async connect(): Promise<void> {
    const key = (await this.options.readKey()).trim();
    const { gateway, ca } = this.options;
    const headers = {
      connection: 'Upgrade',
      upgrade: UPGRADE_TOKEN,
      authorization: `Bearer ${key}`,
      [HEADER.version]: this.options.version,
      [HEADER.connections]: [...this.options.serve.keys()].join(','),
      [HEADER.instance]: this.instance,
    };
    const target = new URL(TUNNEL_PATH, gateway);
    const socket = await new Promise<Socket>((resolve, reject) => {
      const req = (gateway.protocol === 'https:' ? https : http).request(target, { method: 'GET', headers, timeout: 10_000, ...(ca ? { ca } : {}) });
      req.once('upgrade', (_res, socket: Socket, head: Buffer) => {
        if (head.length > 0) socket.unshift(head);
        resolve(socket);
      });
      req.once('response', (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d.slice(0, 2000)));
        res.on('end', () => {
          this.metrics.dials.inc({ outcome: String(res.statusCode) });
          reject(new Error(`gateway refused the tunnel: HTTP ${res.statusCode} ${describeError(body)}`));
        });
      });
      req.once('timeout', () => req.destroy(new Error('tunnel handshake timed out')));
      req.once('error', (err) => {
        this.metrics.dials.inc({ outcome: 'error' });
        reject(err);
      });
      req.end();
    });
    this.metrics.dials.inc({ outcome: 'connected' });
    // close() ran while this dial was under way: no tunnel may outlive the agent.
    if (this.stopped) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    // node's HTTP/2 server treats a TLS socket without ALPN "h2" as HTTP/1; after the upgrade this socket speaks HTTP/2.
    if ((socket as { encrypted?: boolean }).encrypted) Object.defineProperty(socket, 'alpnProtocol', { value: 'h2' });
    const session = await new Promise<http2.ServerHttp2Session>((resolve) => {
      this.h2.once('session', resolve);
      this.h2.emit('connection', socket);
    });
    session.on('error', (err) => this.options.log.warn({ err: err.message }, 'tunnel error'));
    this.keepAlive(session, socket);
    // The gateway's process went away (its kernel closed the socket): redial now, not at the next PING.
    socket.once('end', () => {
      if (!session.destroyed) session.destroy(new Error('the gateway closed the connection'));
    });
    session.once('close', () => {
      if (this.session !== session) return;
      this.session = undefined;
      if (this.stopped) return;
      this.options.log.warn({ gateway: gateway.origin }, 'tunnel closed; reconnecting');
      this.scheduleRetry();
    });
    this.session = session;
    this.socket = socket;
    this.lastKey = key;
    this.options.log.info({ gateway: gateway.origin, connections: [...this.options.serve.keys()] }, 'tunnel connected');
  }

  /** PINGs the gateway; a dead one has its session destroyed with an error, so every open stream ends now instead of hanging. */
  private keepAlive(session: http2.ServerHttp2Session, socket: Socket): void {
    keepAlive(session, this.options.heartbeat ?? DEFAULT_HEARTBEAT, () => {
      this.options.log.warn({ gateway: this.options.gateway.origin }, 'the gateway missed its heartbeat; redialling');
      session.destroy(new Error('the gateway stopped answering PINGs'));
      // A frozen peer never acknowledges the FIN, nor reads what is still being written: free the socket now. Not
      // through `session.socket`: while a write is under way the session is still open, and that proxy throws on destroy.
      socket.destroy();
    });
  }

  private async forward(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): Promise<void> {
    const connection = String(headers[HEADER.connection] ?? '');
    const base = this.options.serve.get(connection);
    const upstream = this.upstreams.get(connection);
    const method = String(headers[':method']);
    const path = String(headers[':path'] ?? '');
    if (!base || !upstream) return this.refuse(stream, 'unknown_connection', `this agent does not serve connection "${connection}"`);
    // Only a path on the configured model server: no absolute URLs, no other hosts.
    if (!path.startsWith('/') || path.startsWith('//') || (method !== 'POST' && method !== 'GET')) return this.refuse(stream, 'bad_request', 'bad method or path', 400);

    const cancel = new AbortController();
    // A dead tunnel destroys its streams with an error; the close below handles it (unheard, it would crash the agent).
    stream.on('error', (err) => this.options.log.debug({ connection, err: err.message }, 'tunnel stream error'));
    stream.once('close', () => {
      if (!stream.writableFinished || stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) cancel.abort(new Error('gateway cancelled the stream'));
    });
    const forwardHeaders: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) {
      if (k.startsWith(':') || HOP_BY_HOP.has(k) || k === HEADER.connection || v === undefined) continue;
      forwardHeaders[k] = Array.isArray(v) ? v.join(', ') : v;
    }
    this.metrics.active.inc();
    this.idle.started();
    let outcome = 'ok';
    try {
      const request = {
        path: base.pathname.replace(/\/$/, '') + path,
        method: method as 'POST' | 'GET',
        headers: forwardHeaders,
        body: method === 'POST' ? await requestBody(stream) : null,
      };
      await relayAnswer(upstream, request, stream, cancel.signal);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (cancel.signal.aborted || stream.closed) outcome = 'cancelled';
      else if (!stream.headersSent && code && CONNECT_FAILURES.has(code)) {
        outcome = 'upstream_unreachable';
        this.refuse(stream, 'upstream_unreachable', `the model server for "${connection}" refused the connection (${code})`);
      } else {
        // The model broke mid-answer (or before): reset the stream so the gateway reports it, never a silent truncation.
        outcome = 'upstream_error';
        // Mid-answer, destroyed (RST_STREAM at once): close() would first end the stream cleanly behind the frames written so far.
        if (stream.headersSent) stream.destroy(err as Error);
        else if (!stream.destroyed) stream.close(NGHTTP2_INTERNAL_ERROR);
      }
      // A cancellation is the gateway's (its client left); a model that failed is the operator's to hear about.
      const level = outcome === 'cancelled' ? 'debug' : 'warn';
      this.options.log[level]({ connection, outcome, code, err: (err as Error).message, answered: stream.headersSent }, 'forward failed');
    } finally {
      this.metrics.active.dec();
      this.idle.ended();
      this.metrics.streams.inc({ connection, outcome });
    }
  }

  private refuse(stream: http2.ServerHttp2Stream, code: string, message: string, status = 502): void {
    if (stream.closed || stream.headersSent) return;
    stream.respond({ ':status': status, 'content-type': 'application/json', [HEADER.agentError]: code });
    stream.end(JSON.stringify({ error: { message: `modelgate agent: ${message}`, type: 'upstream_error', param: null, code } }));
  }
}

/**
 * The request's whole body, before the model server is asked: undici writes
 * a request with a streamed body only once the first chunk is there, so
 * dispatched at once, a connection waited on a gateway seconds behind,
 * idle in the model server's eyes: a kept-alive one it closed ("other side
 * closed"), a new one it answered 408 after its 60 s headers timeout (248
 * of 5,000 soak streams). The gateway sends the body in one piece anyway.
 */
function requestBody(stream: http2.ServerHttp2Stream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    // Cut or cancelled first (after 'end', this changes nothing).
    stream.once('close', () => reject(new Error('gateway cancelled the stream')));
  });
}

/**
 * One model request, its answer written straight onto the tunnel stream
 * through undici's handler interface: a response body stream piped on (a
 * Readable and a pipeline per answer, several ticks per chunk) was most of
 * the agent's CPU per frame. Resolves once the answer is written; rejects
 * with undici's error, or the cancellation's reason.
 */
function relayAnswer(upstream: Dispatcher, request: Dispatcher.DispatchOptions, stream: http2.ServerHttp2Stream, cancelled: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    upstream.dispatch(request, {
      onRequestStart(controller) {
        if (cancelled.aborted) controller.abort(cancelled.reason as Error);
        else cancelled.addEventListener('abort', () => controller.abort(cancelled.reason as Error), { once: true });
      },
      onResponseStart(controller, statusCode, headers) {
        if (statusCode < 200) return; // informational: the answer's own headers follow
        if (stream.closed) return controller.abort(new Error('gateway cancelled the stream'));
        const out: http2.OutgoingHttpHeaders = { ':status': statusCode };
        for (const [k, v] of Object.entries(headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) out[k] = v;
        stream.respond(out);
      },
      onResponseData(controller, chunk) {
        // The gateway's reader sets the pace: the model is not read while this stream's window is full.
        if (stream.write(chunk)) return;
        controller.pause();
        stream.once('drain', () => controller.resume());
      },
      onResponseEnd() {
        stream.end();
        resolve();
      },
      onResponseError(_controller, err) {
        reject(err);
      },
    });
  });
}

function describeError(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: { code?: string; message?: string } };
    if (parsed.error?.message) return `${parsed.error.code ?? ''}: ${parsed.error.message}`;
  } catch {
    /* not JSON */
  }
  return body.slice(0, 200);
}

/** The agent's own /healthz, /readyz and /metrics, on a port of its own. */
export async function serveAgentStatus(agent: Agent, host: string, port: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' || path === '/readyz') {
      const ready = agent.state === 'connected';
      const status = path === '/healthz' || ready ? 200 : 503;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: path === '/healthz' ? 'ok' : ready ? 'ready' : 'not_ready', tunnel: agent.state }));
      return;
    }
    if (path === '/metrics') {
      void agent.registry.metrics().then((body) => {
        res.writeHead(200, { 'content-type': agent.registry.contentType });
        res.end(body);
      });
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: 'The agent serves /healthz, /readyz and /metrics.', type: 'not_found_error', param: null, code: 'unknown_endpoint' } }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

export function statusUrl(server: http.Server): string {
  const { address, port } = server.address() as AddressInfo;
  return `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
}
