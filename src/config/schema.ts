// The configuration schema. Everything the gateway does is decided here or
// in policy; defaults are the safe choice (deny by default, short tokens,
// asymmetric algorithms only).
import { z } from 'zod';
import { byteSize, duration, httpUrl, name } from './fields.js';
import { agentsSchema } from '../agent/config.js';
import { approvalsSchema } from '../approvals/config.js';
import { connectionRecordingSchema, recordingSchema, storageSchema } from '../audit/config.js';
import { guardrailsSchema, unknownConnectionReferences } from '../policy/guardrails-schema.js';
import { limitsSchema, tracingSchema, usageSchema } from '../usage/config.js';
import { checkIdentityReferences, defaultGatewayTokenLifetime, gatewayTokens, identityAssertion, identityState, loginSettings, serviceKeys, webLogin, workloadBinding } from './identity-schema.js';

/** Asymmetric JWS algorithms only: HMAC would let anyone holding the public key forge tokens. */
export const ALLOWED_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

const claimMapping = z
  .object({
    subject: z.string().default('sub'),
    email: z.string().default('email'),
    name: z.string().default('name'),
    /** Dotted path; `realm_access.roles` or `resource_access.modelgate.roles` work. */
    groups: z.string().default('groups'),
  })
  .strict()
  .prefault({});

