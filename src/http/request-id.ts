import { randomUUID } from 'node:crypto';

/**
 * The gateway always mints its own request ID: a client-chosen one could
 * collide with, or impersonate, another request in the audit trail. A
 * well-formed client ID is kept alongside for correlation.
 */
export function newRequestId(): string {
  return `req_${randomUUID().replaceAll('-', '')}`;
}

export function clientRequestId(header: string | string[] | undefined): string | undefined {
  return typeof header === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(header) ? header : undefined;
}
