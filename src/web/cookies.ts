// Cookie parsing and the gateway's cookie attributes. Every cookie the
// gateway sets is HttpOnly; Secure (and the __Host- prefix, which pins it to
// this host and path /) whenever the gateway is reached over TLS.
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface CookieOptions {
  secure: boolean;
  /** Seconds; 0 deletes the cookie. */
  maxAge: number;
  /** Lax for sessions; None only for the SAML binding cookie, which must survive the IdP's cross-site POST. */
  sameSite: 'Lax' | 'None' | 'Strict';
  path?: string;
}

export function readCookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const separator = part.indexOf('=');
    if (separator < 0) continue;
    if (part.slice(0, separator).trim() === name) return part.slice(separator + 1).trim();
  }
  return undefined;
}

export function setCookie(res: ServerResponse, name: string, value: string, options: CookieOptions): void {
  const attributes = [`${name}=${value}`, `Path=${options.path ?? '/'}`, `Max-Age=${options.maxAge}`, 'HttpOnly', `SameSite=${options.sameSite}`];
  if (options.secure) attributes.push('Secure');
  const existing = res.getHeader('set-cookie');
  const list = Array.isArray(existing) ? existing : existing === undefined ? [] : [String(existing)];
  res.setHeader('set-cookie', [...list, attributes.join('; ')]);
}

/** `__Host-` cookies are only accepted over TLS with Path=/ and no Domain: nothing else can set or shadow them. */
export function cookieName(base: string, secure: boolean): string {
  return secure ? `__Host-${base}` : base;
}
