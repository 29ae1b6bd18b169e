// oidc-provider ships without types; this declares only what src/dev/idp*.ts uses.
declare module 'oidc-provider' {
  import type { EventEmitter } from 'node:events';
  import type { IncomingMessage, ServerResponse } from 'node:http';
  import type { JWK } from 'jose';

  /** What the provider hands an adapter: a model's stored state. */
  export interface AdapterPayload {
    [key: string]: unknown;
    grantId?: string;
    uid?: string;
    userCode?: string;
    consumed?: number;
  }

  export interface Adapter {
    upsert(id: string, payload: AdapterPayload, expiresIn: number | undefined): Promise<void>;
    find(id: string): Promise<AdapterPayload | undefined>;
    findByUid(uid: string): Promise<AdapterPayload | undefined>;
    findByUserCode(userCode: string): Promise<AdapterPayload | undefined>;
    consume(id: string): Promise<void>;
    destroy(id: string): Promise<void>;
    revokeByGrantId(grantId: string): Promise<void>;
  }

  export interface ClientMetadata {
    client_id: string;
    client_secret?: string;
    client_name?: string;
    application_type?: 'web' | 'native';
    token_endpoint_auth_method?: string;
    grant_types?: string[];
    response_types?: string[];
    redirect_uris?: string[];
    post_logout_redirect_uris?: string[];
    scope?: string;
    id_token_signed_response_alg?: string;
  }

  /** The subset of the (Koa) request context the configuration callbacks and middleware touch. */
  export interface ProviderContext {
    body: unknown;
    status: number;
    type: string;
    host: string;
    method: string;
    path: string;
    accepts(...types: string[]): string | false;
    /** Present once a request has been routed to one of the provider's endpoints. */
    oidc?: OIDCContext;
  }

  export interface OIDCContext {
    route?: string;
    params?: Record<string, unknown>;
    client?: Client;
    entities: {
      AccessToken?: { clientId: string };
      ClientCredentials?: { clientId: string };
      RefreshToken?: { clientId: string };
    };
  }

  /** Koa middleware, as Provider#use takes it. */
  export type ProviderMiddleware = (ctx: ProviderContext, next: () => Promise<void>) => Promise<void>;

  export interface Client {
    clientId: string;
    clientName?: string;
  }

  export interface ErrorOut {
    error: string;
    error_description?: string;
  }

  export interface Account {
    accountId: string;
    claims(use: string, scope: string): Promise<Record<string, unknown>>;
  }

  /** AccessToken or ClientCredentials, as passed to extraTokenClaims. */
  export interface IssuedToken {
    kind: string;
    clientId: string;
    accountId?: string;
  }

  export interface ResourceServerInfo {
    scope: string;
    audience?: string;
    accessTokenTTL?: number;
    accessTokenFormat?: 'opaque' | 'jwt';
    jwt?: { sign?: { alg?: string; kid?: string } };
  }

  export interface Configuration {
    adapter?: (modelName: string) => Adapter;
    clients?: ClientMetadata[];
    clientDefaults?: Partial<ClientMetadata>;
    clientBasedCORS?: (ctx: ProviderContext, origin: string, client: Client) => boolean;
    cookies?: {
      keys?: string[];
      long?: { sameSite?: 'lax' | 'strict' | 'none' };
      short?: { sameSite?: 'lax' | 'strict' | 'none' };
    };
    jwks?: { keys: JWK[] };
    scopes?: string[];
    claims?: Record<string, string[] | null>;
    findAccount?: (ctx: ProviderContext, sub: string) => Promise<Account | undefined>;
    issueRefreshToken?: (ctx: ProviderContext, client: { grantTypeAllowed(grantType: string): boolean }, source: unknown) => Promise<boolean>;
    expiresWithSession?: (ctx: ProviderContext, source: unknown) => Promise<boolean>;
    extraTokenClaims?: (ctx: ProviderContext, token: IssuedToken) => Promise<Record<string, unknown> | undefined>;
    pkce?: {
      methods?: Array<'S256' | 'plain'>;
      required?: (ctx: ProviderContext, client: { clientId: string; clientAuthMethod: string }) => boolean;
    };
    interactions?: { url?: (ctx: ProviderContext, interaction: { uid: string }) => Promise<string> };
    renderError?: (ctx: ProviderContext, out: ErrorOut, error: Error) => Promise<void>;
    ttl?: Record<string, number>;
    features?: {
      devInteractions?: { enabled: boolean };
      clientCredentials?: { enabled: boolean };
      introspection?: {
        enabled: boolean;
        allowedPolicy?: (ctx: ProviderContext, client: { clientId: string; clientAuthMethod: string }, token: { clientId?: string }) => Promise<boolean>;
      };
      revocation?: { enabled: boolean };
      dPoP?: { enabled: boolean };
      deviceFlow?: {
        enabled: boolean;
        charset?: 'base-20' | 'digits';
        mask?: string;
        userCodeInputSource?: (ctx: ProviderContext, form: string, out: ErrorOut | undefined, error: Error | undefined) => Promise<void>;
        userCodeConfirmSource?: (ctx: ProviderContext, form: string, client: Client, deviceInfo: unknown, userCode: string) => Promise<void>;
        successSource?: (ctx: ProviderContext & { oidc: { client?: Client } }) => Promise<void>;
      };
      rpInitiatedLogout?: {
        enabled: boolean;
        logoutSource?: (ctx: ProviderContext, form: string) => Promise<void>;
        postLogoutSuccessSource?: (ctx: ProviderContext & { oidc: { client?: Client } }) => Promise<void>;
      };
      resourceIndicators?: {
        enabled: boolean;
        defaultResource?: (ctx: ProviderContext, client: Client, oneOf?: string[]) => Promise<string | string[] | undefined>;
        useGrantedResource?: (ctx: ProviderContext, model: unknown) => Promise<boolean>;
        getResourceServerInfo?: (ctx: ProviderContext, resourceIndicator: string, client: Client) => Promise<ResourceServerInfo>;
      };
    };
  }

  export interface InteractionDetails {
    uid: string;
    returnTo: string;
    grantId?: string;
    params: { client_id?: string; [key: string]: unknown };
    session?: { accountId: string };
    prompt: {
      name: 'login' | 'consent' | (string & {});
      reasons: string[];
      details: {
        missingOIDCScope?: string[];
        missingOIDCClaims?: string[];
        missingResourceScopes?: Record<string, string[]>;
      };
    };
  }

  export interface InteractionResults {
    login?: { accountId: string };
    consent?: { grantId?: string };
  }

  export interface Grant {
    addOIDCScope(scope: string): void;
    addOIDCClaims(claims: string[]): void;
    addResourceScope(resource: string, scope: string): void;
    save(): Promise<string>;
  }

  export interface GrantModel {
    new (init: { accountId: string; clientId: string }): Grant;
    find(id: string): Promise<Grant | undefined>;
  }

  export class Provider extends EventEmitter {
    constructor(issuer: string, configuration?: Configuration);
    readonly issuer: string;
    readonly Grant: GrantModel;
    callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
    /** Adds middleware ahead of the provider's own. */
    use(middleware: ProviderMiddleware): void;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
    interactionFinished(
      req: IncomingMessage,
      res: ServerResponse,
      result: InteractionResults,
      options?: { mergeWithLastSubmission?: boolean },
    ): Promise<void>;
  }

  export const errors: {
    InvalidTarget: new (description?: string) => Error;
    SessionNotFound: new (description?: string) => Error;
  };

  export default Provider;
}
