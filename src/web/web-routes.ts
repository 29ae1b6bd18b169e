// The gateway's non-model routes for identity: discovery documents, browser
// sign-in (OIDC and SAML), the session API and whoami. The model API never
// accepts the session cookie, only bearer tokens, so a cross-site request
// cannot spend a signed-in user's access.
import { GatewayError } from '../http/errors.js';
import { sendJson } from '../http/send.js';
import { authenticate } from '../pipeline/authenticate.js';
import { allowedRoutes } from '../pipeline/authorise.js';
import type { RequestContext } from '../pipeline/context.js';
import type { GatewayServices } from '../pipeline/services.js';
import { OIDC_CALLBACK_PATH, SAML_ACS_PATH, SAML_METADATA_PATH } from './login-paths.js';
import type { OidcWebLogin } from './oidc-web-login.js';
import type { SamlWebLogin } from './saml-web-login.js';
import { gatewayDiscovery } from './well-known.js';
import { CONSOLE_PATH, isConsolePath, serveConsole } from './console-assets.js';
import { methodNotAllowed, readForm, redirect } from './web-http.js';
import { WebSessions, type SessionIdentity } from './web-sessions.js';

interface WebLogins {
  sessions: WebSessions;
  oidc?: OidcWebLogin;
  saml?: SamlWebLogin;
}

export class WebRoutes {
  private built: Promise<WebLogins> | undefined;

  /** Takes the services in force at each call, so a configuration reload reaches sign-in too. */
  constructor(private readonly servicesNow: () => GatewayServices) {}

  private get services(): GatewayServices {
    return this.servicesNow();
  }

  /** Serves `path` if it is an identity route; false lets the gateway answer 404. */
  async handle(ctx: RequestContext, path: string, method: string): Promise<boolean> {
    const { res } = ctx;
    const { identity, config } = this.services;
    const only = (allowed: string) => {
      if (method !== allowed) throw methodNotAllowed(allowed);
    };
    switch (path) {
      case '/.well-known/modelgate':
        only('GET');
        sendJson(res, 200, gatewayDiscovery(config, identity.publicUrl), { 'cache-control': 'max-age=300' });
        return true;
      case '/.well-known/jwks.json':
        only('GET');
        sendJson(res, 200, await identity.gatewayTokens.publicJwks(), { 'cache-control': 'max-age=60' });
        return true;
      case '/auth/whoami':
        only('GET');
        await this.whoami(ctx);
        return true;
      case '/auth/session':
        only('GET');
        await this.session(ctx);
        return true;
      case '/auth/token':
        only('POST');
        await this.issueToken(ctx);
        return true;
      case '/auth/logout': {
        only('POST');
        const { sessions } = await this.logins();
        const { identity } = await sessions.requireForChange(ctx.req);
        await sessions.end(ctx.req, res);
        // Signing out must also end the API tokens this sign-in minted. They are self-contained, so the cut-off
        // is per subject: every gateway-issued token of this person issued until now.
        await this.services.identity.gatewayTokens.revokeSubject(identity.subject);
        ctx.log.info({ sub: identity.subject }, 'browser signed out; its gateway-issued tokens revoked');
        res.writeHead(204, { 'cache-control': 'no-store' }).end();
        return true;
      }
      case '/auth/revoke':
        only('POST');
        await this.revokePresentedToken(ctx);
        return true;
      case '/auth/oidc/login':
        only('GET');
        redirect(res, await (await this.oidc()).begin(res, returnTo(ctx)));
        return true;
      case OIDC_CALLBACK_PATH: {
        only('GET');
        const { identity: signedIn, returnTo: next } = await (await this.oidc()).complete(ctx.req, res);
        await this.signIn(ctx, signedIn, next);
        return true;
      }
      case '/auth/saml/login':
        only('GET');
        redirect(res, await (await this.saml()).begin(res, returnTo(ctx)));
        return true;
      case SAML_ACS_PATH: {
        only('POST');
        const form = await readForm(ctx.req);
        const { identity: signedIn, returnTo: next } = await (await this.saml()).complete(ctx.req, res, form);
        await this.signIn(ctx, signedIn, next);
        return true;
      }
      case SAML_METADATA_PATH:
        only('GET');
        res.writeHead(200, { 'content-type': 'application/samlmetadata+xml', 'cache-control': 'max-age=300' }).end((await this.saml()).metadata());
        return true;
      case '/':
        // A person who opens the gateway in a browser lands on the console.
        if (method !== 'GET' && method !== 'HEAD') return false;
        redirect(res, `${CONSOLE_PATH}/`);
        return true;
      default:
        if (!isConsolePath(path)) return false;
        await serveConsole(res, path, method);
        return true;
    }
  }

