// The development OpenID provider: the real oidc-provider, in-process on
// loopback, with demo users, demo clients and its own login pages. `modelgate
// dev` runs it next to the gateway, and the project's tests use it as their
// real IdP, so it behaves like a production one: discovery, JWKS, JWT access
// tokens (RFC 9068) and genuine login interactions over HTTP.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider, {
  errors,
  type ClientMetadata,
  type Configuration,
  type ErrorOut,
  type InteractionDetails,
  type IssuedToken,
  type ProviderContext,
  type ProviderMiddleware,
} from 'oidc-provider';
import { ScriptedBrowser } from './idp-browser.js';
import {
  deviceCodeInputPage,
  deviceConfirmPage,
  deviceSuccessPage,
  errorPage,
  loginPage,
  logoutPage,
  logoutSuccessPage,
} from './idp-pages.js';
import { DevIdpStore } from './idp-store.js';

export * from './demo-identities.js';
import {
  CLI_CLIENT_ID,
  CLI_REDIRECT_URI,
  CONSOLE_CLIENT_ID,
  CONSOLE_CLIENT_SECRET,
  DEFAULT_CONSOLE_REDIRECT_URI,
  DEMO_SERVICE_CLIENTS,
  DEMO_USERS,
  GATEWAY_SCOPE,
  type DemoClient,
  type DemoUser,
} from './demo-identities.js';

const CLI_CLIENT_NAME = 'modelgate CLI';
const CONSOLE_CLIENT_NAME = 'modelgate console';
const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const OIDC_SCOPES = ['openid', 'offline_access', 'email', 'profile'];
const USER_LOGIN_SCOPE = `openid email profile offline_access ${GATEWAY_SCOPE}`;
const DAY_SECONDS = 24 * 60 * 60;
const MAX_FORM_BYTES = 16 * 1024;

export interface DevIdpOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a random free port. */
  port?: number;
  /** The `aud` of access tokens, e.g. 'modelgate'. */
  audience: string;
  /** Default 900. */
  accessTokenTtlSeconds?: number;
  /** Private JWKs with kid and alg; the first signs. Default: one fresh RS256 key. */
  signingKeys?: JWK[];
  users?: readonly DemoUser[];
  serviceClients?: readonly DemoClient[];
  /** Exact redirect URIs of the web console client (web clients get no loopback port leniency). */
  consoleRedirectUris?: string[];
}

export interface DevIdp {
  /** e.g. http://127.0.0.1:PORT */
  readonly issuer: string;
  /** RFC 8707 resource indicator that yields tokens for `audience` (which need not be a URI). */
  readonly resource: string;
  /** Current private keys, the signing key first. */
  readonly signingKeys: JWK[];
  /** A client_credentials grant over HTTP; defaults to the first service client. */
  clientCredentialsToken(clientId?: string): Promise<string>;
  /** Scripted browser login of the CLI client (authorization code + PKCE). */
  loginAs(userId: string, password?: string): Promise<{ accessToken: string; idToken: string; refreshToken?: string }>;
  refresh(refreshToken: string): Promise<{ accessToken: string; refreshToken?: string }>;
  /**
   * Drives a browser through an authorization request of any client: signs in
   * as the user, consents, and returns the URL the IdP redirects back to
   * (the client's redirect_uri with `code` and `state`, or an `error`).
   */
  completeAuthorization(authorizationUrl: string | URL, userId: string, password?: string): Promise<URL>;
  /** Approves a pending device authorization (RFC 8628) as the user, like a person at /device would. */
  approveDevice(userCode: string, userId: string, password?: string): Promise<void>;
  /** Replaces the keys without changing the URL; pass old keys too to keep old tokens verifiable. */
  rotateSigningKeys(keys: JWK[]): Promise<void>;
  /** Replaces the web console client's redirect URIs, e.g. once a gateway on port 0 knows its URL. */
  setConsoleRedirectUris(uris: string[]): void;
  close(): Promise<void>;
}

