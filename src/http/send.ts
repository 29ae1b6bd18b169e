// Writing responses. Every response, error or not, carries X-Request-Id.
import type { ServerResponse } from 'node:http';
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

/** The header carrying an error's stable code, for clients whose error shape has no room for it (Ollama's). */
export const ERROR_CODE_HEADER = 'x-modelgate-error-code';

/** Each API answers in its own error shape: OpenAI's object, or Ollama's string on `/api/*`. */
export type ErrorShape = 'openai' | 'ollama';

export function sendError(res: ServerResponse, error: GatewayError, shape: ErrorShape = 'openai'): void {
  const body = shape === 'ollama' ? error.toOllamaJSON() : error.toJSON();
  sendJson(res, error.status, body, { ...error.headers, [ERROR_CODE_HEADER]: error.code });
}

/** Ollama's API lives under `/api/`; everything else speaks OpenAI's error shape. */
export function errorShapeFor(path: string): ErrorShape {
  return path.startsWith('/api/') ? 'ollama' : 'openai';
}

/**
 * Resolves when the client can take more data; false if it went away first.
 * Both listeners go on either outcome: a slow reader drains thousands of
 * times, and a listener left per drain would grow with the stream.
 */
export function drained(res: ServerResponse): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const settle = (open: boolean) => (): void => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      res.off('error', onClose);
      resolve(open);
    };
    const onDrain = settle(true);
    const onClose = settle(false);
    res.once('drain', onDrain);
    res.once('close', onClose);
    res.once('error', onClose);
  });
}
