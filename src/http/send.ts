// Writing responses. Every response, error or not, carries X-Request-Id.
import type { ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { GatewayError } from './errors.js';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    // Answers are per caller unless the handler says otherwise (public discovery documents do).
    'cache-control': 'no-store',
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
  });
  res.end(payload);
}

export function sendError(res: ServerResponse, error: GatewayError): void {
  sendJson(res, error.status, error.toJSON(), error.headers);
}

/** Resolves when the client can take more data; false if it went away first. */
export async function drained(res: ServerResponse): Promise<boolean> {
  if (res.destroyed) return false;
  const [event] = await Promise.race([once(res, 'drain').then(() => ['drain']), once(res, 'close').then(() => ['close'])]);
  return event === 'drain';
}