export type SigningAlgorithm = 'RS256' | 'ES256' | 'PS256' | 'EdDSA';

/** A fresh private JWK with `kid` (its RFC 7638 thumbprint), `alg` and `use`. */
export async function generateSigningKey(alg: SigningAlgorithm = 'RS256'): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: await calculateJwkThumbprint(jwk), alg, use: 'sig' };
}

export async function startDevIdp(options: DevIdpOptions): Promise<DevIdp> {
  const accessTokenTtl = options.accessTokenTtlSeconds ?? 900;
  if (!Number.isSafeInteger(accessTokenTtl) || accessTokenTtl <= 0) {
    throw new TypeError('accessTokenTtlSeconds must be a positive integer');
  }
  if (!options.audience) throw new TypeError('audience is required');
  const signingKeys = options.signingKeys ?? [await generateSigningKey()];
  assertSigningKeys(signingKeys);

  const host = options.host ?? '127.0.0.1';
  const server = createServer();
  await listen(server, options.port ?? 0, host);
  const { port } = server.address() as AddressInfo;
  const issuer = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  const settings: IdpSettings = {
    issuer,
    audience: options.audience,
    resource: resourceIndicatorFor(options.audience),
    accessTokenTtl,
    users: new Map((options.users ?? DEMO_USERS).map((user) => [user.id, user])),
    serviceClients: new Map((options.serviceClients ?? DEMO_SERVICE_CLIENTS).map((client) => [client.clientId, client])),
    consoleRedirectUris: options.consoleRedirectUris ?? [DEFAULT_CONSOLE_REDIRECT_URI],
    // Random per start: sessions never outlive the process anyway.
    cookieKeys: [randomBytes(32).toString('base64url')],
    store: new DevIdpStore(),
  };
  try {
    return new RunningDevIdp(server, settings, signingKeys);
  } catch (error) {
    server.close();
    throw error;
  }
}

interface IdpSettings {
  issuer: string;
  audience: string;
  resource: string;
  accessTokenTtl: number;
  users: ReadonlyMap<string, DemoUser>;
  serviceClients: ReadonlyMap<string, DemoClient>;
  consoleRedirectUris: string[];
  cookieKeys: string[];
  store: DevIdpStore;
}

/** A Provider and its request handler; key rotation swaps in a new pair. */
interface ProviderInstance {
  provider: Provider;
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
}

interface TokenResponse {
  access_token: string;
  id_token?: string;
  refresh_token?: string;
}

