// "The identical request": the same identity asking the same model the same
// thing. Keys are sorted so a client that serialises its JSON differently on
// retry still matches; nothing else is normalised, so any change to the
// prompt or its parameters needs a new approval.
import { createHash } from 'node:crypto';

export interface FingerprintInput {
  issuer: string;
  subject: string;
  connection: string;
  model: string;
  operation: string;
  body: unknown;
}

export function requestFingerprint(input: FingerprintInput): string {
  const canonical = canonicalJson([input.issuer, input.subject, input.connection, input.model, input.operation, input.body]);
  return createHash('sha256').update(canonical).digest('base64url');
}

/** JSON with object keys sorted at every level. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}
