// SQL the two drivers share: query building with a driver's placeholder
// style, and the mapping between projection rows and table rows.
import type { ContentPart, EventKind, StoredEvent } from './events.js';
import { BOOLEAN_COLUMNS, SESSION_COLUMNS, type SessionRow } from './projection.js';
import type { SearchTerm } from './search.js';
import type { ExpiredQuery, SessionQuery } from './store.js';

/**
 * Builds a WHERE clause; `param` returns the placeholder for the next value,
 * `search` the driver's condition on `sid` for full-text terms.
 */
export function sessionWhere(query: SessionQuery, param: (value: unknown) => string, search?: (terms: SearchTerm[]) => string): string {
  const clauses: string[] = [];
  if (query.issuer !== undefined) clauses.push(`issuer = ${param(query.issuer)}`);
  if (query.issuers !== undefined) clauses.push(query.issuers.length === 0 ? '1 = 0' : `(${query.issuers.map((i) => `issuer = ${param(i)}`).join(' OR ')})`);
  if (query.subject !== undefined) clauses.push(`subject = ${param(query.subject)}`);
  if (query.user !== undefined) clauses.push(`(subject = ${param(query.user)} OR email = ${param(query.user)})`);
  if (query.group !== undefined) clauses.push(`sid IN (SELECT sid FROM session_groups WHERE group_name = ${param(query.group)})`);
  if (query.connection !== undefined) clauses.push(`connection = ${param(query.connection)}`);
  if (query.model !== undefined) clauses.push(`model = ${param(query.model)}`);
  if (query.since !== undefined) clauses.push(`received_at >= ${param(query.since)}`);
  if (query.until !== undefined) clauses.push(`received_at < ${param(query.until)}`);
  if (query.decision !== undefined) clauses.push(`${query.decision} = 1`);
  if (query.state !== undefined) clauses.push(`state = ${param(query.state)}`);
  if (query.text !== undefined) {
    if (!search) throw new Error('this store has no full-text search');
    clauses.push(search(query.text));
  }
  if (query.before !== undefined) {
    const at = query.before.receivedAt;
    clauses.push(`(received_at < ${param(at)} OR (received_at = ${param(at)} AND id < ${param(query.before.id)}))`);
  }
  return clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : '';
}

export function expiredWhere(query: ExpiredQuery, param: (value: unknown) => string, inList: (values: string[]) => string): string {
  const clauses: string[] = [];
  for (const cutoff of query.cutoffs) {
    if (cutoff.connection === null) {
      const scope = query.ownPeriod.length > 0 ? `(connection IS NULL OR connection NOT IN ${inList(query.ownPeriod)}) AND ` : '';
      clauses.push(`(${scope}received_at < ${param(cutoff.beforeMs)})`);
    } else {
      clauses.push(`(connection = ${param(cutoff.connection)} AND received_at < ${param(cutoff.beforeMs)})`);
    }
  }
  if (clauses.length === 0) return 'WHERE 1 = 0';
  return `WHERE (${clauses.join(' OR ')}) AND legal_hold = 0 AND state <> 'open'`;
}

export interface SessionTableRow {
  sid: number | string;
  id: string;
  groups_json: string;
  [column: string]: unknown;
}

/** The `sessions` table's columns, in the order `sessionValues` gives them. */
export const SESSION_TABLE_COLUMNS = ['sid', 'id', 'groups_json', ...SESSION_COLUMNS] as const;

/**
 * A new session's row as values in SESSION_TABLE_COLUMNS order: built
 * straight from the projection, with no intermediate object per session
 * (it runs for every request recorded).
 */
export function sessionValues(row: SessionRow, sid: number): unknown[] {
  const values: unknown[] = [sid, row.id, JSON.stringify(row.groups)];
  for (const column of SESSION_COLUMNS) {
    const value = row[column];
    values.push(typeof value === 'boolean' ? (value ? 1 : 0) : value);
  }
  return values;
}

/** A projection value as stored: booleans are 0/1 on both drivers. */
export function columnValue(value: unknown): unknown {
  return typeof value === 'boolean' ? (value ? 1 : 0) : value;
}

const booleans = new Set<string>(BOOLEAN_COLUMNS);

export function tableToSession(row: SessionTableRow): SessionRow {
  const out: Record<string, unknown> = { id: row.id, groups: JSON.parse(row.groups_json) as string[] };
  for (const [key, value] of Object.entries(row)) {
    if (key === 'id' || key === 'groups_json' || key === 'sid') continue;
    if (booleans.has(key)) out[key] = Number(value) === 1;
    else if (typeof value === 'string' && /^(received_at|ended_at)$/.test(key)) out[key] = Number(value);
    else out[key] = value;
  }
  return out as unknown as SessionRow;
}

export interface EventTableRow {
  seq: number | string;
  sid: number | string | null;
  session_id: string;
  n: number;
  kind: string;
  at_ms: number | string;
  meta: string;
  content_hash: string | null;
  prev_hash: string;
  hash: string;
  /** Inline first content part; selected only with content. */
  key_id?: string | null;
  nonce?: Uint8Array | null;
  content?: Uint8Array | null;
}

const EVENT_COLUMNS = 'seq, sid, session_id, n, kind, at_ms, meta, content_hash, prev_hash, hash';

/** The event columns to select, with or without the inline content (`prefix` qualifies them, e.g. `e.`). */
export function eventColumns(withContent: boolean, prefix = ''): string {
  const columns = withContent ? `${EVENT_COLUMNS}, key_id, nonce, content` : EVENT_COLUMNS;
  return prefix ? columns.split(', ').map((c) => prefix + c).join(', ') : columns;
}

export interface ContentTableRow {
  sid: number | string;
  n: number;
  part: number;
  key_id: string | null;
  nonce: Uint8Array | null;
  data: Uint8Array;
}

export function tableToEvent(row: EventTableRow, parts: ContentPart[] = []): StoredEvent {
  return {
    seq: Number(row.seq),
    sessionId: row.session_id,
    n: row.n,
    kind: row.kind as EventKind,
    atMs: Number(row.at_ms),
    metaText: row.meta,
    contentHash: row.content_hash,
    prevHash: row.prev_hash,
    hash: row.hash,
    parts,
  };
}

/** Attaches content parts to their events: the inline first part, and later parts by (sid, ordinal). */
export function attachContents(events: EventTableRow[], contents: ContentTableRow[]): StoredEvent[] {
  const byKey = new Map<string, ContentPart[]>();
  for (const c of contents) {
    const key = `${c.sid}:${c.n}`;
    let list = byKey.get(key);
    if (!list) byKey.set(key, (list = []));
    list.push({ part: c.part, keyId: c.key_id, nonce: c.nonce, data: c.data });
  }
  return events.map((e) => {
    const parts = e.n >= 0 && e.sid !== null ? (byKey.get(`${e.sid}:${e.n}`) ?? []) : [];
    if (e.content !== undefined && e.content !== null) parts.push({ part: 0, keyId: e.key_id ?? null, nonce: e.nonce ?? null, data: e.content });
    parts.sort((a, b) => a.part - b.part);
    return tableToEvent(e, parts);
  });
}
