// Reads identity attributes out of a verified claim set. Claim paths are
// dotted (`realm_access.roles`); a claim whose own name contains a dot
// (`https://example.com/groups`) is matched whole first.

/**
 * A claim holding a NUL character (U+0000). Identities are recorded in text
 * columns, which PostgreSQL refuses NUL in: one such session would fail the
 * whole group commit it shares with other callers' sessions. The token (or
 * assertion) is refused instead, naming the claim.
 */
export class UnusableClaimError extends Error {
  constructor(readonly claim: string) {
    super(`The "${claim}" claim contains a NUL character, which the gateway does not accept in an identity.`);
  }
}

/** `value`, refused when it holds a NUL character. */
export function usableClaim<T extends string | undefined>(claim: string, value: T): T {
  if (value?.includes('\0')) throw new UnusableClaimError(claim);
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
