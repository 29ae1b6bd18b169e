// Verifies a bearer JWT against the trusted issuers and turns it into a
// Principal. Every check that fails names itself with a stable code. OIDC
// issuers, CI workload issuers and the gateway's own tokens are all issuers
// here: they differ only in where keys come from and how claims map.
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Config } from '../config/schema.js';
import type { GatewayError } from '../http/errors.js';
import { identityProviderUnavailable, invalidToken, missingToken } from './errors.js';
import { UnusableClaimError } from './claims.js';
import type { Principal } from './principal.js';
import { TrustedIssuer } from './trusted-issuer.js';

/** A source of tokens the gateway trusts. */
export interface TokenIssuer {
  readonly id: string;
  readonly audience: readonly string[];
  /** Required JWT `typ`, when the issuer sets one (the gateway's own tokens). */
  readonly tokenType?: string;
  /** Refuse tokens that carry ID-token claims (issuers whose access tokens have no `typ: at+jwt`). */
  readonly refusesIdTokens?: boolean;
  /** True once keys are loaded. */
  readonly ready: boolean;
  keyResolver(): Promise<JWTVerifyGetKey>;
  warmUp(): Promise<void>;
  /** Turns verified claims into a principal, or refuses with a GatewayError. */
  toPrincipal(payload: JWTPayload): Principal;
}

/** Longer than any real access token; bounds the work an attacker can make us do. */
const MAX_TOKEN_LENGTH = 16 * 1024;
/**
 * Signature checks are the costliest step of a request, and a client sends
 * the same token many times. A verified signature is remembered for at most
 * this long (never past `exp`); claim mapping, revocation and workload
 * checks still run on every request. The bound is also how long a token
 * signed with a key the IdP has just withdrawn can still pass.
 */
const VERIFIED_SIGNATURE_TTL_SECONDS = 30;
const VERIFIED_SIGNATURE_CACHE_SIZE = 10_000;

interface VerifiedSignature {
  issuer: TokenIssuer;
  payload: JWTPayload;
  /** Epoch seconds from which the token must be verified again (as jose: expired once now >= exp + skew). */
  until: number;
}

export class TokenVerifier {
  private readonly issuers = new Map<string, TokenIssuer>();
  private readonly algorithms: string[];
  private readonly clockSkewSeconds: number;
  private readonly maxLifetimeSeconds: number;
  private readonly verifiedSignatures = new Map<string, VerifiedSignature>();

  constructor(config: Config['identity'], onJwksFetch?: (issuer: string) => void) {
    const keysFetched = (issuer: string): void => {
      // A key may have been withdrawn: signatures it vouched for must be checked again.
      this.forgetVerifiedSignatures(issuer);
      onJwksFetch?.(issuer);
    };
    // Where people log in with the ID token as their bearer, that issuer's ID tokens are its access tokens.
    const idTokenBearer = config.login?.bearer === 'id_token' ? (config.login.issuer ?? config.issuers.find((i) => i.workload.length === 0)?.issuer) : undefined;
    for (const issuer of config.issuers) {
      const settings = issuer.issuer === idTokenBearer && issuer.token_type === 'auto' ? { ...issuer, token_type: 'any' as const } : issuer;
      this.issuers.set(issuer.issuer, new TrustedIssuer(settings, keysFetched));
    }
    this.algorithms = [...config.algorithms];
    this.clockSkewSeconds = Math.ceil(config.clock_skew / 1000);
    this.maxLifetimeSeconds = Math.floor(config.max_token_lifetime / 1000);
  }

  /** Adds an issuer that is not in the configuration, such as the gateway itself. */
  trust(issuer: TokenIssuer): void {
    if (this.issuers.has(issuer.id)) throw new Error(`issuer ${issuer.id} is already trusted`);
    this.issuers.set(issuer.id, issuer);
  }

  get ready(): boolean {
    return [...this.issuers.values()].every((issuer) => issuer.ready);
  }

  /** Fetches every issuer's discovery document and JWKS; failures are logged by the caller and retried lazily. */
  async warmUp(): Promise<PromiseSettledResult<void>[]> {
    return Promise.allSettled([...this.issuers.values()].map((issuer) => issuer.warmUp()));
  }

