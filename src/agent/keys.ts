// Agent keys: `mga_<id>_<secret>`. The id finds the stored record; only a
// SHA-256 of the secret is stored (the secret is 32 random bytes, so a fast
// hash is enough: there is nothing to brute-force), and it is compared in
// constant time. The full key is shown once, at creation or rotation.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const KEY_PATTERN = /^mga_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface NewAgentKey {
  id: string;
  /** The whole key, for the agent operator's eyes only. */
  key: string;
  hash: string;
}

export function newAgentKey(): NewAgentKey {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { id, key: `mga_${id}_${secret}`, hash: hashSecret(secret) };
}

export function parseAgentKey(key: string): { id: string; secret: string } | undefined {
  const match = KEY_PATTERN.exec(key.trim());
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
