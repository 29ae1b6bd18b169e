// The gateway's end of agent tunnels. Accepts agents on their own listener,
// checks each one's key and announced connections, then drives the reversed
// HTTP/2 session: the gateway opens one stream per model request. Keeps
// agents honest while connected: a PING heartbeat, and a periodic re-read of
// their keys so a revocation (or a rotated key's end) cuts them at once.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { PassThrough, type Duplex, type Readable } from 'node:stream';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ConnectionConfig } from '../config/schema.js';
import { asGatewayError, GatewayError } from '../http/errors.js';
import type { Logger } from '../ops/logger.js';
import type { AgentsConfig } from './config.js';
import { keepAlive } from './heartbeat.js';
import { keyIsLive, type AgentKeyRecord } from './key-store.js';
import { HEADER, HOP_BY_HOP, NOT_STARTED_ERRORS, SESSION_MEMORY_MB, TUNNEL_PATH, UPGRADE_TOKEN } from './protocol.js';
import type { AgentKeys } from './registry.js';
import type { AgentRouter } from './router.js';

const { NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM } = http2.constants;
/** Room for many streams' flow-control windows at once, so one slow reader cannot stall the tunnel. */
const CONNECTION_WINDOW_BYTES = 32 * 1024 * 1024;

/** A request the agent never passed to its model: safe to send to another agent. */
export class NotStartedError extends Error {
  override name = 'NotStartedError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export interface TunnelRequest {
  connection: ConnectionConfig;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
}

export interface TunnelResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

/**
 * The response body, ending only if the agent ended the stream cleanly.
 * node ends a stream's readable side even when the tunnel dies or the
 * agent resets it; passed on as is, a cut answer would look complete.
 */
function completeOnly(stream: http2.ClientHttp2Stream): Readable {
  const body = new PassThrough();
  stream.pipe(body, { end: false });
  stream.once('error', (err) => body.destroy(err));
  stream.once('close', () => {
    if (stream.rstCode === NGHTTP2_NO_ERROR) body.end();
    else body.destroy(new Error(`the agent tunnel stream ended abnormally (HTTP/2 code ${stream.rstCode})`));
  });
  // The consumer going away (client disconnect, masking stopped) cancels the stream at the agent.
  body.once('close', () => {
    if (!stream.closed) stream.close(NGHTTP2_CANCEL);
  });
  return body;
}

export function isAgentServed(connection: ConnectionConfig): boolean {
  return connection.targets.some((t) => t.via === 'agent');
}

/** One connected agent. */
export class AgentTunnel {
  inFlight = 0;
  private goingAway = false;
  readonly connectedAt = Date.now();

  constructor(
    readonly instance: string,
    readonly key: AgentKeyRecord,
    readonly connections: ReadonlySet<string>,
    readonly version: string,
    readonly session: http2.ClientHttp2Session,
  ) {
    session.once('goaway', () => (this.goingAway = true));
  }

  get name(): string {
    return this.key.agent;
  }

  get usable(): boolean {
    return !this.goingAway && !this.session.closed && !this.session.destroyed;
  }

