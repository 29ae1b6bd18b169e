// Browser sessions after a web sign-in. The cookie holds a random ID; the
// shared identity state holds the session under the ID's SHA-256, so a
// leaked database cannot be turned into cookies. Each session has its own
// CSRF token, required on every state-changing call made with the cookie.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError } from '../http/errors.js';
import type { IdentityState } from '../identity/state/identity-state.js';
import { cookieName, readCookie, setCookie } from './cookies.js';

export interface SessionIdentity {
  subject: string;
  email?: string;
  name?: string;
  groups: string[];
  /** The IdP the person signed in at: SAML entity ID or OIDC issuer. */
  origin: string;
  method: 'oidc' | 'saml';
}

export interface WebSession {
  identity: SessionIdentity;
  csrfToken: string;
  /** Epoch ms. */
  expiresAt: number;
}

export const CSRF_HEADER = 'x-csrf-token';
const SESSION_COOKIE = 'modelgate_session';

export class WebSessions {
  constructor(
    private readonly state: IdentityState,
    private readonly lifetimeMs: number,
    /** The gateway's public origin; browsers name the calling page's origin, which must be this one. */
    private readonly origin: string,
  ) {}

  /** Over TLS, cookies are Secure and __Host- prefixed. */
  get secure(): boolean {
    return this.origin.startsWith('https:');
  }

  get cookie(): string {
    return cookieName(SESSION_COOKIE, this.secure);
  }

  async start(res: ServerResponse, identity: SessionIdentity): Promise<WebSession> {
    const id = randomBytes(32).toString('base64url');
    const session: WebSession = { identity, csrfToken: randomBytes(32).toString('base64url'), expiresAt: Date.now() + this.lifetimeMs };
    await this.state.put('session', digest(id), JSON.stringify(session), session.expiresAt);
    setCookie(res, this.cookie, id, { secure: this.secure, sameSite: 'Lax', maxAge: Math.floor(this.lifetimeMs / 1000) });
    return session;
  }

  async find(req: IncomingMessage): Promise<WebSession | undefined> {
    const id = readCookie(req, this.cookie);
    if (!id || !/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    const stored = await this.state.get('session', digest(id), Date.now());
    return stored === undefined ? undefined : (JSON.parse(stored) as WebSession);
  }

  /** The session of a state-changing call: the cookie and its CSRF token in the X-CSRF-Token header, both required. */
  async requireForChange(req: IncomingMessage): Promise<WebSession> {
    const session = await this.require(req);
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== this.origin) {
      throw new GatewayError(`Cross-origin call from ${origin} refused.`, { status: 403, type: 'permission_error', code: 'csrf_origin_mismatch' });
    }
    const sent = req.headers[CSRF_HEADER];
    if (typeof sent !== 'string' || !sameSecret(sent, session.csrfToken)) {
      throw new GatewayError(`This call changes state and needs the session's CSRF token in the ${CSRF_HEADER} header (GET /auth/session returns it).`, {
        status: 403,
        type: 'permission_error',
        code: 'csrf_token_invalid',
      });
    }
    return session;
  }

  async require(req: IncomingMessage): Promise<WebSession> {
    const session = await this.find(req);
    if (!session) {
      throw new GatewayError('No signed-in browser session; sign in at /auth/oidc/login or /auth/saml/login.', {
        status: 401,
        type: 'authentication_error',
        code: 'session_missing',
      });
    }
    return session;
  }

  async end(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const id = readCookie(req, this.cookie);
    if (id) await this.state.delete('session', digest(id));
    setCookie(res, this.cookie, '', { secure: this.secure, sameSite: 'Lax', maxAge: 0 });
  }
}

export function digest(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}
