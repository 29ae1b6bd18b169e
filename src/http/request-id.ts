import { randomBytes } from 'node:crypto';

/**
 * The gateway always mints its own request ID: a client-chosen one could
 * collide with, or impersonate, another request in the audit trail. A
 * well-formed client ID is kept alongside for correlation.
 *
 * Time-ordered: 12 hex digits of the epoch milliseconds, then 80 random
 * bits. The audit trail indexes sessions by this ID; random IDs put each
 * new session on a random page of that index, which every group commit then
 * writes out again (SQLite's WAL, PostgreSQL's full-page writes). Ordered
 * ones land on the last page or two.
 */
export function newRequestId(): string {
  return `req_${Date.now().toString(16).padStart(12, '0')}${randomBytes(10).toString('hex')}`;
}

export function clientRequestId(header: string | string[] | undefined): string | undefined {
  return typeof header === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(header) ? header : undefined;
}
