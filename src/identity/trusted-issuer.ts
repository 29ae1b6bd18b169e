// One trusted OIDC issuer: its discovery document, its JWKS, and how its
// claims become a principal. Discovery runs once and is retried after a
// failure; the JWKS is cached by jose and refetched on an unknown `kid`, at
// most once per cooldown. A workload issuer (a CI system) maps claims
// through its bindings instead of reading groups from the token.
import { createRemoteJWKSet, customFetch, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { IssuerConfig } from '../config/schema.js';
import { readClaim, readGroupsClaim, readStringClaim } from './claims.js';
import { invalidToken } from './errors.js';
import type { Principal } from './principal.js';
import type { TokenIssuer } from './verify-token.js';
import { matchWorkloadBinding, workloadNotBound } from './workload.js';

type RemoteJwks = ReturnType<typeof createRemoteJWKSet>;

const DISCOVERY_RETRY_MS = 5_000;

export class TrustedIssuer implements TokenIssuer {
  private jwks: RemoteJwks | undefined;
  private discovery: Promise<RemoteJwks> | undefined;
  private lastFailureAt = 0;

  constructor(
    readonly config: IssuerConfig,
    /** Told about every JWKS fetch, so operators can see refetch storms. */
    private readonly onJwksFetch: (issuer: string) => void = () => {},
  ) {}

  get id(): string {
    return this.config.issuer;
  }

  get audience(): readonly string[] {
    return this.config.audience;
  }

  get tokenType(): string | undefined {
    return this.config.token_type === 'at+jwt' ? 'at+jwt' : undefined;
  }

  get refusesIdTokens(): boolean {
    return this.config.token_type === 'auto';
  }

  /** True once the JWKS has been fetched at least once. */
  get ready(): boolean {
    return this.jwks?.jwks() !== undefined;
  }

  /** The key resolver for jose's jwtVerify; discovers the JWKS URL on first use. */
  async keyResolver(): Promise<JWTVerifyGetKey> {
    if (this.jwks) return this.jwks;
    if (!this.discovery) {
      if (Date.now() - this.lastFailureAt < DISCOVERY_RETRY_MS) {
        throw new Error(`discovery for ${this.id} failed recently; retrying in a few seconds`);
      }
      this.discovery = this.discover().then(
        (jwks) => (this.jwks = jwks),
        (err) => {
          this.discovery = undefined;
          this.lastFailureAt = Date.now();
          throw err;
        },
      );
    }
    return this.discovery;
  }

  /** Fetches discovery and the JWKS now, so readiness reflects the IdP. */
  async warmUp(): Promise<void> {
    const jwks = (await this.keyResolver()) as RemoteJwks;
    await jwks.reload();
  }

  toPrincipal(payload: JWTPayload): Principal {
    const claims = payload as Record<string, unknown>;
    if (this.config.workload.length > 0) return this.workloadPrincipal(payload, claims);
    const { claims: mapping, require_groups, group_prefix } = this.config;
    const subject = readStringClaim(claims, mapping.subject);
    if (!subject) throw invalidToken('token_subject_missing', `Token has no subject claim "${mapping.subject}".`);
    const groups = readGroupsClaim(claims, mapping.groups).map((g) => group_prefix + g);
    if (groups.length === 0 && hasGroupsOverage(claims)) {
      throw invalidToken(
        'token_groups_overage',
        'Token has too many groups to carry them (Microsoft Entra ID groups overage), so the gateway cannot see them. Ask your IdP administrator to emit only the groups assigned to the application, or app roles.',
      );
    }
    // An empty groups claim is a person in no group (who then gets a 403 naming what they lack). Only a token
    // without the claim at all, from an issuer that must send it, says the IdP is not configured to send groups.
    if (require_groups && readClaim(claims, mapping.groups) === undefined) {
      throw invalidToken(
        'token_groups_missing',
        `Token has no groups claim "${mapping.groups}"; this issuer is configured to always send one (require_groups). Ask your IdP administrator to add the groups claim to access tokens, or set require_groups: false for this issuer if its tokens omit the claim for people in no group.`,
      );
    }
    const principal: Principal = { issuer: this.id, subject, groups, expiresAt: payload.exp!, method: 'oidc' };
    const email = readStringClaim(claims, mapping.email);
    const name = readStringClaim(claims, mapping.name);
    const clientId = readStringClaim(claims, 'client_id') ?? readStringClaim(claims, 'azp');
    if (email) principal.email = email;
    if (email && this.config.trust_email && claims.email_verified === true) principal.emailTrusted = true;
    if (name) principal.name = name;
    if (clientId) principal.clientId = clientId;
    if (payload.jti) principal.tokenId = payload.jti;
    return principal;
  }

  private workloadPrincipal(payload: JWTPayload, claims: Record<string, unknown>): Principal {
    const binding = matchWorkloadBinding(claims, this.config.workload);
    if (!binding) throw workloadNotBound(this.id, claims, this.config.workload);
    const principal: Principal = {
      issuer: this.id,
      subject: binding.subject,
      groups: binding.groups.map((g) => this.config.group_prefix + g),
      expiresAt: payload.exp!,
      method: 'workload',
      workloadSubject: payload.sub!,
    };
    if (payload.jti) principal.tokenId = payload.jti;
    return principal;
  }

  private async discover(): Promise<RemoteJwks> {
    const { jwks_uri: configured, jwks } = this.config;
    const jwksUri = configured ?? (await this.fetchJwksUri(jwks.timeout));
    return createRemoteJWKSet(new URL(jwksUri), {
      timeoutDuration: jwks.timeout,
      cooldownDuration: jwks.refetch_cooldown,
      cacheMaxAge: jwks.cache_max_age,
      // Reported once the new key set has arrived, so listeners can drop what the old one vouched for.
      [customFetch]: async (url, init) => {
        const response = await fetch(url, init);
        this.onJwksFetch(this.id);
        return response;
      },
    });
  }

  private async fetchJwksUri(timeoutMs: number): Promise<string> {
    const url = `${this.id.replace(/\/$/, '')}/.well-known/openid-configuration`;
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
    if (!response.ok) throw new Error(`discovery at ${url} answered HTTP ${response.status}`);
    const document = (await response.json()) as { issuer?: unknown; jwks_uri?: unknown };
    // OIDC Discovery §4.3: the document must name exactly the issuer we asked for.
    if (document.issuer !== this.id) {
      throw new Error(`discovery at ${url} names issuer ${String(document.issuer)}, expected ${this.id}`);
    }
    if (typeof document.jwks_uri !== 'string') throw new Error(`discovery at ${url} has no jwks_uri`);
    return document.jwks_uri;
  }
}

/**
 * Entra ID replaces the groups claim with a pointer to Microsoft Graph when a
 * user has more than 200 groups (`_claim_names.groups`, or `hasgroups` in
 * implicit-flow tokens). Seen here, "no groups" would be a lie.
 */
function hasGroupsOverage(claims: Record<string, unknown>): boolean {
  const names = claims._claim_names;
  const pointsElsewhere = typeof names === 'object' && names !== null && 'groups' in names;
  return pointsElsewhere || claims.hasgroups === true || claims.hasgroups === 'true';
}