  /** Extracts the bearer token from an Authorization header value. */
  static bearerToken(authorization: string | undefined): string {
    if (!authorization) {
      throw missingToken('Missing bearer token. Send "Authorization: Bearer <token>" with an access token from your identity provider (try `modelgate token`).');
    }
    const match = /^Bearer[ \t]+([A-Za-z0-9\-._~+/]+=*)[ \t]*$/i.exec(authorization);
    if (!match) throw invalidToken('token_malformed', 'The Authorization header must be "Bearer <token>".');
    return match[1]!;
  }

  async verify(token: string): Promise<Principal> {
    if (token.length > MAX_TOKEN_LENGTH) throw invalidToken('token_malformed', 'The bearer token is too long to be an access token.');
    const remembered = this.verifiedSignatures.get(token);
    if (remembered) {
      if (Math.floor(Date.now() / 1000) < remembered.until) return principalOf(remembered.issuer, remembered.payload);
      this.verifiedSignatures.delete(token);
    }

    const { header, claims } = decodeUnverified(token);
    if (!this.algorithms.includes(String(header.alg))) {
      throw invalidToken(
        'token_algorithm_forbidden',
        `Token algorithm "${String(header.alg)}" is not allowed; accepted: ${this.algorithms.join(', ')}.`,
      );
    }
    const issuer = typeof claims.iss === 'string' ? this.issuers.get(claims.iss) : undefined;
    if (!issuer) {
      throw invalidToken('token_issuer_untrusted', `Token issuer ${JSON.stringify(claims.iss ?? null)} is not a trusted issuer of this gateway.`);
    }

    if (issuer.refusesIdTokens && looksLikeIdToken(header, claims)) {
      throw invalidToken(
        'token_type_invalid',
        'This is an ID token, not an access token; send the access token your identity provider issued for this gateway.',
      );
    }
    const payload = await this.verifySignatureAndClaims(token, issuer);
    const principal = principalOf(issuer, payload);
    this.remember(token, issuer, payload);
    return principal;
  }

  /** Drops remembered signatures, of one issuer or all, e.g. after its keys changed. */
  forgetVerifiedSignatures(issuerId?: string): void {
    if (issuerId === undefined) return this.verifiedSignatures.clear();
    for (const [token, entry] of this.verifiedSignatures) if (entry.issuer.id === issuerId) this.verifiedSignatures.delete(token);
  }

  private remember(token: string, issuer: TokenIssuer, payload: JWTPayload): void {
    // Only remote OIDC issuers: their key changes arrive through a JWKS fetch, which clears the memory.
    // The gateway's own keys change through shared state, so its tokens are checked every time.
    if (!(issuer instanceof TrustedIssuer)) return;
    if (this.verifiedSignatures.size >= VERIFIED_SIGNATURE_CACHE_SIZE) {
      // Maps iterate in insertion order: drop the oldest entry.
      this.verifiedSignatures.delete(this.verifiedSignatures.keys().next().value!);
    }
    const until = Math.min(payload.exp! + this.clockSkewSeconds, Math.floor(Date.now() / 1000) + VERIFIED_SIGNATURE_TTL_SECONDS);
    this.verifiedSignatures.set(token, { issuer, payload, until });
  }

  /** Maps claims that were verified elsewhere (an ID token checked by openid-client) with the issuer's own rules. */
  principalFromVerifiedClaims(issuerId: string, claims: Record<string, unknown>): Principal {
    const issuer = this.issuers.get(issuerId);
    if (!issuer) throw invalidToken('token_issuer_untrusted', `${issuerId} is not a trusted issuer of this gateway.`);
    return principalOf(issuer, claims as JWTPayload);
  }

