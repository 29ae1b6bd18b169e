// Long-lived secret keys (agent keys `mga_…`, service keys `mgk_…`):
// `<prefix>_<id>_<secret>`. The prefix lets secret scanners recognise a
// leaked key; the id finds the stored record; only a SHA-256 of the secret
// is stored. The secret is 32 random bytes, so a fast hash is enough (there
// is nothing to brute-force), and it is compared in constant time. The full
// key is shown once, when it is made.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export interface NewSecretKey {
  id: string;
  /** The whole key, for its holder's eyes only. */
  key: string;
  hash: string;
}

export function newSecretKey(prefix: string): NewSecretKey {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { id, key: `${prefix}_${id}_${secret}`, hash: hashSecret(secret) };
}

export function parseSecretKey(prefix: string, key: string): { id: string; secret: string } | undefined {
  const trimmed = key.trim();
  if (!trimmed.startsWith(`${prefix}_`)) return undefined;
  const match = /^([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/.exec(trimmed.slice(prefix.length + 1));
  return match ? { id: match[1]!, secret: match[2]! } : undefined;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function secretMatches(secret: string, storedHash: string): boolean {
  const actual = Buffer.from(hashSecret(secret), 'hex');
  const expected = Buffer.from(storedHash, 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
