// Agent keys: `mga_<id>_<secret>`, made and checked like every long-lived
// secret key of the gateway (identity/secret-key.ts).
import { newSecretKey, parseSecretKey, type NewSecretKey } from '../identity/secret-key.js';

export { hashSecret, secretMatches } from '../identity/secret-key.js';

const PREFIX = 'mga';

export type NewAgentKey = NewSecretKey;

export function newAgentKey(): NewAgentKey {
  return newSecretKey(PREFIX);
}

export function parseAgentKey(key: string): { id: string; secret: string } | undefined {
  return parseSecretKey(PREFIX, key);
}
