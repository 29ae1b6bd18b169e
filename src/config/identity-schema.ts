// Configuration of identity beyond bearer-token verification: CLI login,
// workload identity, gateway-issued tokens, the shared identity state, web
// sign-in (OIDC and SAML) and identity assertions sent upstream. Kept apart
// from schema.ts, which includes these pieces, so each stays readable.
import { z } from 'zod';
import { duration, httpUrl } from './fields.js';

const headerName = z.string().regex(/^[A-Za-z0-9-]+$/, 'use letters, digits and -');
const nonEmpty = z.string().min(1);

/**
 * A CI system's token is trusted only when every listed claim equals the
 * given value (or one of the listed values). No wildcards: a pattern that is
 * one character too broad would let another repository in.
 */
export const workloadBinding = z
  .object({
    description: z.string().optional(),
    conditions: z
      .record(nonEmpty, z.union([nonEmpty, z.array(nonEmpty).min(1)]))
      .refine((c) => Object.keys(c).length > 0, 'name at least one claim condition')
      .transform((c) => Object.fromEntries(Object.entries(c).map(([claim, v]) => [claim, Array.isArray(v) ? v : [v]]))),
    /** The service identity the workload acts as. */
    subject: nonEmpty,
    groups: z.array(nonEmpty).default([]),
  })
  .strict();

/** What `modelgate login` needs, published at /.well-known/modelgate. */
export const loginSettings = z
  .object({
    /** One of identity.issuers; default: the first issuer without workload bindings. */
    issuer: httpUrl.optional(),
    /** A public (native) client registered at the IdP. */
    client_id: nonEmpty.default('modelgate-cli'),
    scopes: z.array(nonEmpty).default(['openid', 'profile', 'email', 'offline_access']),
    /** RFC 8707 resource indicator, for IdPs that pick the token audience that way. */
    resource: nonEmpty.optional(),
    /** Google issues opaque access tokens: its ID token is then the bearer token. */
    bearer: z.enum(['access_token', 'id_token']).default('access_token'),
    /** `device` (RFC 8628) when the IdP supports it, else `browser` (PKCE, loopback redirect). */
    flow: z.enum(['auto', 'device', 'browser']).default('auto'),
  })
  .strict();

export const gatewayTokens = z
  .object({
    /** Lifetime of gateway-issued access tokens. Default: 1h, or `identity.max_token_lifetime` when that is shorter. */
    lifetime: duration.optional(),
    /** A new signing key is made this often; old keys stay published until their tokens expire. */
    key_rotation: duration.prefault('24h'),
    /** A new key is published this long before it starts signing, so verifiers' JWKS caches have it. */
    key_prepublish: duration.prefault('10m'),
    algorithm: z.enum(['ES256', 'RS256', 'PS256', 'EdDSA']).default('ES256'),
    /** How often an instance rereads revocations and keys from the shared state. */
    sync_interval: duration.prefault('5s'),
  })
  .strict()
  .prefault({});

/** Long-lived keys for tools that cannot refresh a token (`modelgate keys`); each connection opts in with `service_keys: true`. */
export const serviceKeys = z
  .object({
    /** Members of these groups may create, list, rotate and revoke service keys. Empty: nobody may. */
    admin_groups: z.array(nonEmpty).default([]),
    /** Lifetime of a new key when `--expires` is not given. */
    default_lifetime: duration.prefault('90d'),
    /** The longest lifetime a key may be given. */
    max_lifetime: duration.prefault('365d'),
    /** After a rotation, how long the old key keeps working unless `--overlap` says otherwise. */
    rotation_overlap: duration.prefault('24h'),
  })
  .strict()
  .refine((k) => k.default_lifetime <= k.max_lifetime, { message: 'default_lifetime must not exceed max_lifetime', path: ['default_lifetime'] })
  .prefault({});

export const identityState = z
  .discriminatedUnion('store', [
    z.object({ store: z.literal('memory') }).strict(),
    z.object({ store: z.literal('sqlite'), path: nonEmpty }).strict(),
    z
      .object({
        store: z.literal('postgres'),
        /** postgres://user:pass@host:5432/db; use ${ENV} for the password. */
        url: nonEmpty,
        /** Schema holding the identity_* tables. */
        schema: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/).default('public'),
        pool_size: z.number().int().min(1).max(100).default(5),
      })
      .strict(),
  ])
  .prefault({ store: 'memory' });

const oidcWebLogin = z
  .object({
    /** One of identity.issuers, so tokens and sessions map claims the same way. */
    issuer: httpUrl,
    /** A confidential web client registered at the IdP. */
    client_id: nonEmpty,
    client_secret: nonEmpty,
    scopes: z.array(nonEmpty).default(['openid', 'profile', 'email']),
    resource: nonEmpty.optional(),
  })
  .strict();