class RunningDevIdp implements DevIdp {
  readonly issuer: string;
  readonly resource: string;
  private keys: JWK[];
  private current: ProviderInstance;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly server: Server,
    private readonly settings: IdpSettings,
    signingKeys: JWK[],
  ) {
    this.issuer = settings.issuer;
    this.resource = settings.resource;
    this.keys = signingKeys.map((key) => ({ ...key }));
    this.current = createProviderInstance(settings, this.keys);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.route(req, res).catch((error: unknown) => {
        console.error('modelgate dev IdP: request failed', error);
        if (!res.headersSent) sendHtml(res, 500, errorPage('The development IdP failed to handle this request.'));
        else res.destroy();
      });
    });
  }

  get signingKeys(): JWK[] {
    return this.keys.map((key) => ({ ...key }));
  }

  async clientCredentialsToken(clientId?: string): Promise<string> {
    const client = clientId === undefined ? this.settings.serviceClients.values().next().value : this.settings.serviceClients.get(clientId);
    if (!client) throw new Error(`dev IdP has no service client ${clientId ?? '(none configured)'}`);
    const tokens = await this.tokenRequest(
      { grant_type: 'client_credentials', scope: GATEWAY_SCOPE, resource: this.resource },
      basicAuthorization(client.clientId, serviceClientSecret(client)),
    );
    return tokens.access_token;
  }

  async loginAs(userId: string, password = `${userId}-password`): Promise<{ accessToken: string; idToken: string; refreshToken?: string }> {
    const codeVerifier = randomBytes(32).toString('base64url');
    const state = randomBytes(16).toString('base64url');
    const nonce = randomBytes(16).toString('base64url');
    const authorizationUrl = new URL('/auth', this.issuer);
    authorizationUrl.search = new URLSearchParams({
      client_id: CLI_CLIENT_ID,
      response_type: 'code',
      redirect_uri: CLI_REDIRECT_URI,
      scope: USER_LOGIN_SCOPE,
      state,
      nonce,
      code_challenge: createHash('sha256').update(codeVerifier).digest('base64url'),
      code_challenge_method: 'S256',
      resource: this.resource,
    }).toString();

    const callback = await this.completeAuthorization(authorizationUrl, userId, password);
    if (`${callback.origin}${callback.pathname}` !== CLI_REDIRECT_URI) {
      throw new Error(`dev IdP redirected to ${callback.origin}${callback.pathname}, expected ${CLI_REDIRECT_URI}`);
    }
    const response = callback.searchParams;
    const error = response.get('error');
    if (error) throw new Error(`dev IdP refused the authorization: ${error}: ${response.get('error_description') ?? ''}`);
    if (response.get('state') !== state) throw new Error('dev IdP authorization response has the wrong state');
    // RFC 9207: the response names its issuer, which defends against IdP mix-up.
    if (response.get('iss') !== this.issuer) throw new Error('dev IdP authorization response has the wrong iss');
    const code = response.get('code');
    if (!code) throw new Error('dev IdP authorization response has no code');

    const tokens = await this.tokenRequest({
      grant_type: 'authorization_code',
      code,
      redirect_uri: CLI_REDIRECT_URI,
      client_id: CLI_CLIENT_ID,
      code_verifier: codeVerifier,
      resource: this.resource,
    });
    if (!tokens.id_token) throw new Error('dev IdP token response has no id_token');
    if (decodeJwt(tokens.id_token).nonce !== nonce) throw new Error('dev IdP id_token has the wrong nonce');
    return { accessToken: tokens.access_token, idToken: tokens.id_token, refreshToken: tokens.refresh_token };
  }

  async refresh(refreshToken: string): Promise<{ accessToken: string; refreshToken?: string }> {
    const tokens = await this.tokenRequest({
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      client_id: CLI_CLIENT_ID,
      resource: this.resource,
    });
    return { accessToken: tokens.access_token, refreshToken: tokens.refresh_token };
  }

  async completeAuthorization(authorizationUrl: string | URL, userId: string, password = `${userId}-password`): Promise<URL> {
    const url = new URL(authorizationUrl, this.issuer);
    if (url.origin !== new URL(this.issuer).origin) throw new Error(`${url.origin} is not the dev IdP (${this.issuer})`);
    const outcome = await this.browserFor(userId, password).browse(url);
    if (outcome.kind !== 'redirected') {
      throw new Error(`dev IdP sign-in stopped at ${outcome.url.pathname} instead of redirecting back to the client`);
    }
    return outcome.location;
  }

  async approveDevice(userCode: string, userId: string, password = `${userId}-password`): Promise<void> {
    const verificationUrl = new URL('/device', this.issuer);
    verificationUrl.searchParams.set('user_code', userCode);
    const outcome = await this.browserFor(userId, password).browse(verificationUrl);
    if (outcome.kind !== 'page') throw new Error(`dev IdP device approval unexpectedly redirected to ${outcome.location.href}`);
  }

  async rotateSigningKeys(keys: JWK[]): Promise<void> {
    assertSigningKeys(keys);
    const copies = keys.map((key) => ({ ...key }));
    // Built before the swap, so invalid keys leave the running provider untouched.
    this.current = createProviderInstance(this.settings, copies);
    this.keys = copies;
  }

  setConsoleRedirectUris(uris: string[]): void {
    this.settings.consoleRedirectUris = [...uris];
    // Client metadata is read when the provider is built; sign-ins in progress keep their state in the shared store.
    this.current = createProviderInstance(this.settings, this.keys);
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve, reject) => {
      this.server.close((error) => (error ? reject(error) : resolve()));
      // Keep-alive sockets would otherwise hold close() open until they time out.
      this.server.closeAllConnections();
    });
    return this.closing;
  }

  private browserFor(userId: string, password: string): ScriptedBrowser {
    return new ScriptedBrowser(new URL(this.issuer).origin, { username: userId, password });
  }

  private async tokenRequest(params: Record<string, string>, authorization?: string): Promise<TokenResponse> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (authorization) headers.authorization = authorization;
    const response = await fetch(new URL('/token', this.issuer), {
      method: 'POST',
      headers,
      body: new URLSearchParams(params),
    });
    const body = (await response.json().catch(() => ({}))) as Partial<TokenResponse> & { error?: string; error_description?: string };
    if (!response.ok || typeof body.access_token !== 'string') {
      throw new Error(`dev IdP token endpoint refused ${params.grant_type}: ${body.error ?? `HTTP ${response.status}`}: ${body.error_description ?? ''}`);
    }
    return body as TokenResponse;
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // One instance per request, so a concurrent key rotation cannot mix two providers.
    const { provider, handle } = this.current;
    const { pathname } = new URL(req.url ?? '/', this.issuer);
    const interaction = /^\/interaction\/([\w-]+)$/.exec(pathname);
    if (interaction?.[1]) {
      await handleInteraction(provider, this.settings, req, res, interaction[1]);
      return;
    }
    await handle(req, res);
  }
}