  /** Opens a stream for one request and resolves on the agent's response headers. */
  send(request: TunnelRequest): Promise<TunnelResponse> {
    const { timeouts, name } = request.connection;
    return new Promise((resolve, reject) => {
      if (!this.usable) return reject(new NotStartedError(`agent "${this.name}" is closing`, 'agent_closing'));
      let stream: http2.ClientHttp2Stream;
      try {
        stream = this.session.request(
          { ':method': request.method, ':path': request.path, [HEADER.connection]: name, ...request.headers },
          { endStream: request.body === undefined },
        );
      } catch (err) {
        return reject(new NotStartedError(`agent "${this.name}" refused a new stream: ${(err as Error).message}`, 'agent_closing'));
      }
      this.inFlight++;
      let answered = false;
      const cancel = () => stream.close(NGHTTP2_CANCEL);
      request.signal.addEventListener('abort', cancel, { once: true });
      const headersTimer = setTimeout(() => {
        fail(new GatewayError(`The model server for connection "${name}" did not answer in time. Retry, or ask an operator to check it.`, { status: 504, type: 'timeout_error', code: 'upstream_timeout' }));
        stream.close(NGHTTP2_CANCEL);
      }, timeouts.response_headers);
      const fail = (err: Error) => {
        if (answered) return;
        answered = true;
        clearTimeout(headersTimer);
        reject(err);
      };
      stream.once('response', (headers) => {
        if (answered) return;
        const agentError = headers[HEADER.agentError];
        if (typeof agentError === 'string' && NOT_STARTED_ERRORS.has(agentError)) {
          stream.close(NGHTTP2_CANCEL);
          return fail(new NotStartedError(`agent "${this.name}" could not reach the model (${agentError})`, agentError));
        }
        answered = true;
        clearTimeout(headersTimer);
        // Idle: the longest silence between two chunks of the body, as for a direct upstream.
        stream.setTimeout(timeouts.idle, () => stream.destroy(new Error(`no data from agent "${this.name}" for ${timeouts.idle} ms`)));
        const out: Record<string, string | string[] | undefined> = {};
        for (const [k, v] of Object.entries(headers)) if (!k.startsWith(':') && !HOP_BY_HOP.has(k)) out[k] = v;
        resolve({ status: Number(headers[':status']), headers: out, body: completeOnly(stream) });
      });
      stream.once('error', (err: Error & { code?: string }) => fail(this.classify(stream, err)));
      stream.once('close', () => {
        this.inFlight--;
        request.signal.removeEventListener('abort', cancel);
        fail(this.classify(stream, new Error(`agent "${this.name}" closed the stream (code ${stream.rstCode})`)));
      });
      if (request.body !== undefined) stream.end(request.body);
    });
  }

  /**
   * An error before any answer, as "never passed to the model" when HTTP/2 says so: REFUSED_STREAM, or above GOAWAY's
   * last stream ID; and ENHANCE_YOUR_CALM, with which node's HTTP/2 server (the agent's) resets a stream it will not
   * take, over its session's memory or stream limits, before any JavaScript sees it. The agent never sends that code
   * itself, so it cannot mean a request its model already has.
   */
  private classify(stream: http2.ClientHttp2Stream, err: Error & { code?: string }): Error {
    if (
      stream.rstCode === NGHTTP2_REFUSED_STREAM ||
      stream.rstCode === NGHTTP2_ENHANCE_YOUR_CALM ||
      err.code === 'ERR_HTTP2_GOAWAY_SESSION' ||
      err.code === 'ERR_HTTP2_INVALID_SESSION'
    ) {
      return new NotStartedError(`agent "${this.name}" did not take the request: ${err.message}`, 'agent_refused');
    }
    return err;
  }

  /** Cuts the tunnel now: streams on it end with an error, the agent reconnects (or not, if its key is gone). */
  cut(reason = 'agent tunnel cut'): void {
    this.goingAway = true;
    // With an error, so open streams fail loudly: destroyed without one, node would end them as if complete.
    this.session.destroy(new Error(reason));
  }
}

export interface AgentHubOptions {
  keys: AgentKeys;
  config: AgentsConfig;
  connections: readonly ConnectionConfig[];
  log: Logger;
  registry: Registry;
}

export class AgentHub {
  private readonly tunnels = new Set<AgentTunnel>();
  private server: http.Server | https.Server | undefined;
  private keyCheck: NodeJS.Timeout | undefined;
  private readonly served: ReadonlySet<string>;
  private cursor = 0;
  private readonly changeListeners: Array<() => void> = [];
  /** Routing to agents held by other instances, when `agents.routing` is configured. */
  router: AgentRouter | undefined;
  private readonly connected: Gauge;
  private readonly handshakes: Counter;

  get keys(): AgentKeys {
    return this.options.keys;
  }

  constructor(private readonly options: AgentHubOptions) {
    this.served = new Set(options.connections.filter(isAgentServed).map((c) => c.name));
    const hub = this;
    this.connected = new Gauge({
      name: 'modelgate_agents_connected',
      help: 'Agent tunnels connected to this instance, by connection they serve.',
      labelNames: ['connection'] as const,
      registers: [options.registry],
      collect() {
        this.reset();
        for (const name of hub.served) this.set({ connection: name }, hub.agentsFor(name).length);
      },
    });
    this.handshakes = new Counter({
      name: 'modelgate_agent_handshakes_total',
      help: 'Agent tunnel handshakes by outcome (connected, or the refusal code).',
      labelNames: ['outcome'] as const,
      registers: [options.registry],
    });
  }

