// Reads a JSON request body with a hard size limit. The limit is enforced
// on bytes received, not on the declared Content-Length alone, so a chunked
// body cannot exceed it either.
import type { IncomingMessage } from 'node:http';
import { GatewayError, badRequest } from './errors.js';

/** Deeper than any real API body; JSON.parse's cost on deep nesting grows far faster than its size. */
export const DEFAULT_MAX_JSON_DEPTH = 64;

export interface JsonBodyOptions {
  /**
   * Also take a body sent without a JSON Content-Type: none at all, or the
   * form type `curl -d` sends. Ollama reads every body as JSON whatever its
   * type, and its documented examples rely on that.
   */
  lenientContentType?: boolean;
  /** Arrays and objects nested deeper are refused before parsing; default 64. */
  maxDepth?: number;
}

export async function readJsonBody(req: IncomingMessage, maxBytes: number, options: JsonBodyOptions = {}): Promise<unknown> {
  const contentType = req.headers['content-type'] ?? '';
  const lenient = options.lenientContentType && /^(?:application\/x-www-form-urlencoded\s*(?:;|$)|$)/i.test(contentType);
  if (!lenient && !/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(contentType)) {
    throw new GatewayError(
      `Unsupported Content-Type "${contentType || '(none)'}"; send a JSON body with "Content-Type: application/json".`,
      { status: 415, type: 'invalid_request_error', code: 'unsupported_media_type' },
    );
  }
  const encoding = req.headers['content-encoding'];
  if (encoding && encoding.toLowerCase() !== 'identity') {
    throw new GatewayError(`Content-Encoding "${encoding}" is not supported; send the body uncompressed.`, {
      status: 415,
      type: 'invalid_request_error',
      code: 'unsupported_content_encoding',
    });
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBytes) throw tooLarge(maxBytes);

  const chunks: Buffer[] = [];
  let received = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    received += chunk.length;
    if (received > maxBytes) throw tooLarge(maxBytes);
    chunks.push(chunk);
  }
  if (received === 0) throw badRequest('invalid_json', 'The request body is empty; send a JSON object.');

  const bytes = Buffer.concat(chunks, received);
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_JSON_DEPTH;
  if (exceedsDepth(bytes, maxDepth)) {
    throw badRequest('json_too_deep', `The request body nests JSON deeper than ${maxDepth} levels; flatten it.`);
  }
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw badRequest('invalid_json', `The request body is not valid JSON: ${(err as Error).message}.`);
  }
}

/**
 * True when arrays and objects nest deeper than `maxDepth`, found by one pass over the bytes that stops at
 * the first level too deep: a 4 MB body of brackets costs a scan of 65 bytes, not a parse. Brackets inside
 * strings do not count; UTF-8 continuation bytes never equal the ASCII ones looked at here.
 */
export function exceedsDepth(bytes: Uint8Array, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (inString) {
      if (b === 0x5c) i++; // backslash: skip the escaped byte
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) inString = true;
    else if (b === 0x5b || b === 0x7b) {
      if (++depth > maxDepth) return true;
    } else if (b === 0x5d || b === 0x7d) depth--;
  }
  return false;
}

function tooLarge(maxBytes: number): GatewayError {
  return new GatewayError(`The request body is larger than this gateway's limit of ${maxBytes} bytes.`, {
    status: 413,
    type: 'invalid_request_error',
    code: 'request_too_large',
    // The rest of the body is not read, so the connection cannot be reused.
    headers: { connection: 'close' },
  });
}

/** An optional JSON object body (API calls whose body may be empty). */
export async function jsonObjectBody(req: IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
  if (!hasBody) return {};
  const body = await readJsonBody(req, maxBytes);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('invalid_body', 'Send a JSON object.');
  return body as Record<string, unknown>;
}

export function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw badRequest('invalid_body', `"${key}" must be a string.`, key);
  return value;
}