function createProviderInstance(settings: IdpSettings, keys: JWK[]): ProviderInstance {
  const provider = new Provider(settings.issuer, providerConfiguration(settings, keys));
  provider.on('server_error', (_ctx: unknown, error: unknown) => {
    console.error('modelgate dev IdP: internal error', error);
  });
  provider.use(endpointCompatibility);
  return { provider, handle: provider.callback() };
}

function providerConfiguration(settings: IdpSettings, keys: JWK[]): Configuration {
  const [signingKey] = keys;
  if (!signingKey?.alg || !signingKey.kid) throw new TypeError('the first signing key needs alg and kid');
  const { accessTokenTtl } = settings;
  const clientLabel = (client: { clientId: string; clientName?: string } | undefined): string =>
    client?.clientName ?? client?.clientId ?? 'your application';

  return {
    adapter: settings.store.adapterFactory,
    clients: clientRegistrations(settings),
    clientDefaults: { id_token_signed_response_alg: signingKey.alg },
    // No browser-based (CORS) clients: the CLI and the console talk to the IdP server-side.
    clientBasedCORS: () => false,
    // SameSite=Lax for the session cookie too. oidc-provider 8 defaults it to None, which
    // browsers only accept with Secure (never the case on loopback HTTP), so it would lean on
    // its `.legacy` fallback cookies instead.
    cookies: { keys: settings.cookieKeys, long: { sameSite: 'lax' }, short: { sameSite: 'lax' } },
    jwks: { keys },
    scopes: OIDC_SCOPES,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
    },
    async findAccount(_ctx, sub) {
      const user = settings.users.get(sub);
      if (!user) return undefined;
      return {
        accountId: user.id,
        async claims() {
          return { sub: user.id, email: user.email, email_verified: true, name: user.name, preferred_username: user.id };
        },
      };
    },
    // oidc-provider drops offline_access unless the request says prompt=consent (OIDC Core
    // §11); the dev IdP, like most IdPs, issues refresh tokens to any client allowed the grant.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    // Tokens belong to the client, not to the IdP's browser session: a CLI has no browser after login.
    expiresWithSession: async () => false,
    async extraTokenClaims(_ctx, token) {
      return accessTokenClaims(settings, token);
    },
    interactions: { url: async (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // PKCE (S256 only) is mandatory for public clients such as the CLI; the console, a
    // confidential client, may use it but need not (RFC 9700 §2.1.1). oidc-provider 8.x
    // requires it of every client unless told otherwise.
    pkce: {
      methods: ['S256'],
      required: (_ctx, client) => client.clientAuthMethod === 'none',
    },
    renderError: async (ctx, out) => renderErrorPage(ctx, out),
    ttl: {
      AccessToken: accessTokenTtl,
      ClientCredentials: accessTokenTtl,
      AuthorizationCode: 60,
      DeviceCode: 600,
      IdToken: 3600,
      Interaction: 3600,
      RefreshToken: DAY_SECONDS,
      Session: DAY_SECONDS,
      Grant: DAY_SECONDS,
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // Confidential clients may introspect any token, public ones only their own.
        allowedPolicy: async (_ctx, client, token) => client.clientAuthMethod !== 'none' || token.clientId === client.clientId,
      },
      // Only the client a token was issued to may revoke it; anyone else's request succeeds
      // without effect (see endpointCompatibility).
      revocation: { enabled: true },
      // DPoP (RFC 9449): clients may sender-constrain their tokens; Bearer stays the default.
      dPoP: { enabled: true },
      deviceFlow: {
        enabled: true,
        charset: 'base-20',
        mask: '****-****',
        async userCodeInputSource(ctx, form, out, error) {
          ctx.type = 'html';
          // oidc-provider re-renders failed submissions with 200; a 400 tells scripts it failed.
          if (error && ctx.status < 400) ctx.status = 400;
          ctx.body = deviceCodeInputPage(form, out && (out.error_description ?? out.error));
        },
        async userCodeConfirmSource(ctx, form, client, _deviceInfo, userCode) {
          ctx.type = 'html';
          ctx.body = deviceConfirmPage(form, clientLabel(client), userCode);
        },
        async successSource(ctx) {
          ctx.type = 'html';
          ctx.body = deviceSuccessPage(clientLabel(ctx.oidc.client));
        },
      },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          ctx.type = 'html';
          ctx.body = logoutPage(form, ctx.host);
        },
        async postLogoutSuccessSource(ctx) {
          ctx.type = 'html';
          ctx.body = logoutSuccessPage();
        },
      },
      resourceIndicators: {
        enabled: true,
        // Requests without `resource` still get a JWT for the gateway.
        defaultResource: async () => settings.resource,
        // Refresh and code redemption reuse the resource granted at authorization.
        useGrantedResource: async () => true,
        async getResourceServerInfo(_ctx, resourceIndicator) {
          if (resourceIndicator !== settings.resource) {
            throw new errors.InvalidTarget(`unknown resource; this IdP only issues tokens for ${settings.resource}`);
          }
          return {
            scope: GATEWAY_SCOPE,
            audience: settings.audience,
            accessTokenTTL: accessTokenTtl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: signingKey.alg, kid: signingKey.kid } },
          };
        },
      },
    },
  };
}