const issuer = z
  .object({
    issuer: httpUrl,
    /** Accepted `aud` values; a token must name at least one. */
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).transform((a) => (Array.isArray(a) ? a : [a])),
    /** Skip discovery and use this JWKS URL directly. */
    jwks_uri: httpUrl.optional(),
    claims: claimMapping,
    /**
     * Reject tokens without the groups claim at all (usually an IdP not configured to send it). A token whose claim
     * is present but empty is a person in no group; set false for IdPs that omit the claim for such people.
     */
    require_groups: z.boolean().default(true),
    /** Prefix added to this issuer's groups, so two IdPs cannot collide on a group name. */
    group_prefix: z.string().default(''),
    /**
     * What proves a token is an access token and not an ID token replayed as one. `at+jwt`: the header must
     * say `typ: at+jwt` (RFC 9068; set it when the IdP issues such tokens). `auto`: `at+jwt` passes, and tokens
     * carrying ID-token claims (`nonce`, `at_hash`, `c_hash`, or Keycloak's `typ: ID`) are refused. `any`: no
     * check, for IdPs whose ID token is the bearer (`identity.login.bearer: id_token` implies it for its issuer).
     */
    token_type: z.enum(['auto', 'at+jwt', 'any']).default('auto'),
    /**
     * Whether this issuer's `email_verified: true` may make its user the same person as a user of another
     * issuer with that email (reviews they may see, approvals they may use). Off: people are (issuer, subject).
     */
    trust_email: z.boolean().default(false),
    /** A CI issuer's tokens are trusted only through these bindings (claim conditions → service identity). */
    workload: z.array(workloadBinding).default([]),
    jwks: z
      .object({
        cache_max_age: duration.prefault('10m'),
        /** Minimum time between JWKS refetches triggered by an unknown `kid`. */
        refetch_cooldown: duration.prefault('30s'),
        timeout: duration.prefault('5s'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

const identity = z
  .object({
    issuers: z.array(issuer).min(1, 'configure at least one trusted OIDC issuer'),
    algorithms: z.array(z.enum(ALLOWED_ALGORITHMS)).min(1).default(['RS256', 'PS256', 'ES256', 'EdDSA']),
    clock_skew: duration.prefault('30s'),
    /** Longest allowed `exp - iat`: only short-lived tokens pass. */
    max_token_lifetime: duration.prefault('1h'),
    login: loginSettings.optional(),
    gateway_tokens: gatewayTokens,
    state: identityState,
    web: webLogin,
    service_keys: serviceKeys,
  })
  .strict()
  .transform((id) => ({
    ...id,
    gateway_tokens: { ...id.gateway_tokens, lifetime: id.gateway_tokens.lifetime ?? defaultGatewayTokenLifetime(id.max_token_lifetime) },
  }));

const target = z
  .object({
    url: httpUrl.optional(),
    /** `agent`: the model is reached through the agents that serve this connection (`modelgate agent`), not by URL. */
    via: z.literal('agent').optional(),
    weight: z.number().int().min(1).max(100).default(1),
  })
  .strict()
  .refine((t) => !t.url !== !t.via, { message: 'a target has either `url` or `via: agent`', path: ['url'] });

const model = z
  .object({
    /** The name clients send in `model`. */
    name,
    /** The name the upstream knows the model by, if different. */
    upstream_name: z.string().min(1).optional(),
    aliases: z.array(name).default([]),
  })
  .strict();

const credential = z
  .object({
    /** Header the upstream expects the key in. */
    header: z.string().regex(/^[A-Za-z0-9-]+$/).default('authorization'),
    /** The full header value, e.g. "Bearer ${VLLM_API_KEY}". */
    value: z.string().min(1),
  })
  .strict();

const connection = z
  .object({
    name,
    /** The API the upstream speaks natively. Ollama also serves the OpenAI API. */
    kind: z.enum(['openai', 'ollama']).default('openai'),
    /** Shorthand for a single target. */
    url: httpUrl.optional(),
    targets: z.array(target).optional(),
    load_balancing: z.enum(['round_robin', 'failover']).default('round_robin'),
    /** Shorthand for `credential: {header: authorization, value: "Bearer <api_key>"}`. */
    api_key: z.string().min(1).optional(),
    credential: credential.optional(),
    timeouts: z
      .object({
        connect: duration.prefault('5s'),
        /** Until the upstream sends response headers (models can queue). */
        response_headers: duration.prefault('120s'),
        /** Longest silence between two body chunks. */
        idle: duration.prefault('120s'),
      })
      .strict()
      .prefault({}),
    /** How long a target that refused a connection is skipped. */
    unhealthy_cooldown: duration.prefault('10s'),
    max_connections_per_target: z.number().int().min(1).max(10_000).default(256),
    /** Requests allowed to wait for a busy target's connection; more get 503 + retry-after at once. */
    max_queued: z.number().int().min(0).max(100_000).default(1024),
    /** Longest wait for a connection before 503 + retry-after. */
    queue_timeout: duration.prefault('30s'),
    identity_assertion: identityAssertion.optional(),
    /** Accept service keys (`modelgate keys`) on this connection. Off: only short-lived tokens are. */
    service_keys: z.boolean().default(false),
    /** Overrides of the recording defaults for this connection (bodies on/off, retention). */
    recording: connectionRecordingSchema.optional(),
    /**
     * Top-level request fields the protocol does not document: `inspect` reads
     * them as text like any other field; `drop` removes them before inspection
     * and forwarding.
     */
    unknown_fields: z.enum(['inspect', 'drop']).default('inspect'),
    models: z.array(model).min(1, 'a connection must serve at least one model'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (!c.url === !c.targets) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'set exactly one of `url` or `targets`' });
    }
    if (c.targets && c.targets.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['targets'], message: 'needs at least one target' });
    }
    if (c.targets && c.targets.length > 1 && c.targets.some((t) => t.via === 'agent')) {
      ctx.addIssue({ code: 'custom', path: ['targets'], message: 'a `via: agent` target stands alone: the agents serving the connection are its targets' });
    }
    if (c.api_key && c.credential) {
      ctx.addIssue({ code: 'custom', path: ['api_key'], message: 'set at most one of `api_key` or `credential`' });
    }
  })
  .transform(({ url, targets, api_key, credential, ...rest }) => ({
    ...rest,
    targets: targets ?? [{ url: url!, weight: 1 }],
    credential: credential ?? (api_key ? { header: 'authorization', value: `Bearer ${api_key}` } : undefined),
  }));