  private async verifySignatureAndClaims(token: string, issuer: TokenIssuer): Promise<JWTPayload> {
    let keys;
    try {
      keys = await issuer.keyResolver();
    } catch (err) {
      throw identityProviderUnavailable(issuer.id, err);
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer: issuer.id,
        audience: [...issuer.audience],
        algorithms: this.algorithms,
        ...(issuer.tokenType ? { typ: issuer.tokenType } : {}),
        clockTolerance: this.clockSkewSeconds,
        requiredClaims: ['exp', 'iat', 'sub'],
      }));
    } catch (err) {
      throw explainVerificationFailure(err, issuer);
    }

    const now = Math.floor(Date.now() / 1000);
    const { iat, exp } = payload as { iat: number; exp: number };
    if (iat > now + this.clockSkewSeconds) {
      throw invalidToken('token_issued_in_future', 'Token "iat" is in the future; check the clock of the identity provider.');
    }
    if (exp - iat > this.maxLifetimeSeconds) {
      throw invalidToken(
        'token_lifetime_too_long',
        `Token lifetime ${exp - iat}s exceeds the gateway's maximum of ${this.maxLifetimeSeconds}s; only short-lived tokens are accepted.`,
      );
    }
    return payload;
  }
}

/** An ID token by its claims, unless the header says it is an RFC 9068 access token. */
function looksLikeIdToken(header: Record<string, unknown>, claims: JWTPayload): boolean {
  if (/^(?:application\/)?at\+jwt$/i.test(String(header.typ ?? ''))) return false;
  return claims.nonce !== undefined || claims.at_hash !== undefined || claims.c_hash !== undefined || claims.typ === 'ID';
}

function decodeUnverified(token: string): { header: Record<string, unknown>; claims: JWTPayload } {
  try {
    return { header: decodeProtectedHeader(token) as Record<string, unknown>, claims: decodeJwt(token) };
  } catch {
    throw invalidToken('token_malformed', 'The bearer token is not a well-formed JWT (JWS compact serialization).');
  }
}

function explainVerificationFailure(err: unknown, issuer: TokenIssuer): GatewayError {
  if (err instanceof errors.JWTExpired) return invalidToken('token_expired', 'Token has expired; obtain a fresh one (e.g. `modelgate token`).');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') {
      return invalidToken('token_claim_missing', `Token has no "${err.claim}" claim, which this gateway requires.`);
    }
    switch (err.claim) {
      case 'nbf':
        return invalidToken('token_not_yet_valid', 'Token is not valid yet ("nbf" is in the future).');
      case 'aud':
        return invalidToken(
          'token_audience_invalid',
          `Token audience does not match; this gateway accepts ${issuer.audience.map((a) => `"${a}"`).join(', ')} for ${issuer.id}.`,
        );
      case 'iss':
        return invalidToken('token_issuer_untrusted', 'Token issuer does not match its signing issuer.');
      case 'iat':
        return invalidToken('token_issued_in_future', 'Token "iat" is in the future; check the clock of the identity provider.');
      case 'typ':
        return invalidToken('token_type_invalid', `Token type must be "${issuer.tokenType}"; this is not an access token for this gateway.`);
      default:
        return invalidToken('token_claim_invalid', `Token claim "${err.claim}" is missing or invalid (${err.reason}).`);
    }
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return invalidToken('token_algorithm_forbidden', 'Token algorithm is not allowed for this key.');
  if (err instanceof errors.JWKSNoMatchingKey) {
    return invalidToken('token_key_unknown', `Token is signed with a key ("kid") that ${issuer.id} does not publish.`);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return invalidToken('token_signature_invalid', 'Token signature is invalid.');
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid || err instanceof errors.JOSENotSupported) {
    return invalidToken('token_malformed', `The bearer token could not be verified: ${err.message}`);
  }
  // What remains is the JWKS fetch failing (timeout, HTTP error, bad JSON): fail closed.
  return identityProviderUnavailable(issuer.id, err);
}

/** The issuer's principal from verified claims; a claim the gateway cannot use (UnusableClaimError) refuses the token. */
function principalOf(issuer: TokenIssuer, payload: JWTPayload): Principal {
  try {
    return issuer.toPrincipal(payload);
  } catch (err) {
    if (err instanceof UnusableClaimError) throw invalidToken('token_claim_invalid', `${err.message} Ask your IdP administrator to correct it.`);
    throw err;
  }
}