async function renderErrorPage(ctx: ProviderContext, out: ErrorOut): Promise<void> {
  ctx.type = 'html';
  ctx.body = errorPage(out.error_description ?? out.error, `error: ${out.error}`);
}

/**
 * Endpoint behaviour oidc-provider 8 does not offer as configuration, kept as the dev IdP has
 * always had it (the behaviour of oidc-provider 9):
 * - revoking another client's token succeeds without effect, instead of a 400 invalid_request
 *   (the token itself is never revoked either way);
 * - JWT access tokens are not looked up at the introspection and revocation endpoints: the
 *   answer is unsupported_token_type (RFC 7009 §2.2.1), not "inactive" or a silent success;
 * - RFC 8414 metadata is also served at /.well-known/oauth-authorization-server;
 * - authorization and logout requests are GET only, and unknown routes get a plain 404.
 */
const endpointCompatibility: ProviderMiddleware = async (ctx, next) => {
  if (ctx.path === '/.well-known/oauth-authorization-server') ctx.path = '/.well-known/openid-configuration';
  if (ctx.method === 'POST' && (ctx.path === '/auth' || ctx.path === '/session/end')) {
    notFound(ctx);
    return;
  }
  await next();
  // Only requests routed to one of the provider's endpoints have an OIDC context.
  const { oidc } = ctx;
  if (!oidc) {
    if (ctx.status === 404) notFound(ctx);
    return;
  }
  const { route } = oidc;
  if (route !== 'revocation' && route !== 'introspection') return;
  if (ctx.status === 200 && isJwt(oidc.params?.token)) {
    const verb = route === 'revocation' ? 'revoked' : 'introspected';
    await sendOAuthError(ctx, 400, {
      error: 'unsupported_token_type',
      error_description: `Structured JWT Tokens cannot be ${verb} via the ${route}_endpoint`,
    });
    return;
  }
  if (route === 'revocation' && ctx.status === 400) {
    // oidc-provider refuses exactly this case with a 400 after finding the token.
    const { AccessToken, ClientCredentials, RefreshToken } = oidc.entities;
    const token = AccessToken ?? ClientCredentials ?? RefreshToken;
    if (token && oidc.client && token.clientId !== oidc.client.clientId) {
      ctx.status = 200;
      ctx.type = 'text';
      ctx.body = '';
    }
  }
};

