// Serves the web console (built by Vite from web/console into
// dist/console) at /ui. Every page gets a strict Content-Security-Policy:
// scripts and styles only from the gateway's own files, no inline script,
// no framing, and connections only back to the gateway. The console is a
// client of the public HTTP APIs; nothing here grants it anything more.
import { readFile, stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GatewayError } from '../http/errors.js';

export const CONSOLE_PATH = '/ui';

/** src/web and dist/web are both two levels below the package root, where dist/console lives. */
const ASSETS_DIR = fileURLToPath(new URL('../../dist/console/', import.meta.url));

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONSOLE_CSP,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

export function isConsolePath(path: string): boolean {
  return path === CONSOLE_PATH || path.startsWith(`${CONSOLE_PATH}/`);
}

/**
 * Answers GET/HEAD under /ui: a built asset (content-hashed, so cached for a
 * year), or the app's index.html for any page path (the app routes itself).
 */
export async function serveConsole(res: ServerResponse, path: string, method: string): Promise<void> {
  if (method !== 'GET' && method !== 'HEAD') {
    throw new GatewayError('Method not allowed; use GET.', { status: 405, type: 'invalid_request_error', code: 'method_not_allowed', headers: { allow: 'GET, HEAD' } });
  }
  const relative = decodePath(path.slice(CONSOLE_PATH.length).replace(/^\/+/, ''));
  if (relative === undefined) throw notFound(path);
  const isAsset = relative.startsWith('assets/') && extname(relative) !== '';
  const file = isAsset ? relative : 'index.html';
  const full = normalize(join(ASSETS_DIR, file));
  if (!full.startsWith(ASSETS_DIR) || full.includes(`${sep}..${sep}`)) throw notFound(path);
  let body: Buffer;
  try {
    if (!(await stat(full)).isFile()) throw notFound(path);
    body = await readFile(full);
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    if (!isAsset) {
      throw new GatewayError('The web console is not built in this installation; run `npm run build` (npm ci does it).', {
        status: 503,
        type: 'service_unavailable',
        code: 'console_not_built',
      });
    }
    throw notFound(path);
  }
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    'content-length': body.length,
    'cache-control': isAsset ? 'public, max-age=31536000, immutable' : 'no-store',
  });
  res.end(method === 'HEAD' ? undefined : body);
}

/** The path below /ui, decoded; undefined for traversal, backslashes, control characters or bad escapes. */
function decodePath(value: string): string | undefined {
  try {
    const decoded = decodeURIComponent(value);
    return /(^|\/)\.\.(\/|$)|\\|[\u0000-\u001f]/.test(decoded) ? undefined : decoded;
  } catch {
    return undefined;
  }
}

const notFound = (path: string): GatewayError =>
  new GatewayError(`No console file at ${path}.`, { status: 404, type: 'not_found_error', code: 'console_asset_not_found' });
