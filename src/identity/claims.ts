// Reads identity attributes out of a verified claim set. Claim paths are
// dotted (`realm_access.roles`); a claim whose own name contains a dot
// (`https://example.com/groups`) is matched whole first.

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
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** Groups may be a single string or an array; anything else is ignored. */
export function readGroupsClaim(claims: Record<string, unknown>, path: string): string[] {
  const value = readClaim(claims, path);
  const list = typeof value === 'string' ? [value] : Array.isArray(value) ? value : [];
  return [...new Set(list.filter((g): g is string => typeof g === 'string' && g.length > 0))];
}