const accessRule = z
  .object({
    description: z.string().optional(),
    groups: z.array(z.string().min(1)).default([]),
    subjects: z.array(z.string().min(1)).default([]),
    /**
     * The issuer `subjects` belong to (an `identity.issuers` URL, or the SAML IdP's entity ID): the same `sub`
     * from another issuer is another person. Required with subjects when there is more than one issuer.
     */
    issuer: z.string().min(1).optional(),
    /** Connection names, or "*". */
    connections: z.array(z.string().min(1)).min(1),
    /** Model names (not aliases), or "*" for every model of the listed connections. */
    models: z.array(z.string().min(1)).default(['*']),
  })
  .strict()
  .refine((r) => r.groups.length + r.subjects.length > 0, {
    message: 'an access rule must name at least one group or subject',
    path: ['groups'],
  });

const server = z
  .object({
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8080),
    /** The URL clients use to reach the gateway (for links in errors and `modelgate dev` output). */
    public_url: httpUrl.optional(),
    max_body_bytes: byteSize.prefault('4mb'),
    /** How long graceful shutdown waits for in-flight streams. */
    shutdown_grace: duration.prefault('30s'),
    /**
     * On SIGTERM, how long the gateway keeps accepting and serving while `/readyz` reports draining, so load
     * balancers stop sending before it stops listening. Counts towards `shutdown_grace`.
     */
    drain_notice: duration.prefault('5s'),
    /** Trust X-Forwarded-For from these proxies when recording the client IP. */
    trusted_proxies: z.array(z.string()).default([]),
    keep_alive_timeout: duration.prefault('65s'),
    /**
     * Connections the kernel holds for the gateway before it accepts them (capped by the system's
     * `net.core.somaxconn`). A burst of new connections beyond it is dropped or reset by the kernel
     * before the gateway can answer (node's default is 511; the soak opens 5,000 at once).
     */
    listen_backlog: z.number().int().min(1).max(65_535).default(4096),
    /** The whole request (headers and body) must arrive within this: slow-body (slowloris) defence. */
    request_timeout: duration.prefault('60s'),
    /** The request headers must arrive within this; below `request_timeout`. */
    headers_timeout: duration.prefault('15s'),
    /**
     * After a burst, once no request has been in flight for this long, the gateway collects its heap and its
     * store threads' and gives the memory back (V8 alone does it only after 50-100 s idle); 0s turns it off.
     */
    idle_reclaim: duration.prefault('10s'),
    /** JSON bodies nested deeper than this are refused before they are parsed. */
    max_json_depth: z.number().int().min(2).max(10_000).default(64),
    /** Prometheus metrics: on the main port by default; `listen` moves them to their own address, `bearer` requires a token. */
    metrics: z
      .object({
        /** `host:port` of a separate listener for /metrics; the main port then answers 404 for it. */
        listen: z.string().regex(/^(?:\[[0-9a-fA-F:.]+\]|[\w.-]+):\d{1,5}$/, 'use host:port, e.g. 127.0.0.1:9464').optional(),
        /** A static bearer token scrapers must send (`${ENV}` it in). */
        bearer: z.string().min(16, 'use a random bearer of at least 16 characters').optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .refine((s) => s.headers_timeout < s.request_timeout, { message: 'headers_timeout must be shorter than request_timeout', path: ['headers_timeout'] })
  .prefault({});

export const configSchema = z
  .object({
    server,
    logging: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .strict()
      .prefault({}),
    identity,
    connections: z.array(connection).min(1, 'configure at least one connection'),
    access: z.array(accessRule).default([]),
    guardrails: guardrailsSchema.prefault({}),
    storage: storageSchema,
    recording: recordingSchema,
    approvals: approvalsSchema,
    limits: limitsSchema,
    usage: usageSchema,
    tracing: tracingSchema,
    /** Where agents (`modelgate agent`) dial in; needed when a connection has a `via: agent` target. */
    agents: agentsSchema.optional(),
  })
  .strict()
  .superRefine((config, ctx) => {
    config.connections.forEach((c, i) => {
      if (!config.agents && c.targets?.some((t) => t.via === 'agent')) {
        ctx.addIssue({ code: 'custom', path: ['connections', i, 'targets'], message: `connection "${c.name}" is served via agent, so configure the \`agents\` section (where agents dial in)` });
      }
    });
    checkIdentityReferences(config.identity, ctx);
    const connectionNames = new Set<string>();
    const modelOwners = new Map<string, string>();
    config.connections.forEach((c, i) => {
      if (connectionNames.has(c.name)) {
        ctx.addIssue({ code: 'custom', path: ['connections', i, 'name'], message: `duplicate connection name "${c.name}"` });
      }
      connectionNames.add(c.name);
      c.models.forEach((m, j) => {
        for (const served of [m.name, ...m.aliases]) {
          const owner = modelOwners.get(served);
          if (owner !== undefined) {
            ctx.addIssue({
              code: 'custom',
              path: ['connections', i, 'models', j],
              message: `model name "${served}" is already served by ${owner}; each name must route to one place`,
            });
          }
          modelOwners.set(served, `connection "${c.name}"`);
        }
      });
    });
    for (const problem of unknownConnectionReferences(config.guardrails, connectionNames)) {
      ctx.addIssue({ code: 'custom', path: ['guardrails', ...problem.path], message: problem.message });
    }
    config.approvals.access_requests.connections.forEach((name, j) => {
      if (name !== '*' && !connectionNames.has(name)) {
        ctx.addIssue({ code: 'custom', path: ['approvals', 'access_requests', 'connections', j], message: `unknown connection "${name}"` });
      }
    });
    config.limits.rules.forEach((rule, i) => {
      rule.connections.forEach((name, j) => {
        if (name !== '*' && !connectionNames.has(name)) {
          ctx.addIssue({ code: 'custom', path: ['limits', 'rules', i, 'connections', j], message: `unknown connection "${name}"` });
        }
      });
    });
    checkSubjectIssuers(config, ctx);
    checkSubjectIssuers(config, ctx, 'limits');
    config.access.forEach((rule, i) => {
      rule.connections.forEach((name, j) => {
        if (name !== '*' && !connectionNames.has(name)) {
          ctx.addIssue({ code: 'custom', path: ['access', i, 'connections', j], message: `unknown connection "${name}"` });
        }
      });
    });
  });

/**
 * Subject rules (access, and limit rules) name their issuer: a second issuer's token with the same `sub` must
 * not get the first one's service account, nor its limits. A bare subject is allowed only when there is one
 * source of identities.
 */
function checkSubjectIssuers(
  config: { identity: z.output<typeof identity>; access: Array<z.output<typeof accessRule>>; limits: z.output<typeof limitsSchema> },
  ctx: z.RefinementCtx,
  section: 'access' | 'limits' = 'access',
): void {
  const saml = config.identity.web.saml;
  const sources = [...config.identity.issuers.map((i) => i.issuer), ...(saml ? [saml.idp_entity_id ?? 'the SAML IdP'] : [])];
  const [rules, at]: [ReadonlyArray<{ subjects: string[]; issuer?: string | undefined }>, (string | number)[]] =
    section === 'access' ? [config.access, ['access']] : [config.limits.rules, ['limits', 'rules']];
  rules.forEach((rule, i) => {
    if (rule.issuer !== undefined && !sources.includes(rule.issuer)) {
      ctx.addIssue({ code: 'custom', path: [...at, i, 'issuer'], message: `"${rule.issuer}" is not one of identity.issuers (or the SAML IdP's idp_entity_id)` });
    }
    if (rule.subjects.length > 0 && rule.issuer === undefined && sources.length > 1) {
      ctx.addIssue({
        code: 'custom',
        path: [...at, i, 'subjects'],
        message: `with several issuers a subject is ambiguous: add \`issuer:\` to this rule naming the one its subjects belong to (one of ${sources.join(', ')}), or split it into one rule per issuer`,
      });
    }
  });
}

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type ConnectionConfig = Config['connections'][number];
export type IssuerConfig = Config['identity']['issuers'][number];
export type AccessRule = Config['access'][number];
