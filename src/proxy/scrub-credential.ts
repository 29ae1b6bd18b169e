// A model server that echoes request headers in its error messages would
// hand the connection's credential to whoever made it fail. Error bodies are
// scrubbed of the credential before anything else (masking, relaying) sees
// them.
import type { ConnectionConfig } from '../config/schema.js';

const REDACTED = '[redacted]';

/** The text with every occurrence of the connection's credential (whole header value and its secret part) replaced. */
export function scrubCredential(text: string, connection: Pick<ConnectionConfig, 'credential'>): string {
  const value = connection.credential?.value;
  if (!value) return text;
  // "Bearer sk-…" → also "sk-…" alone; longest first so the whole value goes in one piece.
  const secrets = [value, value.replace(/^[A-Za-z][\w-]*\s+/, '')].filter((s, i, all) => s.length >= 4 && all.indexOf(s) === i);
  let scrubbed = text;
  for (const secret of secrets) {
    scrubbed = scrubbed.split(secret).join(REDACTED);
    // JSON escapes the characters \ and " and / may be written as \/ by some servers.
    const escaped = JSON.stringify(secret).slice(1, -1);
    if (escaped !== secret) scrubbed = scrubbed.split(escaped).join(REDACTED);
    const slashEscaped = escaped.replaceAll('/', '\\/');
    if (slashEscaped !== escaped) scrubbed = scrubbed.split(slashEscaped).join(REDACTED);
  }
  return scrubbed;
}
