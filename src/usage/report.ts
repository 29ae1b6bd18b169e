// Usage over a period, from the session store: requests, tokens and cost,
// grouped by any of subject, group, connection and model. The store's rows
// are read a page at a time, newest first, and summed here, so the same code
// serves SQLite and PostgreSQL, the CLI and the HTTP API.
import type { AuditStore, SessionQuery } from '../audit/store.js';
import type { SessionRow } from '../audit/projection.js';
import type { CostTable } from './costs.js';
import { LIMIT_REFUSAL_CODES } from './limiter.js';

export const REPORT_DIMENSIONS = ['subject', 'group', 'connection', 'model'] as const;
export type ReportDimension = (typeof REPORT_DIMENSIONS)[number];

export interface UsageQuery {
  since: number;
  until: number;
  by: ReportDimension[];
  subject?: string;
  issuer?: string;
  /** Any of these issuers (one person's IdP and gateway-issued identities). */
  issuers?: string[];
  group?: string;
  connection?: string;
  model?: string;
}

export interface UsageRow {
  subject?: string;
  group?: string;
  connection?: string;
  model?: string;
  requests: number;
  /** Of those, refused by a limit or budget (429, or 503 when the limit store was down): they used nothing. */
  limited: number;
  /** Of those, requests whose tokens were estimated from text: the model server reported none. */
  estimated_requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cost: number;
}

export interface UsageReport {
  since: string;
  until: string;
  by: ReportDimension[];
  currency: string;
  rows: UsageRow[];
  total: UsageRow;
}

const PAGE = 2000;

export async function usageReport(store: AuditStore, query: UsageQuery, costs: CostTable, currency: string): Promise<UsageReport> {
  const rows = new Map<string, UsageRow>();
  const total = emptyRow({});
  const base: Omit<SessionQuery, 'limit'> = {
    since: query.since,
    until: query.until,
    ...(query.subject && { subject: query.subject }),
    ...(query.issuer && { issuer: query.issuer }),
    ...(query.issuers && { issuers: query.issuers }),
    ...(query.group && { group: query.group }),
    ...(query.connection && { connection: query.connection }),
    ...(query.model && { model: query.model }),
  };
  let before: SessionQuery['before'];
  for (;;) {
    const page = await store.listSessions({ ...base, ...(before && { before }), limit: PAGE });
    for (const session of page) {
      // Sessions refused before routing carry no connection; they used nothing.
      const cost = costs.cost(session.model, session.prompt_tokens ?? 0, session.completion_tokens ?? 0, (session.latency_ms ?? 0) / 1000);
      add(total, session, cost);
      for (const key of keysOf(session, query)) {
        let row = rows.get(key.id);
        if (!row) rows.set(key.id, (row = emptyRow(key.labels)));
        add(row, session, cost);
      }
    }
    if (page.length < PAGE) break;
    const last = page.at(-1)!;
    before = { receivedAt: last.received_at, id: last.id };
  }
  const sorted = [...rows.values()].sort((a, b) => b.total_tokens - a.total_tokens || b.requests - a.requests);
  return { since: new Date(query.since).toISOString(), until: new Date(query.until).toISOString(), by: query.by, currency, rows: sorted.map(rounded), total: rounded(total) };
}

/** One key per combination of the grouping dimensions; a session of several groups counts once in each. */
function keysOf(session: SessionRow, query: UsageQuery): Array<{ id: string; labels: Partial<Record<ReportDimension, string>> }> {
  let keys: Array<Partial<Record<ReportDimension, string>>> = [{}];
  for (const dimension of query.by) {
    let values: string[];
    if (dimension === 'group') values = query.group ? [query.group] : session.groups.length > 0 ? session.groups : [''];
    else if (dimension === 'subject') values = [session.email ?? session.subject];
    else values = [session[dimension] ?? ''];
    keys = keys.flatMap((k) => values.map((v) => ({ ...k, [dimension]: v })));
  }
  return keys.map((labels) => ({ id: JSON.stringify(query.by.map((d) => labels[d])), labels }));
}

function emptyRow(labels: Partial<Record<ReportDimension, string>>): UsageRow {
  return { ...labels, requests: 0, limited: 0, estimated_requests: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, cost: 0 };
}

function add(row: UsageRow, session: SessionRow, cost: number): void {
  row.requests += 1;
  if (session.state === 'refused' && session.error_code !== null && LIMIT_REFUSAL_CODES.has(session.error_code)) row.limited += 1;
  if (session.estimated) row.estimated_requests += 1;
  row.prompt_tokens += session.prompt_tokens ?? 0;
  row.completion_tokens += session.completion_tokens ?? 0;
  row.total_tokens += session.total_tokens ?? 0;
  row.cost += cost;
}

function rounded(row: UsageRow): UsageRow {
  return { ...row, cost: Math.round(row.cost * 1e6) / 1e6 };
}

/** `subject,model` → ['subject', 'model'], or undefined when a name is not a dimension. */
export function parseDimensions(text: string): ReportDimension[] | undefined {
  const names = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (!names.every((n): n is ReportDimension => (REPORT_DIMENSIONS as readonly string[]).includes(n))) return undefined;
  return [...new Set(names)];
}