const samlWebLogin = z
  .object({
    /** The IdP's single sign-on URL (HTTP-Redirect binding). */
    idp_sso_url: httpUrl,
    /** The IdP's signing certificate(s), PEM or base64; list two during a rollover. */
    idp_certificate: z.union([nonEmpty, z.array(nonEmpty).min(1)]).transform((c) => (Array.isArray(c) ? c : [c])),
    /** The IdP's entity ID; assertions from any other issuer are refused. */
    idp_entity_id: nonEmpty.optional(),
    /** This gateway's SP entity ID, which is also the required audience; default <public_url>/auth/saml/metadata. */
    sp_entity_id: nonEmpty.optional(),
    attributes: z
      .object({
        /** Default: the NameID. */
        subject: nonEmpty.optional(),
        email: nonEmpty.default('email'),
        name: nonEmpty.default('displayName'),
        groups: nonEmpty.default('groups'),
      })
      .strict()
      .prefault({}),
    group_prefix: z.string().default(''),
    /** Refuse assertions whose authentication is older than this. */
    max_authentication_age: duration.prefault('1h'),
  })
  .strict();

export const webLogin = z
  .object({
    /** Sessions are short: a browser signs in again after this. */
    session_lifetime: duration.prefault('1h'),
    oidc: oidcWebLogin.optional(),
    saml: samlWebLogin.optional(),
  })
  .strict()
  .prefault({});

/** A signed JWT naming the caller, sent to the model server with each request. */
export const identityAssertion = z
  .object({
    header: headerName.default('x-modelgate-identity'),
    /** `aud` of the assertion; default: the connection's name. */
    audience: nonEmpty.optional(),
    lifetime: duration.prefault('5m'),
  })
  .strict();

export type WorkloadBinding = z.output<typeof workloadBinding>;
export type LoginSettings = z.output<typeof loginSettings>;
/** After the identity section fills in the default lifetime (config/schema.ts). */
export type GatewayTokensConfig = z.output<typeof gatewayTokens> & { lifetime: number };

/** The default lifetime of gateway-issued tokens: an hour, but never longer than the gateway itself accepts. */
export function defaultGatewayTokenLifetime(maxTokenLifetime: number): number {
  return Math.min(60 * 60 * 1000, maxTokenLifetime);
}
export type IdentityStateConfig = z.output<typeof identityState>;
export type ServiceKeysConfig = z.output<typeof serviceKeys>;
export type WebLoginConfig = z.output<typeof webLogin>;
export type SamlWebLoginConfig = NonNullable<WebLoginConfig['saml']>;
export type OidcWebLoginConfig = NonNullable<WebLoginConfig['oidc']>;
export type IdentityAssertionConfig = z.output<typeof identityAssertion>;

interface IdentitySection {
  issuers: Array<{ issuer: string; workload: unknown[] }>;
  max_token_lifetime: number;
  algorithms: readonly string[];
  login?: LoginSettings | undefined;
  gateway_tokens: GatewayTokensConfig;
  web: WebLoginConfig;
}

/** Cross-references inside `identity` that a field-level schema cannot see. */
export function checkIdentityReferences(identity: IdentitySection, ctx: z.RefinementCtx): void {
  const trusted = new Set(identity.issuers.map((i) => i.issuer));
  const login = identity.login?.issuer;
  if (login !== undefined && !trusted.has(login)) {
    ctx.addIssue({ code: 'custom', path: ['identity', 'login', 'issuer'], message: `"${login}" is not one of identity.issuers` });
  }
  if (identity.login && login === undefined && !identity.issuers.some((i) => i.workload.length === 0)) {
    ctx.addIssue({ code: 'custom', path: ['identity', 'login'], message: 'every issuer is a workload issuer; name the issuer people log in with' });
  }
  const web = identity.web.oidc?.issuer;
  if (web !== undefined && !trusted.has(web)) {
    ctx.addIssue({ code: 'custom', path: ['identity', 'web', 'oidc', 'issuer'], message: `"${web}" is not one of identity.issuers` });
  }
  if (identity.gateway_tokens.lifetime > identity.max_token_lifetime) {
    ctx.addIssue({
      code: 'custom',
      path: ['identity', 'gateway_tokens', 'lifetime'],
      message: 'is longer than identity.max_token_lifetime, so the gateway would refuse its own tokens; shorten it, or remove it to default to max_token_lifetime',
    });
  }
  if (!identity.algorithms.includes(identity.gateway_tokens.algorithm)) {
    ctx.addIssue({
      code: 'custom',
      path: ['identity', 'gateway_tokens', 'algorithm'],
      message: `${identity.gateway_tokens.algorithm} is not in identity.algorithms, so the gateway would refuse its own tokens`,
    });
  }
  if (identity.gateway_tokens.key_prepublish >= identity.gateway_tokens.key_rotation) {
    ctx.addIssue({ code: 'custom', path: ['identity', 'gateway_tokens', 'key_prepublish'], message: 'must be shorter than key_rotation' });
  }
}
