// The proxy behind `modelgate connect`: listens on loopback, puts the
// caller's fresh token on every request and forwards it to the gateway, so
// any OpenAI-compatible client works with a dummy key and keeps working
// across token expiry. A request the gateway refuses for an expired or
// revoked token is retried once with a refreshed token.
import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { Agent, request, type Dispatcher } from 'undici';
import { pathForLog } from '../ops/logger.js';
import { newRequestId } from '../http/request-id.js';
import { ProfileNotFoundError } from './credential-store.js';
import { SessionExpiredError, type TokenSource } from './token-source.js';

/** Bodies are buffered so a refused request can be sent again; model requests are far smaller. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'host', 'authorization', 'cookie', 'content-length', 'expect',
]);
/** Token refusals worth one retry with a refreshed token. */
export const RETRY_ON = new Set(['token_expired', 'token_revoked', 'token_key_unknown', 'token_signature_invalid', 'token_not_yet_valid']);

export interface LocalProxyOptions {
  gateway: string;
  tokens: TokenSource;
  /** Refresh the token when it expires within this many seconds; default 30. */
  refreshMarginSeconds?: number;
  /** When set, callers must send this as their API key: for machines other people can log in to. */
  localKey?: string;
  onRequest?: (entry: { method: string; path: string; status: number; retried: boolean }) => void;
}

export class LocalProxy {
  private readonly server: Server;
  private readonly agent = new Agent({ keepAliveTimeout: 30_000, headersTimeout: 10 * 60_000, bodyTimeout: 10 * 60_000 });
  private port = 0;

  constructor(private readonly options: LocalProxyOptions) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (res.headersSent) return void res.destroy();
        // No usable login is the caller's to fix, not a gateway failure an SDK should retry: 401, saying how.
        if (err instanceof ProfileNotFoundError || err instanceof SessionExpiredError) {
          sendError(res, 401, err instanceof ProfileNotFoundError ? 'connect_not_logged_in' : 'connect_session_expired', `modelgate connect has no valid login to send: ${err.message}`);
          return;
        }
        sendError(res, 502, 'connect_proxy_error', `modelgate connect could not reach the gateway: ${(err as Error).message}`);
      });
    });
  }

  static generateLocalKey(): string {
    return `mgc-${randomBytes(24).toString('base64url')}`;
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
    return `http://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    await this.agent.close();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // DNS rebinding: a web page whose name resolves to 127.0.0.1 must not reach the proxy as a same-origin site.
    if (!this.isLoopbackHost(req.headers.host)) {
      sendError(res, 403, 'connect_host_refused', 'modelgate connect answers only to 127.0.0.1 and localhost.');
      return;
    }
    // A page on another site must not drive the caller's identity (approve a review, hold a session) through the proxy.
    const crossSite = crossSiteRefusal(req, this.port);
    if (crossSite) {
      sendError(res, 403, 'connect_cross_site_refused', crossSite);
      return;
    }
    const target = gatewayTarget(req.url ?? '/', this.options.gateway);
    if (!target) {
      sendError(res, 400, 'connect_path_refused', `modelgate connect forwards only the gateway's API paths (${API_PREFIXES.join(', ')}) to ${new URL(this.options.gateway).origin}.`);
      return;
    }
    if (!SAFE_METHODS.has(req.method ?? 'GET') && !isJson(req.headers['content-type'])) {
      sendError(res, 415, 'connect_json_required', 'State-changing calls through modelgate connect need "Content-Type: application/json".');
      return;
    }
    if (this.options.localKey && !this.hasLocalKey(req.headers.authorization)) {
      sendError(res, 401, 'connect_key_invalid', 'This modelgate connect proxy requires the key it printed at start-up as the API key.');
      return;
    }
    const body = await readBody(req);
    if (body === undefined) {
      sendError(res, 413, 'request_too_large', `Request bodies through modelgate connect are limited to ${MAX_BODY_BYTES} bytes.`);
      return;
    }
    const abort = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) abort.abort();
    });

    let token = await this.options.tokens.bearer({ minValiditySeconds: this.options.refreshMarginSeconds ?? 30 });
    let upstream = await this.forward(req, target, body, token, abort.signal);
    let retried = false;
    if (upstream.statusCode === 401) {
      const refusal = await readRefusal(upstream);
      if (refusal.code && RETRY_ON.has(refusal.code)) {
        token = await this.options.tokens.bearer({ force: true, refusedToken: token });
        upstream = await this.forward(req, target, body, token, abort.signal);
        retried = true;
      } else {
        this.options.onRequest?.({ method: req.method ?? 'GET', path: pathForLog(req.url), status: 401, retried });
        res.writeHead(401, responseHeaders(upstream.headers)).end(refusal.raw);
        return;
      }
    }
    this.options.onRequest?.({ method: req.method ?? 'GET', path: pathForLog(req.url), status: upstream.statusCode, retried });
    res.writeHead(upstream.statusCode, responseHeaders(upstream.headers));
    res.flushHeaders();
    await pipeline(upstream.body, res).catch(() => {
      // The client or the gateway went away; either way the response is over.
    });
  }

  private forward(req: IncomingMessage, target: URL, body: Buffer, token: string, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name)) continue;
      headers[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    headers.authorization = `Bearer ${token}`;
    return request(target, {
      method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
      headers,
      body: body.length > 0 || !['GET', 'HEAD'].includes(req.method ?? 'GET') ? body : undefined,
      signal,
      dispatcher: this.agent,
    });
  }

  private isLoopbackHost(host: string | undefined): boolean {
    return host === `127.0.0.1:${this.port}` || host === `localhost:${this.port}` || host === `[::1]:${this.port}`;
  }

  private hasLocalKey(authorization: string | undefined): boolean {
    const sent = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1] ?? '';
    const digest = (v: string) => createHash('sha256').update(v).digest();
    return timingSafeEqual(digest(sent), digest(this.options.localKey!));
  }
}

