// Small HTTP pieces of the browser-facing routes: redirects, bounded form
// bodies, and return paths that cannot become open redirects.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { badRequest, GatewayError } from '../http/errors.js';

/** A SAMLResponse with many groups and a certificate is tens of KiB; more is not a login. */
const MAX_FORM_BYTES = 512 * 1024;

export function redirect(res: ServerResponse, location: string, status: 302 | 303 = 302): void {
  res.writeHead(status, { location, 'cache-control': 'no-store' });
  res.end();
}

/** Only same-site absolute paths: `//evil.example`, `/\\evil.example` and schemes are refused. */
export function safeReturnPath(value: string | null | undefined): string {
  if (!value || !value.startsWith('/') || value.startsWith('//') || /[\\\u0000-\u001f]/.test(value)) return '/';
  return value;
}

export async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/x-www-form-urlencoded\s*(?:;|$)/i.test(type)) {
    throw new GatewayError('Send the form as application/x-www-form-urlencoded.', {
      status: 415,
      type: 'invalid_request_error',
      code: 'unsupported_media_type',
    });
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw badRequest('form_too_large', `The form is larger than ${MAX_FORM_BYTES} bytes.`);
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export function methodNotAllowed(allowed: string): GatewayError {
  return new GatewayError(`Method not allowed; use ${allowed}.`, {
    status: 405,
    type: 'invalid_request_error',
    code: 'method_not_allowed',
    headers: { allow: allowed },
  });
}

export function loginFailed(code: string, message: string, cause?: unknown): GatewayError {
  return new GatewayError(message, { status: 400, type: 'authentication_error', code, cause });
}