  /** Who the bearer token says the caller is, and what they may use. */
  private async whoami(ctx: RequestContext): Promise<void> {
    const principal = await authenticate(this.services, ctx, { serviceKeys: true });
    ctx.principal = principal;
    const models = (await allowedRoutes(this.services, principal)).map((r) => ({ model: r.model, connection: r.connection.name }));
    sendJson(ctx.res, 200, {
      subject: principal.subject,
      issuer: principal.issuer,
      method: principal.method,
      email: principal.email,
      name: principal.name,
      groups: principal.groups,
      client_id: principal.clientId,
      workload_subject: principal.workloadSubject,
      owner: principal.owner,
      expires_at: principal.expiresAt,
      models,
    });
  }

  /**
   * Revokes the bearer token itself (`modelgate logout`): presenting it proves the right to end it. Only the
   * gateway's own tokens can be cut off here; an identity provider's token is its to revoke, and the answer says so.
   */
  private async revokePresentedToken(ctx: RequestContext): Promise<void> {
    const principal = await authenticate(this.services, ctx);
    ctx.principal = principal;
    if (principal.method !== 'gateway') {
      throw new GatewayError(
        `This token was issued by ${principal.issuer}, not by the gateway, so only that identity provider can revoke it; it stays valid until ${new Date(principal.expiresAt * 1000).toISOString()}.`,
        { status: 400, type: 'invalid_request_error', code: 'token_not_gateway_issued' },
      );
    }
    await this.services.identity.gatewayTokens.revokeToken(principal);
    ctx.log.info({ sub: principal.subject, jti: principal.tokenId }, 'gateway-issued token revoked by its holder');
    const seconds = Math.ceil(this.services.config.identity.gateway_tokens.sync_interval / 1000);
    sendJson(ctx.res, 200, { revoked: true, sync_seconds: seconds }, { 'cache-control': 'no-store' });
  }

  private async session(ctx: RequestContext): Promise<void> {
    const session = await (await this.logins()).sessions.require(ctx.req);
    sendJson(ctx.res, 200, { identity: session.identity, csrf_token: session.csrfToken, expires_at: Math.floor(session.expiresAt / 1000) });
  }

  /** An API token for the signed-in browser user: how people who sign in with SAML call models. */
  private async issueToken(ctx: RequestContext): Promise<void> {
    const { identity } = await (await this.logins()).sessions.requireForChange(ctx.req);
    const subject = { subject: identity.subject, groups: identity.groups, origin: identity.origin, email: identity.email, name: identity.name };
    const { token, expiresAt } = await this.services.identity.gatewayTokens.mint(subject);
    ctx.log.info({ sub: identity.subject, via: identity.method }, 'issued a gateway access token');
    sendJson(ctx.res, 200, { access_token: token, token_type: 'Bearer', expires_in: expiresAt - Math.floor(Date.now() / 1000) });
  }

  private async signIn(ctx: RequestContext, identity: SessionIdentity, next: string): Promise<void> {
    await (await this.logins()).sessions.start(ctx.res, identity);
    ctx.log.info({ sub: identity.subject, via: identity.method, origin: identity.origin }, 'browser signed in');
    redirect(ctx.res, next, 303);
  }

  private async oidc(): Promise<OidcWebLogin> {
    const login = (await this.logins()).oidc;
    if (!login) throw notConfigured('OIDC', 'identity.web.oidc');
    return login;
  }

  private async saml(): Promise<SamlWebLogin> {
    const login = (await this.logins()).saml;
    if (!login) throw notConfigured('SAML', 'identity.web.saml');
    return login;
  }

  /**
   * Built on first use: the public URL is known only once the gateway
   * listens. The OIDC and SAML stacks are loaded only when configured
   * (SAML's XML libraries alone hold several MB a gateway without it never uses).
   */
  private logins(): Promise<WebLogins> {
    this.built ??= this.buildLogins();
    return this.built;
  }

  private async buildLogins(): Promise<WebLogins> {
    const { identity, config } = this.services;
    const web = config.identity.web;
    const publicUrl = identity.publicUrl;
    const built: WebLogins = { sessions: new WebSessions(identity.state, web.session_lifetime, new URL(publicUrl).origin) };
    if (web.oidc) {
      const { OidcWebLogin } = await import('./oidc-web-login.js');
      built.oidc = new OidcWebLogin(web.oidc, identity.state, identity.verifier, publicUrl);
    }
    if (web.saml) {
      const { SamlWebLogin } = await import('./saml-web-login.js');
      built.saml = new SamlWebLogin(web.saml, identity.state, publicUrl, config.identity.clock_skew);
    }
    return built;
  }
}

function returnTo(ctx: RequestContext): string | null {
  return new URL(ctx.req.url ?? '/', 'http://gateway').searchParams.get('return_to');
}

function notConfigured(kind: string, key: string): GatewayError {
  return new GatewayError(`${kind} sign-in is not configured on this gateway (${key}).`, {
    status: 404,
    type: 'not_found_error',
    code: 'login_not_configured',
  });
}
