// GET /v1/usage: requests, tokens and cost over a period, grouped by
// subject, group, connection and/or model, from the session store. Auditors
// (recording.auditor_groups) see everyone's usage; anyone else only their
// own, under their IdP's identity and their browser sign-in's alike. The web console charts this; scripts can too.
//
//   GET /v1/usage?since=30d&until=<time>&by=group,model&group=&connection=&model=&subject=
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isAuditor, ownIssuers } from '../audit/api.js';
import { parseTimeBound, type SessionArchive } from '../audit/sessions.js';
import type { Config } from '../config/schema.js';
import { badRequest, GatewayError } from '../http/errors.js';
import { sendJson } from '../http/send.js';
import type { Principal } from '../identity/principal.js';
import type { CostTable } from './costs.js';
import { parseDimensions, usageReport, type UsageQuery } from './report.js';

export const USAGE_API_PATH = '/v1/usage';

export function isUsageApiPath(path: string): boolean {
  return path === USAGE_API_PATH;
}

export interface UsageApiContext {
  archive: SessionArchive;
  principal: Principal;
  config: Config;
  costs: CostTable;
}

export async function handleUsageApi(req: IncomingMessage, res: ServerResponse, ctx: UsageApiContext): Promise<void> {
  if (req.method !== 'GET') {
    throw new GatewayError('Use GET for /v1/usage.', { status: 405, type: 'invalid_request_error', code: 'method_not_allowed', headers: { allow: 'GET' } });
  }
  const params = new URL(req.url ?? '/', 'http://gateway').searchParams;
  const query = usageQueryFrom(params, Date.now());
  if (!isAuditor(ctx.principal, ctx.config.recording.auditor_groups)) {
    if (query.subject !== undefined && query.subject !== ctx.principal.subject) {
      throw new GatewayError('Only auditors may read the usage of others; leave out `subject` to read your own.', {
        status: 403,
        type: 'permission_error',
        code: 'usage_of_others',
      });
    }
    // The same rule as the sessions API: their IdP's identity and their browser sign-in's are one person.
    Object.assign(query, { subject: ctx.principal.subject, issuers: ownIssuers(ctx.principal) });
  }
  sendJson(res, 200, await usageReport(ctx.archive.store, query, ctx.costs, ctx.config.usage.currency));
}

/** Query parameters (also the CLI's options) to a usage query; throws 400 naming the bad one. */
export function usageQueryFrom(params: URLSearchParams, now: number): UsageQuery {
  const time = (name: string, fallback: number): number => {
    const value = params.get(name);
    if (value === null || value === '') return fallback;
    const parsed = parseTimeBound(value, now);
    if (parsed === undefined) throw badRequest('invalid_time', `"${name}" must be ISO 8601 (2025-01-31T12:00Z), epoch ms, or a duration ago (24h, 30d).`, name);
    return parsed;
  };
  const by = parseDimensions(params.get('by') ?? 'subject');
  if (!by) throw badRequest('invalid_dimension', '"by" takes a comma-separated list of subject, group, connection and model.', 'by');
  const query: UsageQuery = { since: time('since', now - 30 * 24 * 3600_000), until: time('until', now + 1), by };
  for (const key of ['subject', 'group', 'connection', 'model'] as const) {
    const value = params.get(key);
    if (value) query[key] = value;
  }
  return query;
}
