// Tokens the gateway signs itself: API access tokens for people who signed
// in through the browser (SAML users have no OIDC token), and identity
// assertions sent to model servers. To the verifier the gateway is one more
// trusted issuer; its tokens carry `typ: at+jwt` and the gateway as
// audience, so an identity assertion (another `typ` and audience) can never
// be replayed as an access token. Revocation is per subject or of all
// tokens issued up to a moment, and is shared through the identity state.
import { randomUUID } from 'node:crypto';
import { SignJWT, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { GatewayTokensConfig } from '../config/identity-schema.js';
import { readGroupsClaim, readStringClaim, usableClaim } from './claims.js';
import { invalidToken } from './errors.js';
import type { AuthenticationMethod, Principal } from './principal.js';
import type { GatewaySigningKeys } from './signing-keys.js';
import type { IdentityState } from './state/identity-state.js';
import type { TokenIssuer } from './verify-token.js';

export const ACCESS_TOKEN_TYPE = 'at+jwt';
export const IDENTITY_ASSERTION_TYPE = 'modelgate-identity+jwt';

/** Who a gateway token is for: the identity established at sign-in. */
export interface TokenSubject {
  subject: string;
  email?: string;
  name?: string;
  groups: string[];
  /** Where the person signed in (SAML IdP entity ID or OIDC issuer), kept for attribution. */
  origin: string;
}

export interface MintedToken {
  token: string;
  /** Epoch seconds. */
  expiresAt: number;
}

const ALL_SCOPE = 'all';
const subjectScope = (subject: string) => `subject:${subject}`;
/** One token, by its `jti`: what `modelgate logout` revokes, leaving the person's other sign-ins alone. */
const tokenScope = (tokenId: string) => `token:${tokenId}`;

export class GatewayTokens implements TokenIssuer {
  readonly tokenType = ACCESS_TOKEN_TYPE;
  readonly ready = true;
  private revoked = new Map<string, number>();
  private revocationsLoadedAt = Number.NEGATIVE_INFINITY;
  private loadingRevocations: Promise<void> | undefined;

  constructor(
    /** The gateway's public URL, `iss` and `aud` of its access tokens; known once the gateway listens. */
    private readonly issuer: () => string,
    private readonly keys: GatewaySigningKeys,
    private readonly state: IdentityState,
    private readonly config: GatewayTokensConfig,
    /** Longest time any gateway token lives plus clock skew: how long a revocation must be remembered. */
    private readonly revocationMemoryMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get id(): string {
    return this.issuer();
  }

  get audience(): readonly string[] {
    return [this.id];
  }

  publicJwks(): ReturnType<GatewaySigningKeys['publicJwks']> {
    return this.keys.publicJwks();
  }

  async keyResolver(): Promise<JWTVerifyGetKey> {
    // Revocations must be current before a token is judged, so refresh them with the keys.
    await this.refreshRevocationsIfStale();
    return this.keys.resolver();
  }

  async warmUp(): Promise<void> {
    await Promise.all([this.keys.reload(), this.reloadRevocations()]);
  }

  async mint(subject: TokenSubject): Promise<MintedToken> {
    const { kid, alg, key } = await this.keys.current();
    const issuedAt = Math.floor(this.now() / 1000);
    const expiresAt = issuedAt + Math.floor(this.config.lifetime / 1000);
    const claims: JWTPayload = { groups: subject.groups, idp: subject.origin };
    if (subject.email) claims.email = subject.email;
    if (subject.name) claims.name = subject.name;
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg, kid, typ: ACCESS_TOKEN_TYPE })
      .setIssuer(this.id)
      .setAudience(this.id)
      .setSubject(subject.subject)
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAt)
      .setJti(randomUUID())
      .sign(key);
    return { token, expiresAt };
  }

  /** A short-lived JWT naming the caller, for a model server to attribute a request without trusting the client. */
  async identityAssertion(principal: Principal, audience: string, requestId: string, lifetimeMs: number): Promise<string> {
    const { kid, alg, key } = await this.keys.current();
    const issuedAt = Math.floor(this.now() / 1000);
    const claims: JWTPayload = { groups: principal.groups, request_id: requestId, auth_iss: principal.issuer };
    if (principal.email) claims.email = principal.email;
    if (principal.method) claims.amr_gateway = principal.method;
    return new SignJWT(claims)
      .setProtectedHeader({ alg, kid, typ: IDENTITY_ASSERTION_TYPE })
      .setIssuer(this.id)
      .setAudience(audience)
      .setSubject(principal.subject)
      .setIssuedAt(issuedAt)
      .setExpirationTime(issuedAt + Math.max(1, Math.floor(lifetimeMs / 1000)))
      .setJti(randomUUID())
      .sign(key);
  }

  toPrincipal(payload: JWTPayload): Principal {
    const claims = payload as Record<string, unknown>;
    const subject = usableClaim('sub', payload.sub!);
    const issuedAt = payload.iat!;
    const cutOff = Math.max(this.revoked.get(ALL_SCOPE) ?? 0, this.revoked.get(subjectScope(subject)) ?? 0);
    if (issuedAt <= cutOff || (payload.jti !== undefined && this.revoked.has(tokenScope(payload.jti)))) {
      throw invalidToken('token_revoked', 'This gateway-issued token has been revoked; sign in again to get a new one.');
    }
    const principal: Principal = {
      issuer: this.id,
      subject,
      groups: readGroupsClaim(claims, 'groups'),
      expiresAt: payload.exp!,
      method: 'gateway' satisfies AuthenticationMethod,
    };
    const email = readStringClaim(claims, 'email');
    const name = readStringClaim(claims, 'name');
    if (email) principal.email = email;
    if (name) principal.name = name;
    if (payload.jti) principal.tokenId = payload.jti;
    const origin = readStringClaim(claims, 'idp');
    if (origin) principal.origin = origin;
    return principal;
  }

  /** A new signing key from now on, e.g. after a suspected leak; tokens it did not sign stay valid until revoked. */
  rotateKeysNow(): Promise<void> {
    return this.keys.rotateNow();
  }

  /** Deletes every signing key and starts a new one: all outstanding gateway tokens stop verifying. */
  replaceAllKeys(): Promise<void> {
    return this.keys.replaceAllKeys();
  }

  /** Refuses every token issued to `subject` up to now (and within this second). */
  revokeSubject(subject: string): Promise<void> {
    return this.revokeScope(subjectScope(subject));
  }

  /** Refuses every gateway-issued token issued up to now. */
  revokeAll(): Promise<void> {
    return this.revokeScope(ALL_SCOPE);
  }

  /** Refuses one token (by `jti`) from now on; remembered until it would have expired anyway. */
  async revokeToken(principal: Pick<Principal, 'tokenId' | 'expiresAt'>): Promise<void> {
    if (!principal.tokenId) throw new Error('a gateway-issued token without a jti cannot be revoked alone');
    const now = this.now();
    const scope = tokenScope(principal.tokenId);
    // Kept until the token's `exp` plus the clock skew the verifier allows (the memory beyond a token's lifetime).
    const skew = this.revocationMemoryMs - this.config.lifetime;
    await this.state.revoke({ scope, revokedBefore: Math.floor(now / 1000), expiresAt: Math.max(now, principal.expiresAt * 1000) + skew });
    this.revoked.set(scope, Math.floor(now / 1000));
  }

  /** Rereads revocations from the shared state; other instances' revocations arrive within `sync_interval`. */
  async reloadRevocations(): Promise<void> {
    this.loadingRevocations ??= (async () => {
      try {
        const now = this.now();
        const revocations = await this.state.revocations(now);
        this.revoked = new Map(revocations.map((r) => [r.scope, r.revokedBefore]));
        this.revocationsLoadedAt = now;
      } finally {
        this.loadingRevocations = undefined;
      }
    })();
    return this.loadingRevocations;
  }

  private async revokeScope(scope: string): Promise<void> {
    const now = this.now();
    const revokedBefore = Math.floor(now / 1000);
    await this.state.revoke({ scope, revokedBefore, expiresAt: now + this.revocationMemoryMs });
    this.revoked.set(scope, Math.max(this.revoked.get(scope) ?? 0, revokedBefore));
  }

  private async refreshRevocationsIfStale(): Promise<void> {
    if (this.now() - this.revocationsLoadedAt >= this.config.sync_interval) await this.reloadRevocations();
  }
}