/** The gateway's API: the OpenAI and Ollama model paths, reviews, access and sessions. Nothing else carries the token. */
export const API_PREFIXES = ['/v1/', '/api/'];
const SAFE_METHODS = new Set(['GET', 'HEAD']);

/**
 * The URL to send a request to, always on the gateway's origin, or undefined when the request line is not a
 * plain API path. `new URL(req.url, gateway)` would let `//host/x`, `/\\host/x` or an absolute URL replace the
 * gateway and hand the caller's token to whoever runs that host.
 */
export function gatewayTarget(requestTarget: string, gateway: string): URL | undefined {
  if (!requestTarget.startsWith('/') || requestTarget.startsWith('//') || requestTarget.includes('\\')) return undefined;
  const origin = new URL(gateway).origin;
  const parsed = new URL(`${origin}${requestTarget}`);
  // Dot segments (also percent-encoded) are resolved by the parse; check what is actually requested.
  if (parsed.origin !== origin || !API_PREFIXES.some((prefix) => parsed.pathname.startsWith(prefix))) return undefined;
  return parsed;
}

/**
 * Why a request from a browser page of another origin is refused, or undefined. Browsers send `Origin` on
 * cross-origin POSTs (also no-cors ones) and `Sec-Fetch-Site` on everything; command-line clients send neither.
 */
function crossSiteRefusal(req: IncomingMessage, port: number): string | undefined {
  const fetchSite = req.headers['sec-fetch-site'];
  if (fetchSite !== undefined && fetchSite !== 'same-origin' && fetchSite !== 'none') {
    return `modelgate connect refuses requests from web pages of other origins (Sec-Fetch-Site: ${fetchSite}).`;
  }
  const origin = req.headers.origin;
  const own = [`http://127.0.0.1:${port}`, `http://localhost:${port}`, `http://[::1]:${port}`];
  if (origin !== undefined && !own.includes(origin)) return `modelgate connect refuses requests from web pages of other origins (Origin: ${origin}).`;
  return undefined;
}

function isJson(contentType: string | undefined): boolean {
  return /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(contentType ?? '');
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function readRefusal(upstream: Dispatcher.ResponseData): Promise<{ code?: string; raw: string }> {
  const raw = await upstream.body.text();
  try {
    const code = (JSON.parse(raw) as { error?: { code?: unknown } }).error?.code;
    return typeof code === 'string' ? { code, raw } : { raw };
  } catch {
    return { raw };
  }
}

function responseHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || (HOP_BY_HOP.has(name) && name !== 'content-length')) continue;
    out[name] = value;
  }
  return out;
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { message, type: status === 401 ? 'authentication_error' : 'connect_error', param: null, code } });
  // A request ID on the proxy's own answers too, so a report can tell them from the gateway's.
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-request-id': newRequestId() }).end(body);
}