function notFound(ctx: ProviderContext): void {
  ctx.status = 404;
  ctx.type = 'text';
  ctx.body = 'Not Found';
}

/** Like oidc-provider's own error responses: HTML for browsers, JSON for everyone else. */
async function sendOAuthError(ctx: ProviderContext, status: number, out: ErrorOut): Promise<void> {
  ctx.status = status;
  if (ctx.accepts('json', 'html') === 'html') await renderErrorPage(ctx, out);
  else ctx.body = out;
}

function isJwt(token: unknown): boolean {
  if (typeof token !== 'string') return false;
  try {
    decodeProtectedHeader(token);
    return true;
  } catch {
    return false;
  }
}

function clientRegistrations(settings: IdpSettings): ClientMetadata[] {
  return [
    {
      client_id: CLI_CLIENT_ID,
      client_name: CLI_CLIENT_NAME,
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token', DEVICE_CODE_GRANT],
      response_types: ['code'],
      redirect_uris: [CLI_REDIRECT_URI],
    },
    {
      client_id: CONSOLE_CLIENT_ID,
      client_name: CONSOLE_CLIENT_NAME,
      client_secret: CONSOLE_CLIENT_SECRET,
      application_type: 'web',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: settings.consoleRedirectUris,
    },
    ...[...settings.serviceClients.values()].map((client) => ({
      client_id: client.clientId,
      client_secret: serviceClientSecret(client),
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    })),
  ];
}

/** Identity claims the gateway reads from access tokens; `groups` is always there, empty for a person in no group. */
function accessTokenClaims(settings: IdpSettings, token: IssuedToken): Record<string, unknown> | undefined {
  const groupsClaim = (groups: readonly string[]) => ({ groups: [...groups] });
  if (token.kind === 'ClientCredentials') {
    const client = settings.serviceClients.get(token.clientId);
    return client ? groupsClaim(client.groups) : undefined;
  }
  const user = token.accountId === undefined ? undefined : settings.users.get(token.accountId);
  if (!user) return undefined;
  return { email: user.email, name: user.name, ...groupsClaim(user.groups) };
}

