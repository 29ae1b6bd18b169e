// How the CLI gets tokens for a gateway: it reads the gateway's
// /.well-known/modelgate, then signs in at the IdP it names with the Device
// Authorization Grant (RFC 8628) when the IdP supports it, or else with an
// authorization code + PKCE through a loopback redirect (RFC 8252), as gcloud
// and gh do. Refreshes and revocation go to the same IdP.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { discoverOidcClient } from '../identity/oidc-client.js';
import type { GatewayDiscovery } from '../web/well-known.js';
import type { Profile, StoredTokens } from './credential-store.js';

export type LoginSettings = NonNullable<GatewayDiscovery['login']>;

export interface LoginInteraction {
  /** Device flow: show the person where to go and which code to enter. */
  showDeviceCode(code: { verificationUri: string; verificationUriComplete?: string; userCode: string; expiresInSeconds: number }): void;
  /** Browser flow: open (or show) the IdP's sign-in page. */
  openBrowser(url: string): void | Promise<void>;
}

export interface LoginOptions {
  /** Overrides the gateway's preference. */
  flow?: 'device' | 'browser';
  /** Loopback port for the browser flow; 0 picks a free one. */
  callbackPort?: number;
  signal?: AbortSignal;
  /** How long the person has to finish signing in. */
  timeoutMs?: number;
}

export class LoginError extends Error {}

export async function fetchGatewayDiscovery(gateway: string): Promise<GatewayDiscovery> {
  const url = new URL('/.well-known/modelgate', gateway);
  let response: Response;
  try {
    response = await fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new LoginError(`cannot reach the gateway at ${url.origin}: ${(err as Error).message}`);
  }
  if (!response.ok) throw new LoginError(`${url} answered HTTP ${response.status}; is ${gateway} a modelgate gateway?`);
  return (await response.json()) as GatewayDiscovery;
}

/** Signs in and returns the profile to store. */
export async function login(gateway: string, interaction: LoginInteraction, options: LoginOptions = {}): Promise<Profile> {
  const discovery = await fetchGatewayDiscovery(gateway);
  const settings = discovery.login;
  if (!settings) throw new LoginError(`the gateway at ${gateway} does not offer CLI login (identity.login is not configured)`);
  const client = await discoverOidcClient(settings.issuer, settings.client_id);
  const deviceSupported = Boolean(client.serverMetadata().device_authorization_endpoint);
  const preferred = options.flow ?? (settings.flow === 'auto' ? (deviceSupported ? 'device' : 'browser') : settings.flow);
  if (preferred === 'device' && !deviceSupported) throw new LoginError(`${settings.issuer} does not support the device flow; use --browser`);
  const signal = AbortSignal.any([AbortSignal.timeout(options.timeoutMs ?? 10 * 60_000), ...(options.signal ? [options.signal] : [])]);
  const response =
    preferred === 'device'
      ? await deviceLogin(client, settings, interaction, signal).catch((err: unknown) => {
          throw new LoginError(`device sign-in failed: ${describeOAuthError(err)}`);
        })
      : await browserLogin(client, settings, interaction, options.callbackPort ?? 0, signal);
  return { gateway: discovery.gateway, login: settings, tokens: storedTokens(settings, response) };
}

async function deviceLogin(
  client: oidc.Configuration,
  settings: LoginSettings,
  interaction: LoginInteraction,
  signal: AbortSignal,
): Promise<oidc.TokenEndpointResponse> {
  const started = await oidc.initiateDeviceAuthorization(client, withResource(settings, { scope: settings.scopes.join(' ') }));
  interaction.showDeviceCode({
    verificationUri: started.verification_uri,
    ...(started.verification_uri_complete ? { verificationUriComplete: started.verification_uri_complete } : {}),
    userCode: started.user_code,
    expiresInSeconds: started.expires_in,
  });
  return oidc.pollDeviceAuthorizationGrant(client, started, withResource(settings, {}), { signal });
}

async function browserLogin(
  client: oidc.Configuration,
  settings: LoginSettings,
  interaction: LoginInteraction,
  port: number,
  signal: AbortSignal,
): Promise<oidc.TokenEndpointResponse> {
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const callback = await loopbackCallback(port, signal);
  try {
    const authorizationUrl = oidc.buildAuthorizationUrl(
      client,
      withResource(settings, {
        redirect_uri: callback.redirectUri,
        scope: settings.scopes.join(' '),
        code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
        state,
        nonce,
      }),
    );
    await interaction.openBrowser(authorizationUrl.href);
    const redirected = await callback.received;
    return await oidc
      .authorizationCodeGrant(
        client,
        redirected,
        { pkceCodeVerifier: codeVerifier, expectedState: state, ...(settings.scopes.includes('openid') ? { expectedNonce: nonce } : {}) },
        withResource(settings, {}),
      )
      .catch((err: unknown) => {
        throw new LoginError(`the sign-in response was refused: ${describeOAuthError(err)}`);
      });
  } finally {
    callback.close();
  }
}