  async listen(): Promise<string> {
    const { listen, tls } = this.options.config;
    const server = tls ? https.createServer({ cert: readFileSync(tls.cert_file), key: readFileSync(tls.key_file) }) : http.createServer();
    server.on('request', (_req, res) => {
      res.writeHead(426, { 'content-type': 'application/json', upgrade: UPGRADE_TOKEN, connection: 'Upgrade' });
      res.end(JSON.stringify({ error: { message: `This port accepts modelgate agent tunnels only (${TUNNEL_PATH}, Upgrade: ${UPGRADE_TOKEN}).`, type: 'invalid_request_error', param: null, code: 'upgrade_required' } }));
    });
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void this.accept(req, socket, head));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listen.port, listen.host, () => resolve());
    });
    this.server = server;
    this.keyCheck = setInterval(() => void this.checkKeys(), this.options.config.key_check_interval).unref();
    return this.url;
  }

  get url(): string {
    const { address, port } = this.server!.address() as AddressInfo;
    const host = address.includes(':') ? `[${address}]` : address;
    return `${this.options.config.tls ? 'https' : 'http'}://${host}:${port}`;
  }

  /** Live agents serving `connection`, fewest streams first, ties in rotation. */
  agentsFor(connection: string, exclude?: ReadonlySet<AgentTunnel>): AgentTunnel[] {
    const all = [...this.tunnels].filter((t) => t.usable && t.connections.has(connection) && !exclude?.has(t));
    if (all.length < 2) return all;
    const start = this.cursor++ % all.length;
    const rotated = [...all.slice(start), ...all.slice(0, start)];
    return rotated.sort((a, b) => a.inFlight - b.inFlight);
  }

  /** Called when an agent connects or goes. */
  onChange(listener: () => void): void {
    this.changeListeners.push(listener);
  }

  list(): AgentTunnel[] {
    return [...this.tunnels];
  }

  /** Connections this instance has live agents for, with how many. */
  held(): Map<string, number> {
    const held = new Map<string, number>();
    for (const t of this.tunnels) if (t.usable) for (const c of t.connections) held.set(c, (held.get(c) ?? 0) + 1);
    return held;
  }

  /**
   * Sends `request` through this instance's agents for its connection,
   * moving on to the next agent only while HTTP/2 or the agent says the
   * model never saw it. Throws NotStartedError when no local agent took it
   * (another instance's may), a GatewayError once one had it.
   */
  async sendLocal(request: TunnelRequest): Promise<TunnelResponse & { agent: string }> {
    const name = request.connection.name;
    const tried = new Set<AgentTunnel>();
    let last: NotStartedError | undefined;
    for (;;) {
      const [agent] = this.agentsFor(name, tried);
      if (!agent) throw last ?? new NotStartedError(`no agent serving "${name}" is connected to this instance`, 'agent_unavailable');
      tried.add(agent);
      try {
        return { ...(await agent.send(request)), agent: agent.name };
      } catch (err) {
        if (request.signal.aborted || err instanceof GatewayError) throw err;
        if (!(err instanceof NotStartedError)) {
          throw new GatewayError(`The tunnel to agent "${agent.name}" for connection "${name}" broke before the model answered. Retry, or ask an operator to check the agent.`, {
            status: 502,
            type: 'upstream_error',
            code: 'agent_lost',
            cause: err,
          });
        }
        last = err;
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.keyCheck);
    for (const tunnel of this.tunnels) tunnel.cut();
    this.tunnels.clear();
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async accept(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const log = this.options.log;
    try {
      if ((req.url ?? '').split('?')[0] !== TUNNEL_PATH || req.headers.upgrade?.toLowerCase() !== UPGRADE_TOKEN) {
        throw new GatewayError(`Agent tunnels open with GET ${TUNNEL_PATH} and Upgrade: ${UPGRADE_TOKEN}.`, { status: 400, type: 'invalid_request_error', code: 'bad_tunnel_request' });
      }
      const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
      const key = await this.options.keys.authenticate(bearer);
      const announced = String(req.headers[HEADER.connections] ?? '')
        .split(',')
        .map((c) => c.trim())
        .filter(Boolean);
      if (announced.length === 0) throw forbidden('The agent announced no connections; run it with --serve NAME=URL.', 'agent_no_connections');
      for (const name of announced) {
        if (!key.connections.includes(name)) throw forbidden(`Agent "${key.agent}" may not serve connection "${name}" (its key allows: ${key.connections.join(', ')}).`, 'agent_connection_not_allowed');
        if (!this.served.has(name)) throw forbidden(`Connection "${name}" is not configured with a "via: agent" target on this gateway.`, 'agent_connection_unknown');
      }
      const version = String(req.headers[HEADER.version] ?? 'unknown').slice(0, 64);
      const instance = String(req.headers[HEADER.instance] ?? 'unknown').slice(0, 64);
      await new Promise<void>((resolve, reject) =>
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${UPGRADE_TOKEN}\r\nConnection: Upgrade\r\n\r\n`, (err) => (err ? reject(err) : resolve())),
      );
      if (head.length > 0) socket.unshift(head);
      (socket as Socket).setNoDelay?.(true);
      const session = http2.connect('http://agent.invalid', { createConnection: () => socket, maxSessionMemory: SESSION_MEMORY_MB });
      session.on('error', (err) => log.warn({ agent: key.agent, err: err.message }, 'agent tunnel error'));
      session.once('connect', () => {
        if (!session.destroyed) session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
      });
      const tunnel = new AgentTunnel(instance, key, new Set(announced), version, session);
      // The upgraded socket is half-open capable: an agent that died (FIN from its kernel) would otherwise look alive until the next PING.
      socket.once('end', () => tunnel.cut('the agent closed the connection'));
      this.tunnels.add(tunnel);
      this.heartbeat(tunnel);
      for (const listener of this.changeListeners) listener();
      session.once('close', () => {
        this.tunnels.delete(tunnel);
        for (const listener of this.changeListeners) listener();
        log.info({ agent: key.agent, instance }, 'agent disconnected');
      });
      this.handshakes.inc({ outcome: 'connected' });
      log.info({ agent: key.agent, instance, version, connections: announced }, 'agent connected');
    } catch (err) {
      const error = asGatewayError(err);
      this.handshakes.inc({ outcome: error.code });
      log.warn({ code: error.code, remote: req.socket.remoteAddress }, `agent refused: ${error.message}`);
      const body = JSON.stringify(error.toJSON());
      socket.end(`HTTP/1.1 ${error.status} ${http.STATUS_CODES[error.status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    }
  }

  private heartbeat(tunnel: AgentTunnel): void {
    const { heartbeat_interval, heartbeat_timeout } = this.options.config;
    keepAlive(tunnel.session, { intervalMs: heartbeat_interval, timeoutMs: heartbeat_timeout }, () => {
      this.options.log.warn({ agent: tunnel.name }, 'agent missed its heartbeat; closing the tunnel');
      tunnel.cut('the agent stopped answering PINGs');
    });
  }

  /** Re-reads connected agents' keys: a revoked or lapsed key cuts its tunnels. */
  private async checkKeys(): Promise<void> {
    const now = Date.now();
    const byKey = new Map<string, AgentTunnel[]>();
    for (const t of this.tunnels) byKey.set(t.key.id, [...(byKey.get(t.key.id) ?? []), t]);
    for (const [id, tunnels] of byKey) {
      let record: AgentKeyRecord | undefined;
      try {
        record = await this.options.keys.store.get(id);
      } catch (err) {
        this.options.log.warn({ err: (err as Error).message }, 'could not re-check agent keys; keeping tunnels until the store answers');
        return;
      }
      if (record && keyIsLive(record, now)) continue;
      for (const tunnel of tunnels) {
        this.options.log.warn({ agent: tunnel.name }, record?.revoked_at != null ? 'agent key revoked; tunnel cut' : 'agent key gone or expired; tunnel cut');
        tunnel.cut();
      }
    }
  }
}

function forbidden(message: string, code: string): GatewayError {
  return new GatewayError(message, { status: 403, type: 'permission_error', code });
}
