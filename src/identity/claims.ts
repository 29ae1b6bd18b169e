// Reads identity attributes out of a verified claim set. Claim paths are
// dotted (`realm_access.roles`); a claim whose own name contains a dot
// (`https://example.com/groups`) is matched whole first.

/** Longest identity claim value accepted, in UTF-8 bytes: well within what a PostgreSQL index entry holds (2,704). */
export const MAX_CLAIM_BYTES = 1024;

/**
 * An identity claim the gateway cannot record: one holding a NUL character
 * (PostgreSQL refuses NUL in text) or longer than MAX_CLAIM_BYTES (more than
 * an index entry holds: subjects, emails and groups are indexed). One such
 * session would fail the whole group commit it shares with other callers'
 * sessions, so the token (or assertion) is refused instead, naming the claim.
 */
export class UnusableClaimError extends Error {
  constructor(
    readonly claim: string,
    readonly problem: string,
  ) {
    super(describeUnusable('claim', claim, problem));
  }
}

/** What is wrong with an unusable value, for a token's claim or a SAML assertion's attribute. */
export function describeUnusable(kind: 'claim' | 'attribute', name: string, problem: string): string {
  return `The "${name}" ${kind} ${problem}, which the gateway does not accept in an identity.`;
}

/** `value`, refused when the audit trail could not record it. */
export function usableClaim<T extends string | undefined>(claim: string, value: T): T {
  if (value === undefined) return value;
  if (value.includes('\0')) throw new UnusableClaimError(claim, 'contains a NUL character');
  if (Buffer.byteLength(value, 'utf8') > MAX_CLAIM_BYTES) throw new UnusableClaimError(claim, `is longer than ${MAX_CLAIM_BYTES} bytes`);
  return value;
}

export function readClaim(claims: Record<string, unknown>, path: string): unknown {
  if (path in claims) return claims[path];
  let value: unknown = claims;
  for (const segment of path.split('.')) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}

export function readStringClaim(claims: Record<string, unknown>, path: string): string | undefined {
  const value = readClaim(claims, path);
  return typeof value === 'string' && value.length > 0 ? usableClaim(path, value) : undefined;
}

/** Groups may be a single string or an array; anything else is ignored. */
export function readGroupsClaim(claims: Record<string, unknown>, path: string): string[] {
  const value = readClaim(claims, path);
  const list = typeof value === 'string' ? [value] : Array.isArray(value) ? value : [];
  return [...new Set(list.filter((g): g is string => typeof g === 'string' && g.length > 0).map((g) => usableClaim(path, g)))];
}