/** A one-shot HTTP server on 127.0.0.1 that receives the IdP's redirect. */
async function loopbackCallback(port: number, signal: AbortSignal): Promise<{ redirectUri: string; received: Promise<URL>; close: () => void }> {
  let deliver!: (url: URL) => void;
  let fail!: (err: Error) => void;
  const received = new Promise<URL>((resolve, reject) => {
    deliver = resolve;
    fail = reject;
  });
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    if (url.pathname !== '/callback') {
      res.writeHead(404).end();
      return;
    }
    const failed = url.searchParams.get('error');
    res.writeHead(failed ? 400 : 200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(
      failed
        ? '<!doctype html><title>modelgate</title><p>Sign-in failed. Return to the terminal for details.</p>'
        : '<!doctype html><title>modelgate</title><p>Signed in to modelgate. You can close this window.</p>',
    );
    deliver(url);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const onAbort = () => fail(new LoginError('sign-in did not finish in time'));
  signal.addEventListener('abort', onAbort, { once: true });
  return {
    // RFC 8252 §7.3: the IP literal, not "localhost", which a hosts file or DNS could redirect.
    redirectUri: `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`,
    received,
    close() {
      signal.removeEventListener('abort', onAbort);
      server.close();
      server.closeAllConnections();
    },
  };
}

/** Trades the refresh token for new tokens; a rotated refresh token replaces the old one. */
export async function refreshTokens(profile: Profile): Promise<StoredTokens> {
  const { login: settings, tokens } = profile;
  if (!tokens.refreshToken) throw new LoginError('the login has no refresh token');
  const client = await discoverOidcClient(settings.issuer, settings.client_id);
  const response = await oidc.refreshTokenGrant(client, tokens.refreshToken, withResource(settings, {}));
  const refreshed = storedTokens(settings, response);
  if (!refreshed.refreshToken) refreshed.refreshToken = tokens.refreshToken;
  if (!refreshed.idToken && tokens.idToken && settings.bearer !== 'id_token') refreshed.idToken = tokens.idToken;
  return refreshed;
}

/** Revokes the refresh and access tokens where the IdP supports revocation (RFC 7009); false when it does not. */
/** What logout managed to revoke at the identity provider. */
export interface Revoked {
  /** The refresh token was revoked: no new access token can be had from it. */
  refreshToken: boolean;
}

export async function revokeTokens(profile: Profile): Promise<Revoked> {
  const client = await discoverOidcClient(profile.login.issuer, profile.login.client_id);
  if (!client.serverMetadata().revocation_endpoint) return { refreshToken: false };
  const { refreshToken, accessToken } = profile.tokens;
  if (refreshToken) await oidc.tokenRevocation(client, refreshToken, { token_type_hint: 'refresh_token' });
  await oidc.tokenRevocation(client, accessToken, { token_type_hint: 'access_token' }).catch(() => {
    // Many IdPs cannot revoke self-contained JWT access tokens; they expire soon anyway.
  });
  return { refreshToken: refreshToken !== undefined };
}

/** What the gateway said when asked to revoke a token it may have issued. */
export type GatewayRevocation =
  | { revoked: true; gateway: string; syncSeconds: number }
  | { revoked: false; reason: 'not_gateway_issued' | 'refused'; detail?: string };

/**
 * Revokes a token the gateway signed itself (`POST /auth/revoke`, presenting
 * it). A JWT whose `iss` is not the gateway's token issuer is left alone:
 * only its identity provider can end it.
 */
export async function revokeGatewayToken(token: string, gateway?: string): Promise<GatewayRevocation> {
  let issuer: string | undefined;
  try {
    issuer = decodeJwt(token).iss;
  } catch {
    return { revoked: false, reason: 'not_gateway_issued' };
  }
  if (!issuer) return { revoked: false, reason: 'not_gateway_issued' };
  // The token's own issuer claims to be a gateway: ask it, and only send the token there if it agrees.
  const discovery = await fetchGatewayDiscovery(gateway ?? issuer).catch(() => undefined);
  if (!discovery || discovery.token_issuer !== issuer) return { revoked: false, reason: 'not_gateway_issued' };
  const response = await fetch(new URL('/auth/revoke', discovery.gateway), {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
    signal: AbortSignal.timeout(10_000),
  });
  const body = (await response.json().catch(() => ({}))) as { sync_seconds?: number; error?: { message?: string; code?: string } };
  if (response.ok) return { revoked: true, gateway: discovery.gateway, syncSeconds: body.sync_seconds ?? 0 };
  // Already revoked or expired: there is nothing left to cut off.
  if (body.error?.code === 'token_revoked' || body.error?.code === 'token_expired') return { revoked: true, gateway: discovery.gateway, syncSeconds: 0 };
  return { revoked: false, reason: 'refused', detail: body.error?.message ?? `HTTP ${response.status}` };
}

function storedTokens(settings: LoginSettings, response: oidc.TokenEndpointResponse): StoredTokens {
  const bearer = settings.bearer === 'id_token' ? response.id_token : response.access_token;
  if (!bearer) throw new LoginError(`the identity provider returned no ${settings.bearer}`);
  const tokens: StoredTokens = { bearer, accessToken: response.access_token, expiresAt: expiryOf(bearer, response.expires_in) };
  if (response.refresh_token) tokens.refreshToken = response.refresh_token;
  if (response.id_token) tokens.idToken = response.id_token;
  return tokens;
}

/** A JWT says when it expires; an opaque token has only the response's expires_in. */
function expiryOf(token: string, expiresIn: number | undefined): number {
  try {
    const { exp } = decodeJwt(token);
    if (typeof exp === 'number') return exp;
  } catch {
    // not a JWT
  }
  return Math.floor(Date.now() / 1000) + (expiresIn ?? 300);
}

function withResource(settings: LoginSettings, parameters: Record<string, string>): Record<string, string> {
  return settings.resource ? { ...parameters, resource: settings.resource } : parameters;
}

/** openid-client errors carry the IdP's `error` code, or the failed check in `cause`. */
export function describeOAuthError(err: unknown): string {
  if (err instanceof LoginError) return err.message;
  const e = err as { error?: unknown; error_description?: unknown; message?: string; cause?: { message?: string } };
  if (typeof e.error === 'string') return typeof e.error_description === 'string' ? `${e.error}: ${e.error_description}` : e.error;
  return e.cause?.message ? `${e.message}: ${e.cause.message}` : String(e.message ?? err);
}
