// Browser sign-in with OpenID Connect: authorization code + PKCE, with
// `state` and `nonce`. The pending login is kept in the shared identity
// state under its `state` value and used once; a random binding cookie ties
// it to the browser that started it, so an attacker cannot finish their own
// login in a victim's browser (login CSRF).
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as oidc from 'openid-client';
import type { OidcWebLoginConfig } from '../config/identity-schema.js';
import { GatewayError } from '../http/errors.js';
import { discoverOidcClient } from '../identity/oidc-client.js';
import type { Principal } from '../identity/principal.js';
import type { IdentityState } from '../identity/state/identity-state.js';
import type { TokenVerifier } from '../identity/verify-token.js';
import { cookieName, readCookie, setCookie } from './cookies.js';
import { OIDC_CALLBACK_PATH } from './login-paths.js';
import type { SessionIdentity } from './web-sessions.js';
import { digest, sameSecret } from './web-sessions.js';
import { loginFailed, safeReturnPath } from './web-http.js';

const LOGIN_TTL_MS = 10 * 60_000;
const BINDING_COOKIE = 'modelgate_oidc_login';

interface PendingLogin {
  nonce: string;
  codeVerifier: string;
  binding: string;
  returnTo: string;
}

export class OidcWebLogin {
  private client: Promise<oidc.Configuration> | undefined;

  constructor(
    private readonly config: OidcWebLoginConfig,
    private readonly state: IdentityState,
    private readonly verifier: TokenVerifier,
    /** The gateway's public URL, without a trailing slash. */
    private readonly publicUrl: string,
  ) {}

  private get secure(): boolean {
    return this.publicUrl.startsWith('https:');
  }

  private get redirectUri(): string {
    return `${this.publicUrl}${OIDC_CALLBACK_PATH}`;
  }

  /** Where to send the browser to sign in. */
  async begin(res: ServerResponse, returnTo: string | null): Promise<string> {
    const client = await this.discover();
    const stateValue = oidc.randomState();
    const binding = randomBytes(32).toString('base64url');
    const pending: PendingLogin = {
      nonce: oidc.randomNonce(),
      codeVerifier: oidc.randomPKCECodeVerifier(),
      binding: digest(binding),
      returnTo: safeReturnPath(returnTo),
    };
    await this.state.put('oidc_login', stateValue, JSON.stringify(pending), Date.now() + LOGIN_TTL_MS);
    setCookie(res, cookieName(BINDING_COOKIE, this.secure), binding, {
      secure: this.secure,
      sameSite: 'Lax',
      maxAge: LOGIN_TTL_MS / 1000,
    });
    const parameters: Record<string, string> = {
      redirect_uri: this.redirectUri,
      scope: this.config.scopes.join(' '),
      state: stateValue,
      nonce: pending.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(pending.codeVerifier),
      code_challenge_method: 'S256',
    };
    if (this.config.resource) parameters.resource = this.config.resource;
    return oidc.buildAuthorizationUrl(client, parameters).href;
  }

  /** Finishes the login at the callback: the identity to start a session with, and where to go next. */
  async complete(req: IncomingMessage, res: ServerResponse): Promise<{ identity: SessionIdentity; returnTo: string }> {
    const callbackUrl = new URL(req.url ?? '/', this.publicUrl);
    const stateValue = callbackUrl.searchParams.get('state');
    if (!stateValue) throw loginFailed('login_state_missing', 'The sign-in response has no state; start signing in again.');
    const stored = await this.state.take('oidc_login', stateValue, Date.now());
    if (stored === undefined) throw loginFailed('login_expired', 'This sign-in has expired or was already used; start signing in again.');
    const pending = JSON.parse(stored) as PendingLogin;

    const bindingCookie = cookieName(BINDING_COOKIE, this.secure);
    const binding = readCookie(req, bindingCookie);
    setCookie(res, bindingCookie, '', { secure: this.secure, sameSite: 'Lax', maxAge: 0 });
    if (!binding || !sameSecret(digest(binding), pending.binding)) {
      throw loginFailed('login_binding_mismatch', 'This sign-in was started in another browser; start signing in again here.');
    }

    const client = await this.discover();
    let tokens;
    try {
      tokens = await oidc.authorizationCodeGrant(
        client,
        callbackUrl,
        { pkceCodeVerifier: pending.codeVerifier, expectedState: stateValue, expectedNonce: pending.nonce, idTokenExpected: true },
        this.config.resource ? { resource: this.config.resource } : undefined,
      );
    } catch (err) {
      throw loginFailed('login_rejected', `The identity provider's sign-in response was refused: ${(err as Error).message}`, err);
    }
    const principal = await this.principalFrom(tokens.access_token, tokens.claims() ?? {});
    const identity: SessionIdentity = { subject: principal.subject, groups: principal.groups, origin: this.config.issuer, method: 'oidc' };
    if (principal.email) identity.email = principal.email;
    if (principal.name) identity.name = principal.name;
    return { identity, returnTo: pending.returnTo };
  }

  /**
   * The access token, when it is a JWT for this gateway, maps claims exactly as
   * API calls do; otherwise (e.g. Google's opaque tokens) the ID token, already
   * verified by openid-client, is mapped with the same issuer's rules.
   */
  private async principalFrom(accessToken: string, idTokenClaims: Record<string, unknown>): Promise<Principal> {
    try {
      return await this.verifier.verify(accessToken);
    } catch (err) {
      if (err instanceof GatewayError && err.status >= 500) throw err;
      return this.verifier.principalFromVerifiedClaims(this.config.issuer, idTokenClaims);
    }
  }

  private discover(): Promise<oidc.Configuration> {
    this.client ??= discoverOidcClient(this.config.issuer, this.config.client_id, this.config.client_secret).catch((err: unknown) => {
      this.client = undefined;
      throw new GatewayError(`The identity provider ${this.config.issuer} is unreachable; try signing in again shortly.`, {
        status: 503,
        type: 'service_unavailable',
        code: 'idp_unavailable',
        cause: err,
      });
    });
    return this.client;
  }
}