async function handleInteraction(
  provider: Provider,
  settings: IdpSettings,
  req: IncomingMessage,
  res: ServerResponse,
  uid: string,
): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'POST') {
    res.setHeader('allow', 'GET, POST');
    sendHtml(res, 405, errorPage('Method not allowed.'));
    return;
  }
  const details = await provider.interactionDetails(req, res).catch((error: unknown) => {
    if (error instanceof errors.SessionNotFound) return undefined;
    throw error;
  });
  // The cookie names the interaction this browser started; a different uid is a stale or foreign link.
  if (!details || details.uid !== uid) {
    sendHtml(res, 400, errorPage('This sign-in has expired or belongs to another browser.', 'Start signing in again from the application.'));
    return;
  }

  // Consent is automatic: a dev IdP has nothing to ask once the user has signed in.
  if (details.prompt.name === 'consent') {
    await grantConsent(provider, req, res, details);
    return;
  }
  if (details.prompt.name !== 'login') {
    sendHtml(res, 400, errorPage(`The development IdP does not support the "${details.prompt.name}" prompt.`));
    return;
  }

  const clientId = typeof details.params.client_id === 'string' ? details.params.client_id : undefined;
  const renderLogin = (status: number, error?: string, username?: string) =>
    sendHtml(res, status, loginPage({
      action: `/interaction/${uid}`,
      clientLabel: clientLabelFor(clientId),
      users: [...settings.users.values()],
      error,
      username,
    }));

  if (req.method === 'GET') {
    renderLogin(200);
    return;
  }
  const form = await readForm(req);
  if (!form) {
    sendHtml(res, 400, errorPage('The sign-in form could not be read.'));
    return;
  }
  const username = form.get('username') ?? '';
  const user = settings.users.get(username);
  if (!user || !passwordMatches(user.password, form.get('password') ?? '')) {
    renderLogin(401, 'Wrong username or password.', username);
    return;
  }
  await provider.interactionFinished(req, res, { login: { accountId: user.id } }, { mergeWithLastSubmission: false });
}

async function grantConsent(provider: Provider, req: IncomingMessage, res: ServerResponse, details: InteractionDetails): Promise<void> {
  const accountId = details.session?.accountId;
  const clientId = details.params.client_id;
  if (!accountId || typeof clientId !== 'string') throw new Error('consent prompt without a signed-in user or client');
  const existing = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
  const grant = existing ?? new provider.Grant({ accountId, clientId });
  const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = details.prompt.details;
  if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
  if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
  for (const [resource, scopes] of Object.entries(missingResourceScopes ?? {})) {
    grant.addResourceScope(resource, scopes.join(' '));
  }
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: existing ? {} : { grantId } }, { mergeWithLastSubmission: true });
}

function clientLabelFor(clientId: string | undefined): string {
  switch (clientId) {
    case CLI_CLIENT_ID:
      return CLI_CLIENT_NAME;
    case CONSOLE_CLIENT_ID:
      return CONSOLE_CLIENT_NAME;
    default:
      return clientId ?? 'your application';
  }
}

function passwordMatches(expected: string, given: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(expected), digest(given));
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) return undefined;
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.statusCode = status;
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.setHeader('cache-control', 'no-store');
  res.end(html);
}

/** RFC 8707 wants an absolute URI; a bare audience like 'modelgate' gets a URN around it. */
function resourceIndicatorFor(audience: string): string {
  return URL.canParse(audience) ? audience : `urn:modelgate:audience:${encodeURIComponent(audience)}`;
}

function serviceClientSecret(client: DemoClient): string {
  return client.clientSecret ?? `${client.clientId}-secret`;
}

/** client_secret_basic: both parts form-urlencoded first (RFC 6749 §2.3.1). */
function basicAuthorization(clientId: string, clientSecret: string): string {
  const encode = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${encode(clientId)}:${encode(clientSecret)}`).toString('base64')}`;
}

function assertSigningKeys(keys: JWK[]): void {
  if (keys.length === 0) throw new TypeError('at least one signing key is required');
  for (const key of keys) {
    if (!key.kid || !key.alg) throw new TypeError('signing keys need kid and alg');
    if (!key.d) throw new TypeError(`signing key ${key.kid} is not a private key`);
  }
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
