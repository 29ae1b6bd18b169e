// The multi-instance store: PostgreSQL through a `pg` pool. Every write that
// touches the trail locks the single chain-head row (SELECT ... FOR UPDATE)
// first, so commits from several gateway instances queue on it and the chain
// stays linear. A group-commit batch costs a fixed number of round trips:
// rows go in through `unnest` of arrays, whatever the batch size.
import { createHash } from 'node:crypto';
import pg from 'pg';
import { binaryArray, type ElementType } from './pg-binary.js';
import { contentHash, eventHash, serializeMeta } from './chain.js';
import type { StorageConfig } from './config.js';
import { NO_ORDINAL, TRAIL_SESSION_ID, type NewEvent, type StoredEvent } from './events.js';
import { LATEST_VERSION, MIGRATIONS } from './migrations/index.js';
import { BOOLEAN_COLUMNS, INTEGER_COLUMNS, projectEvent, type SessionColumn, type SessionRow as ProjectedRow, type SessionUpdate } from './projection.js';
import { foldAccents, INDEXED_KINDS, keptEntries, PendingIndex, readEntries, tsQuery } from './search.js';
import {
  attachContents,
  columnValue,
  eventColumns,
  expiredWhere,
  SESSION_TABLE_COLUMNS,
  sessionValues,
  sessionWhere,
  tableToSession,
  type ContentTableRow,
  type EventTableRow,
  type SessionTableRow,
} from './sql.js';
import {
  RejectedWriteError,
  SessionStateError,
  StorageUnavailableError,
  type AuditStore,
  type ChainHead,
  type ContentRewrite,
  type DeleteOutcome,
  type ExpiredQuery,
  type RecorderInstance,
  type SessionQuery,
  type SessionRow,
} from './store.js';

export type PostgresSettings = NonNullable<StorageConfig['postgres']>;

/** pg_advisory_lock key serialising migrations across instances ("mgau" in ASCII). */
const MIGRATION_LOCK = 0x6d676175;
/**
 * Transaction-level advisory lock ("mgsx") an indexing pass holds while it reads sessions' content and writes their
 * entries, and a redaction or deletion takes before it changes content or entries: erased text is never indexed
 * after its erasure. A lock in memory, not a row lock on each session (which PostgreSQL would write into every row).
 * Advisory locks are database-wide, so the schema's name is the second key: trails in other schemas of the same
 * database never hold up each other's passes.
 */
export const SEARCH_LOCK = 0x6d677378;
export const SEARCH_LOCK_ARGS = '$1, hashtext(current_schema())';


function columnType(column: string): ElementType {
  if (column === 'sid' || column === 'received_at' || column === 'ended_at') return 'bigint';
  if ((BOOLEAN_COLUMNS as readonly string[]).includes(column)) return 'smallint';
  if ((INTEGER_COLUMNS as readonly string[]).includes(column)) return 'integer';
  return 'text';
}

interface ChainCursor {
  seq: number;
  prev: string;
  /** Sessions started in this transaction, whose cached sids a rollback voids. */
  started: string[];
  /** Events appended in this transaction, handed to pendingIndex once it committed. */
  appended: Array<{ event: NewEvent; sid: number | null }>;
  /** Without a transaction holding the head: the head the batch's statement must still find (appendOnKnownHead). Always present, so every cursor has one map. */
  expect: { seq: number; hash: string } | undefined;
}

/** SQLSTATEs of a batch chained onto a head that moved meanwhile: the guard's division by zero, or a seq taken. */
const HEAD_MOVED = '22012';
const UNIQUE_VIOLATION = '23505';

/** From this many index matches on, a search walks the sessions by time instead of fetching every match (see listSessions). */
const MANY_MATCHES = 200;

/** How many open sessions' sids are remembered, to spare a lookup per event. */
const SID_CACHE_LIMIT = 100_000;

/**
 * The trail's sizes (events) between which the store refreshes the planner's statistics of `sessions` itself, each
 * time the trail doubled (analyzeAsItGrows). Beyond the last, autovacuum's analyze (every 10% of growth) keeps up.
 */
const ANALYZE_FROM = 1_024;
const ANALYZE_UNTIL = 1 << 22;

export class PostgresStore implements AuditStore {
  readonly driver = 'postgres' as const;
  transactions = 0;
  /** sid of sessions started through this pool and not yet ended. */
  private readonly sids = new Map<string, number>();
  /** The batch statement's name and text by shape (statementOf). */
  private readonly statements = new Map<string, { name: string; text: string }>();
  /** What the indexing pass will need of sessions committed here, so it need not read it back. */
  private readonly pendingIndex = new PendingIndex();
  /** The chain head as this store's last write left it; unset when unknown (another writer may have moved it since). */
  private head: { seq: number; hash: string } | undefined;
  /** The trail's size when this store last had `sessions` analyzed, and whether it is doing so now. */
  private analyzed = { seq: 0, running: false };

  private constructor(private readonly pool: pg.Pool) {}

  static async open(settings: PostgresSettings): Promise<PostgresStore> {
    const pool = new pg.Pool({
      connectionString: settings.url,
      max: settings.pool_size,
      connectionTimeoutMillis: settings.connect_timeout,
      statement_timeout: settings.statement_timeout,
      application_name: 'modelgate-audit',
      ...(settings.schema ? { options: `-c search_path=${settings.schema}` } : {}),
    });
    // An idle client losing its server is reported here; the next query gets a fresh one.
    pool.on('error', () => {});
    try {
      await migrate(pool, settings.schema);
      return new PostgresStore(pool);
    } catch (err) {
      await pool.end().catch(() => {});
      throw new StorageUnavailableError(`cannot prepare the PostgreSQL audit store: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Runs `work` in a transaction holding the chain head (appendLocked moves the head). */
  private async withChain<T>(work: (client: pg.PoolClient, cursor: ChainCursor) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // The server going away between two queries of the transaction is reported on the client: without a
    // listener that would be an uncaught error, and it would take the store (and its worker thread) down.
    let lost: Error | undefined;
    const onLost = (err: Error): void => void (lost ??= err);
    client.on('error', onLost);
    const started: string[] = [];
    const appended: ChainCursor['appended'] = [];
    try {
      // One round trip: BEGIN and the lock that serialises every writer of the chain.
      const results = (await client.query('BEGIN; SELECT seq, hash FROM chain_head WHERE id = 1 FOR UPDATE')) as unknown as Array<
        pg.QueryResult<{ seq: string; hash: string }>
      >;
      const head = results[1]!.rows[0]!;
      const cursor: ChainCursor = { seq: Number(head.seq), prev: head.hash, started, appended, expect: undefined };
      this.head = undefined;
      const result = await work(client, cursor);
      await client.query('COMMIT');
      this.transactions++;
      this.head = { seq: cursor.seq, hash: cursor.prev };
      this.pendingIndex.committed(appended);
      this.analyzeAsItGrows(cursor.seq);
      return result;
    } catch (err) {
      this.head = undefined;
      await client.query('ROLLBACK').catch(() => {});
      // The sids handed out in the rolled-back transaction do not exist.
      for (const id of started) this.sids.delete(id);
      lost ??= err as Error;
      throw err;
    } finally {
      client.off('error', onLost);
      // A client whose transaction failed may have lost its connection: the pool replaces it rather than reuse it.
      client.release(lost);
    }
  }

  async append(events: NewEvent[], options: { replay?: boolean } = {}): Promise<Array<number | null>> {
    try {
      return await this.appendChained(events, options);
    } catch (err) {
      // Class 22 (data exception: a NUL in text, an invalid value) and 54 (program limit: an index entry too large).
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && /^(22|54)/.test(code)) throw new RejectedWriteError(`PostgreSQL refused a value of the batch: ${(err as Error).message}`, { cause: err });
      throw err;
    }
  }

  private async appendChained(events: NewEvent[], options: { replay?: boolean }): Promise<Array<number | null>> {
    if (!options.replay && this.head && this.needsNoLookup(events)) {
      const seqs = await this.appendOnKnownHead(this.head, events);
      if (seqs) return seqs;
    }
    return this.withChain(async (client, cursor) => {
      if (!options.replay) return this.appendLocked(client, cursor, events);
      // A replayed batch may have committed before (the connection dropped after COMMIT, before its answer):
      // what is already stored stays as it is, once; the rest is appended.
      const stored = await this.storedSeqs(client, events);
      const fresh = events.filter((_, i) => stored[i] === undefined);
      const seqs = fresh.length > 0 ? await this.appendLocked(client, cursor, fresh) : [];
      let k = 0;
      return stored.map((seq) => (seq !== undefined ? seq : seqs[k++]!));
    });
  }

  /** Whether appendLocked would read nothing for these events: no precondition, and every session's sid known here. */
  private needsNoLookup(events: readonly NewEvent[]): boolean {
    const startedHere = new Set<string>();
    for (const e of events) {
      if (e.precondition) return false;
      if (e.sessionId === TRAIL_SESSION_ID) continue;
      if (e.kind === 'session.start') startedHere.add(e.sessionId);
      else if (!startedHere.has(e.sessionId) && !this.sids.has(e.sessionId)) return false;
    }
    return true;
  }

  /**
   * A group commit in one statement and one round trip (autocommit), chained
   * onto the head this store wrote last, instead of BEGIN and locking the
   * head, the batch, and COMMIT (three). The statement moves the head only
   * if it is still the one expected, and fails otherwise, as it does when
   * another writer took these seqs (events' primary key): nothing of it is
   * stored, and undefined sends the batch the locked way.
   */
  private async appendOnKnownHead(head: { seq: number; hash: string }, events: NewEvent[]): Promise<Array<number | null> | undefined> {
    const client = await this.pool.connect();
    let lost: Error | undefined;
    const onLost = (err: Error): void => void (lost ??= err);
    client.on('error', onLost);
    const cursor: ChainCursor = { seq: head.seq, prev: head.hash, started: [], appended: [], expect: head };
    this.head = undefined;
    try {
      const seqs = await this.appendLocked(client, cursor, events);
      this.transactions++;
      this.head = { seq: cursor.seq, hash: cursor.prev };
      this.pendingIndex.committed(cursor.appended);
      this.analyzeAsItGrows(cursor.seq);
      return seqs;
    } catch (err) {
      for (const id of cursor.started) this.sids.delete(id);
      const code = (err as { code?: string }).code;
      if (code === HEAD_MOVED || code === UNIQUE_VIOLATION) return undefined;
      lost ??= err as Error;
      throw err;
    } finally {
      client.off('error', onLost);
      client.release(lost);
    }
  }

  /**
   * Keeps the batch statement's plan fit for the trail's size while the trail is young. The statement is prepared,
   * and PostgreSQL keeps a prepared statement's generic plan until a table's statistics change. Planned while
   * `sessions` was small, the update of ended sessions joins it by a sequential scan (cheaper then), and goes on
   * scanning the whole table at every commit as it grows, until autovacuum's analyze replans it (a minute later at
   * the soonest). So each time the trail doubled, the store analyzes `sessions` itself, in the background; the
   * analyze invalidates every connection's plans of it. It needs to own the table (it made it); if it does not,
   * PostgreSQL only warns.
   */
  private analyzeAsItGrows(seq: number): void {
    if (seq < ANALYZE_FROM || seq > ANALYZE_UNTIL || seq < 2 * this.analyzed.seq || this.analyzed.running) return;
    this.analyzed = { seq, running: true };
    void this.pool
      .query('ANALYZE sessions')
      .catch(() => {})
      .finally(() => (this.analyzed.running = false));
  }

  /** The seq under which each event is already stored (a session's start: its sid), or undefined. */
  private async storedSeqs(client: pg.PoolClient, events: NewEvent[]): Promise<Array<number | undefined>> {
    const ids = [...new Set(events.filter((e) => e.sessionId !== TRAIL_SESSION_ID && e.n >= 0).map((e) => e.sessionId))];
    if (ids.length === 0) return events.map(() => undefined);
    const { rows: sessions } = await client.query<{ id: string; sid: string }>('SELECT id, sid FROM sessions WHERE id = ANY($1::text[])', [ids]);
    const sids = new Map(sessions.map((r) => [r.id, Number(r.sid)]));
    const { rows } = await client.query<{ sid: string; n: number; seq: string }>('SELECT sid, n, seq FROM events WHERE sid = ANY($1::bigint[]) AND n >= 0', [[...sids.values()]]);
    const seqs = new Map(rows.map((r) => [`${r.sid}:${r.n}`, Number(r.seq)]));
    return events.map((e) => {
      const sid = e.sessionId === TRAIL_SESSION_ID || e.n < 0 ? undefined : sids.get(e.sessionId);
      if (sid === undefined) return undefined;
      return e.kind === 'session.start' ? sid : seqs.get(`${sid}:${e.n}`);
    });
  }

  /** sid (and state, when looked up) of the sessions these events belong to: from the cache, else one query. */
  private async sessionsOf(client: pg.PoolClient, events: NewEvent[]): Promise<Map<string, { sid: number; state?: string }>> {
    const known = new Map<string, { sid: number; state?: string }>();
    const wanted = new Set<string>();
    // Sessions started in this batch get their sid from it (appendLocked): nothing to look up.
    const startedHere = new Set<string>();
    for (const e of events) {
      if (e.sessionId === TRAIL_SESSION_ID) continue;
      if (e.kind === 'session.start') {
        startedHere.add(e.sessionId);
        continue;
      }
      if (!e.precondition && startedHere.has(e.sessionId)) continue;
      const sid = e.precondition ? undefined : this.sids.get(e.sessionId);
      if (sid !== undefined) known.set(e.sessionId, { sid });
      else wanted.add(e.sessionId);
    }
    if (wanted.size > 0) {
      const locking = events.some((e) => e.precondition) ? ' FOR UPDATE' : '';
      const { rows } = await client.query<{ id: string; sid: string; state: string }>(`SELECT id, sid, state FROM sessions WHERE id = ANY($1::text[])${locking}`, [
        [...wanted],
      ]);
      for (const r of rows) known.set(r.id, { sid: Number(r.sid), state: r.state });
    }
    return known;
  }

  private async appendLocked(client: pg.PoolClient, cursor: ChainCursor, events: NewEvent[]): Promise<Array<number | null>> {
    const sessions = await this.sessionsOf(client, events);
    const seqs: Array<number | null> = [];
    // Built and encoded in one synchronous step, so only the encoded parameters live through the round trip; and each
    // step is a small function TurboFan optimises quickly (one async function doing it all took it 330-440 ms).
    const statement = this.batchStatement(cursor, sessions, events, seqs);
    if (statement) await client.query(statement);
    return seqs;
  }

  /** The batch's rows and the new head as one statement (undefined: nothing to write); fills `seqs` and moves `cursor`. */
  private batchStatement(cursor: ChainCursor, sessions: Map<string, { sid: number; state?: string }>, events: NewEvent[], seqs: Array<number | null>): pg.QueryConfig | undefined {
    const batch = new Batch();
    for (const event of events) {
      const session = sessions.get(event.sessionId);
      if ((event.precondition === 'open' && session?.state !== 'open') || (event.precondition === 'exists' && session === undefined)) {
        seqs.push(null);
        continue;
      }
      if (event.kind === 'session.end' && session) session.state = event.meta.state;
      const sid = event.kind === 'session.start' ? cursor.seq + 1 : (batch.inserts.get(event.sessionId)?.sid ?? session?.sid ?? null);
      batch.chain(cursor, event, sid);
      const projection = projectEvent(event.sessionId, event, event.atMs);
      if (projection && 'insert' in projection) {
        batch.inserts.set(event.sessionId, { ...projection.insert, sid: cursor.seq });
        cursor.started.push(event.sessionId);
        if (this.sids.size < SID_CACHE_LIMIT) this.sids.set(event.sessionId, cursor.seq);
      } else if (projection && sid !== null) {
        const inserted = batch.inserts.get(event.sessionId);
        if (inserted) Object.assign(inserted, projection.update);
        else batch.updates.set(sid, { ...batch.updates.get(sid), ...projection.update });
      }
      if (event.kind === 'session.end') this.sids.delete(event.sessionId);
      cursor.appended.push({ event, sid });
      seqs.push(cursor.seq);
    }
    return batch.seq.length > 0 ? this.encodeBatch(cursor, batch) : undefined;
  }

  /**
   * Every row of a batch, and the new chain head, in one statement of
   * data-modifying CTEs: one round trip and one plan per batch shape,
   * whatever the batch size. (Rows one CTE inserts are invisible to the
   * others, which is why updates to sessions started in the same batch were
   * folded into their inserts.) Each row set goes in as one binary array
   * parameter per column (pg-binary.ts); the statement's text and name are
   * made once per shape.
   */
  private encodeBatch(cursor: ChainCursor, batch: Batch): pg.QueryConfig {
    const segments: Segment[] = [{ table: 'events', columns: EVENT_COLUMNS, lists: batch.eventLists(), signature: undefined }];
    if (batch.partSid.length > 0) segments.push({ table: 'contents', columns: CONTENT_COLUMNS, lists: batch.contentLists(), signature: undefined });
    if (batch.inserts.size > 0) {
      const rows = [...batch.inserts.values()].map((row) => sessionValues(row, row.sid));
      segments.push({ table: 'sessions', columns: SESSION_INSERT_COLUMNS, lists: SESSION_INSERT_COLUMNS.map((_, i) => rows.map((row) => row[i] ?? null)), signature: undefined });
      // Each group once per session, so the insert needs no ON CONFLICT (a speculative insertion per row, and its WAL).
      const names: string[] = [];
      const sids: number[] = [];
      for (const row of batch.inserts.values()) {
        for (const group of new Set(row.groups)) {
          names.push(group);
          sids.push(row.sid);
        }
      }
      if (names.length > 0) segments.push({ table: 'session_groups', columns: GROUP_COLUMNS, lists: [names, sids], signature: undefined });
    }
    // One UPDATE per distinct set of columns (in practice: end, each flag, hold).
    const bySignature = new Map<string, Array<[number, SessionUpdate]>>();
    for (const entry of batch.updates) {
      const signature = Object.keys(entry[1]).sort().join(',');
      let list = bySignature.get(signature);
      if (!list) bySignature.set(signature, (list = []));
      list.push(entry);
    }
    for (const [signature, entries] of bySignature) {
      const columns = updateColumns(signature);
      const lists: unknown[][] = [entries.map(([sid]) => sid)];
      for (let i = 1; i < columns.length; i++) lists.push(entries.map(([, update]) => columnValue(update[columns[i]![0] as SessionColumn]) ?? null));
      segments.push({ table: 'update', columns, lists, signature });
    }
    const values: unknown[] = [];
    for (const segment of segments) segment.columns.forEach(([, type], i) => values.push(binaryArray(type, segment.lists[i]!)));
    values.push(cursor.seq, cursor.prev);
    if (cursor.expect) values.push(cursor.expect.seq, cursor.expect.hash);
    const shape = segments.map((s) => (s.table === 'update' ? `u:${s.signature}` : s.table)).join('|') + (cursor.expect ? '|expect' : '');
    return { ...this.statementOf(shape, segments, cursor.expect !== undefined), values };
  }

  /** The batch statement's name and text for a shape, made on first use (the shapes are few). */
  private statementOf(shape: string, segments: readonly Segment[], expect: boolean): { name: string; text: string } {
    let statement = this.statements.get(shape);
    if (statement) return statement;
    let count = 0;
    const placeholders = (columns: readonly Column[]): string => columns.map(([, type]) => `$${++count}::${type}[]`).join(', ');
    const ctes = segments.map((segment, i) => {
      const names = segment.columns.map(([name]) => name);
      if (segment.table !== 'update') return `${segment.table[0]}${i} AS (INSERT INTO ${segment.table} (${names.join(', ')}) SELECT * FROM unnest(${placeholders(segment.columns)}))`;
      const set = names.slice(1).map((c) => `${c} = v.${c}`);
      return `u${i} AS (UPDATE sessions s SET ${set.join(', ')} FROM unnest(${placeholders(segment.columns)}) AS v(${names.join(', ')}) WHERE s.sid = v.sid)`;
    });
    const head = `h AS (UPDATE chain_head SET seq = $${++count}::bigint, hash = $${++count}::text WHERE id = 1`;
    let result = 'SELECT 1';
    if (expect) {
      // Outside a transaction holding the head: move it only from the head expected, else fail the whole statement.
      ctes.push(`${head} AND seq = $${++count}::bigint AND hash = $${++count}::text RETURNING 1)`);
      result = 'SELECT 1 / (SELECT count(*)::integer FROM h)';
    } else {
      ctes.push(`${head})`);
    }
    statement = { name: `audit_batch_${createHash('sha256').update(shape).digest('hex').slice(0, 16)}`, text: `WITH ${ctes.join(',\n')} ${result}` };
    if (this.statements.size >= STATEMENT_CACHE_LIMIT) this.statements.clear();
    this.statements.set(shape, statement);
    return statement;
  }

  async registerInstance(i: RecorderInstance): Promise<void> {
    await this.pool.query('INSERT INTO recorder_instances (id, hostname, pid, started_at, heartbeat_at, closed_at) VALUES ($1, $2, $3, $4, $5, $6)', [
      i.id,
      i.hostname,
      i.pid,
      i.started_at,
      i.heartbeat_at,
      i.closed_at,
    ]);
  }

  async heartbeat(id: string, atMs: number): Promise<void> {
    await this.pool.query('UPDATE recorder_instances SET heartbeat_at = $1 WHERE id = $2', [atMs, id]);
  }

  async closeInstance(id: string, atMs: number): Promise<void> {
    await this.pool.query('UPDATE recorder_instances SET closed_at = $1 WHERE id = $2 AND closed_at IS NULL', [atMs, id]);
  }

  async unclosedInstances(): Promise<RecorderInstance[]> {
    const { rows } = await this.pool.query<Record<string, unknown>>('SELECT * FROM recorder_instances WHERE closed_at IS NULL ORDER BY started_at');
    return rows.map((r) => ({
      id: String(r.id),
      hostname: String(r.hostname),
      pid: Number(r.pid),
      started_at: Number(r.started_at),
      heartbeat_at: Number(r.heartbeat_at),
      closed_at: r.closed_at === null ? null : Number(r.closed_at),
    }));
  }

  async openSessions(instanceIds: string[]): Promise<string[]> {
    if (instanceIds.length === 0) return [];
    const { rows } = await this.pool.query<{ id: string }>("SELECT id FROM sessions WHERE state = 'open' AND instance_id = ANY($1::text[]) ORDER BY received_at", [
      instanceIds,
    ]);
    return rows.map((r) => r.id);
  }

  async chainHead(): Promise<ChainHead> {
    const { rows } = await this.pool.query<{ seq: string; hash: string }>('SELECT seq, hash FROM chain_head WHERE id = 1');
    return { seq: Number(rows[0]!.seq), hash: rows[0]!.hash };
  }

  async getSession(id: string): Promise<SessionRow | undefined> {
    const { rows } = await this.pool.query<SessionTableRow>('SELECT * FROM sessions WHERE id = $1', [id]);
    return rows[0] ? tableToSession(rows[0]) : undefined;
  }

  async listSessions(query: SessionQuery): Promise<SessionRow[]> {
    const params: unknown[] = [];
    const param = (v: unknown): string => `$${params.push(v)}`;
    // PostgreSQL cannot estimate how many sessions a word is in: ask (up to a bound). Few matches: fetch those
    // sessions by sid and sort them; many: walk sessions newest first and stop at a full page (a semi-join).
    let few = false;
    if (query.text) {
      const countParams: unknown[] = [];
      const tsq = tsQuery(query.text, (v) => `$${countParams.push(v)}`);
      const { rows } = await this.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM (SELECT 1 FROM session_search WHERE doc @@ (${tsq}) LIMIT ${MANY_MATCHES}) m`, countParams);
      few = rows[0]!.n < MANY_MATCHES;
    }
    // The "many" form is a scalar subquery per session on purpose: the planner cannot turn it into a join that reads
    // every match first (which it does for IN or EXISTS when a word's frequency is unknown: 2 s on 100,000 sessions),
    // and `doc || ''` keeps it from probing the GIN index once per session (two words: over 30 s) instead of the sid index.
    const where = sessionWhere(query, param, (terms) =>
      few
        ? `sid = ANY(ARRAY(SELECT sid FROM session_search WHERE doc @@ (${tsQuery(terms, param)})))`
        : `(SELECT 1 FROM session_search x WHERE x.sid = sessions.sid AND (x.doc || ''::tsvector) @@ (${tsQuery(terms, param)}) LIMIT 1) IS NOT NULL`,
    );
    const { rows } = await this.pool.query<SessionTableRow>(
      `SELECT * FROM sessions ${where} ORDER BY received_at DESC, id DESC LIMIT $${params.push(query.limit)}`,
      params,
    );
    return rows.map(tableToSession);
  }

  async scanSessions(afterId: string, limit: number): Promise<SessionRow[]> {
    const { rows } = await this.pool.query<SessionTableRow>('SELECT * FROM sessions WHERE id > $1 ORDER BY id LIMIT $2', [afterId, limit]);
    return rows.map(tableToSession);
  }

  async sessionEvents(sessionId: string, withContent: boolean): Promise<StoredEvent[]> {
    const events = await this.pool.query<EventTableRow>(
      `SELECT ${eventColumns(withContent)} FROM events WHERE sid = (SELECT sid FROM sessions WHERE id = $1) ORDER BY seq`,
      [sessionId],
    );
    const contents = withContent
      ? (await this.pool.query<ContentTableRow>('SELECT * FROM contents WHERE sid = (SELECT sid FROM sessions WHERE id = $1)', [sessionId])).rows
      : [];
    return attachContents(events.rows, contents);
  }

  async eventsOfSessions(sessionIds: string[]): Promise<StoredEvent[]> {
    const { rows } = await this.pool.query<EventTableRow>(
      `SELECT ${eventColumns(false)} FROM events WHERE sid IN (SELECT sid FROM sessions WHERE id = ANY($1::text[])) ORDER BY seq`,
      [sessionIds],
    );
    return attachContents(rows, []);
  }

  async readEvents(afterSeq: number, limit: number, options: { withContent?: boolean; kinds?: readonly string[]; sinceMs?: number } = {}): Promise<StoredEvent[]> {
    const params: unknown[] = [afterSeq];
    let where = 'seq > $1';
    if (options.kinds) where += ` AND kind = ANY($${params.push(options.kinds)}::text[])`;
    if (options.sinceMs !== undefined) where += ` AND at_ms >= $${params.push(options.sinceMs)}`;
    const { rows: events } = await this.pool.query<EventTableRow>(`SELECT ${eventColumns(options.withContent ?? false)} FROM events WHERE ${where} ORDER BY seq LIMIT $${params.push(limit)}`, params);
    if (!options.withContent || events.length === 0) return attachContents(events, []);
    const { rows: contents } = await this.pool.query<ContentTableRow>(
      'SELECT c.* FROM contents c JOIN events e ON e.sid = c.sid AND e.n = c.n WHERE e.seq > $1 AND e.seq <= $2',
      [afterSeq, Number(events[events.length - 1]!.seq)],
    );
    return attachContents(events, contents);
  }

  async sessionIdsOfSubject(subject: string, issuer?: string): Promise<string[]> {
    const { rows } =
      issuer === undefined
        ? await this.pool.query<{ id: string }>('SELECT id FROM sessions WHERE subject = $1 ORDER BY received_at', [subject])
        : await this.pool.query<{ id: string }>('SELECT id FROM sessions WHERE subject = $1 AND issuer = $2 ORDER BY received_at', [subject, issuer]);
    return rows.map((r) => r.id);
  }

  async expiredSessions(query: ExpiredQuery): Promise<string[]> {
    const params: unknown[] = [];
    const where = expiredWhere(
      query,
      (v) => `$${params.push(v)}`,
      (values) => `(SELECT unnest($${params.push(values)}::text[]))`,
    );
    const { rows } = await this.pool.query<{ id: string }>(`SELECT id FROM sessions ${where} ORDER BY received_at LIMIT $${params.push(query.limit)}`, params);
    return rows.map((r) => r.id);
  }

  async rewriteContents(sessionId: string, rewrites: ContentRewrite[], evidence: NewEvent & { kind: 'redaction' }): Promise<{ seq: number }> {
    return this.withChain(async (client, cursor) => {
      await client.query(`SELECT pg_advisory_xact_lock(${SEARCH_LOCK_ARGS})`, [SEARCH_LOCK]);
      const { rows } = await client.query<{ sid: string; state: string; legal_hold: number }>('SELECT sid, state, legal_hold FROM sessions WHERE id = $1', [sessionId]);
      const state = rows[0];
      if (!state) throw new SessionStateError(sessionId, 'not_found');
      if (state.legal_hold) throw new SessionStateError(sessionId, 'legal_hold');
      if (state.state === 'open') throw new SessionStateError(sessionId, 'open');
      const sid = Number(state.sid);
      this.pendingIndex.forget(sid);
      const seqs = await client.query<{ n: number; seq: string; kind: string }>(
        'SELECT DISTINCT ON (n) n, seq, kind FROM events WHERE sid = $1 AND n >= 0 ORDER BY n, seq',
        [sid],
      );
      const eventByOrdinal = new Map(seqs.rows.map((r) => [r.n, { seq: Number(r.seq), kind: r.kind }]));
      const targets: Array<[number, string]> = [];
      for (const rewrite of rewrites) {
        const event = eventByOrdinal.get(rewrite.n);
        if (event === undefined || rewrite.n === NO_ORDINAL) continue;
        const { seq } = event;
        const first = rewrite.parts.find((p) => p.part === 0)!;
        const rest = rewrite.parts.filter((p) => p.part > 0);
        await client.query('DELETE FROM contents WHERE sid = $1 AND n = $2', [sid, rewrite.n]);
        await client.query('UPDATE events SET key_id = $1, nonce = $2, content = $3 WHERE sid = $4 AND n = $5', [first.keyId, first.nonce, first.data, sid, rewrite.n]);
        await client.query('INSERT INTO contents (sid, n, part, key_id, nonce, data) SELECT $1, $2, * FROM unnest($3::integer[], $4::text[], $5::bytea[], $6::bytea[])', [
          sid,
          rewrite.n,
          rest.map((p) => p.part),
          rest.map((p) => p.keyId),
          rest.map((p) => p.nonce),
          rest.map((p) => p.data),
        ]);
        targets.push([seq, contentHash(rewrite.parts)!]);
      }
      // The index follows the content: the old entry goes, and what is left of the text comes back (if the session
      // was indexed already; otherwise the next indexing pass reads the rewritten content).
      if ((await client.query('DELETE FROM session_search WHERE sid = $1', [sid])).rowCount) await this.indexSessions(client, [sid]);
      const [seq] = await this.appendLocked(client, cursor, [{ ...evidence, meta: { ...evidence.meta, targets } }]);
      return { seq: seq! };
    });
  }

  async deleteSessions(ids: string[], evidence: NewEvent & { kind: 'retention.delete' | 'session.delete' }): Promise<DeleteOutcome> {
    return this.withChain(async (client, cursor) => {
      await client.query(`SELECT pg_advisory_xact_lock(${SEARCH_LOCK_ARGS})`, [SEARCH_LOCK]);
      const { rows } = await client.query<{ sid: string; id: string; state: string; legal_hold: number }>(
        'SELECT sid, id, state, legal_hold FROM sessions WHERE id = ANY($1::text[]) ORDER BY sid FOR UPDATE',
        [ids],
      );
      const held = rows.filter((r) => r.legal_hold).map((r) => r.id);
      const open = rows.filter((r) => !r.legal_hold && r.state === 'open').map((r) => r.id);
      const doomed = rows.filter((r) => !r.legal_hold && r.state !== 'open');
      const deleted = doomed.map((r) => r.id);
      if (doomed.length === 0) return { deleted, held, open };
      const sids = doomed.map((r) => Number(r.sid));
      for (const sid of sids) this.pendingIndex.forget(sid);
      const vouched = await client.query<{ seq: string; hash: string }>('SELECT seq, hash FROM events WHERE sid = ANY($1::bigint[]) ORDER BY seq', [sids]);
      for (const table of ['session_search', 'contents', 'events', 'session_groups', 'sessions']) {
        await client.query(`DELETE FROM ${table} WHERE sid = ANY($1::bigint[])`, [sids]);
      }
      const vouches = vouched.rows.map((r): [number, string] => [Number(r.seq), r.hash]);
      await this.appendLocked(client, cursor, [{ ...evidence, meta: { ...evidence.meta, sessions: deleted, deleted: vouches } }]);
      return { deleted, held, open };
    });
  }

  /**
   * Indexes, in one transaction, the sessions of up to `limit` session ends
   * recorded after the search head, and moves the head past them. Returns
   * how many ends it went through (0: nothing was waiting, or a session was
   * being rewritten: the next pass takes it).
   */
  async indexEnded(limit: number): Promise<number> {
    const client = await this.pool.connect();
    let lost: Error | undefined;
    const onLost = (err: Error): void => void (lost ??= err);
    client.on('error', onLost);
    try {
      // Instances index in turn (the head row's lock); recording never waits for indexing: it holds no lock of theirs.
      const results = (await client.query('BEGIN; SELECT seq FROM search_head WHERE id = 1 FOR UPDATE')) as unknown as Array<pg.QueryResult<{ seq: string }>>;
      const head = Number(results[1]!.rows[0]!.seq);
      const { rows: ends } = await client.query<{ seq: string; sid: string }>(
        "SELECT seq, sid FROM events WHERE seq > $1 AND kind = 'session.end' AND sid IS NOT NULL ORDER BY seq LIMIT $2",
        [head, limit],
      );
      if (ends.length === 0) {
        await client.query('ROLLBACK');
        return 0;
      }
      const sids = ends.map((e) => Number(e.sid));
      // A redaction or deletion in progress holds the search lock: rather than wait (holding the head), try again later.
      const { rows: locked } = await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_xact_lock(${SEARCH_LOCK_ARGS}) AS ok`, [SEARCH_LOCK]);
      if (!locked[0]!.ok) {
        await client.query('ROLLBACK');
        return 0;
      }
      await this.indexSessions(client, sids);
      await client.query('UPDATE search_head SET seq = $1 WHERE id = 1', [Number(ends[ends.length - 1]!.seq)]);
      await client.query('COMMIT');
      return ends.length;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      lost ??= err as Error;
      throw err;
    } finally {
      client.off('error', onLost);
      client.release(lost);
    }
  }

  /** Writes the index entry of each session from its content: kept from its commits, or else as stored (inside a transaction). */
  private async indexSessions(client: pg.PoolClient, all: number[]): Promise<void> {
    const { entries, unread } = keptEntries(this.pendingIndex, all);
    if (unread.length > 0) {
      const { rows } = await client.query<EventTableRow>(
        `SELECT ${eventColumns(true)} FROM events WHERE sid = ANY($1::bigint[]) AND kind = ANY($2::text[]) ORDER BY sid, n`,
        [unread, INDEXED_KINDS],
      );
      const contents = rows.length === 0 ? [] : (await client.query<ContentTableRow>('SELECT * FROM contents WHERE sid = ANY($1::bigint[])', [unread])).rows;
      readEntries(attachContents(rows, contents), (i) => Number(rows[i]!.sid), entries);
    }
    if (entries.length === 0) return;
    await client.query(
      `INSERT INTO session_search (sid, doc) SELECT v.sid, to_tsvector('simple', v.text) FROM unnest($1::bigint[], $2::text[]) AS v(sid, text)
       ON CONFLICT (sid) DO UPDATE SET doc = EXCLUDED.doc`,
      [binaryArray('bigint', entries.map((e) => e.sid)), binaryArray('text', entries.map((e) => foldAccents(e.text)))],
    );
  }

  /** PostgreSQL keeps dead row versions until VACUUM reuses their space; see src/audit/README.md. */
  async purge(): Promise<void> {}

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** Brings the schema up to date; returns the versions it applied. */
async function migrate(pool: pg.Pool, schema: string | undefined): Promise<number[]> {
  const done: number[] = [];
  const client = await pool.connect();
  try {
    // Several instances may start at once: one migrates, the others wait and then find nothing to do.
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      if (schema) await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await client.query('CREATE TABLE IF NOT EXISTS audit_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)');
      const { rows } = await client.query<{ version: number }>('SELECT version FROM audit_migrations');
      const applied = new Set(rows.map((r) => r.version));
      const newest = Math.max(0, ...applied);
      if (newest > LATEST_VERSION) {
        throw new Error(`the audit schema is at version ${newest}, newer than this modelgate understands (${LATEST_VERSION}); upgrade modelgate`);
      }
      for (const migration of MIGRATIONS) {
        if (applied.has(migration.version)) continue;
        await client.query('BEGIN');
        try {
          await client.query(migration.postgres);
          await client.query('INSERT INTO audit_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [migration.version, migration.name, Date.now()]);
          await client.query('COMMIT');
          done.push(migration.version);
        } catch (err) {
          await client.query('ROLLBACK').catch(() => {});
          throw err;
        }
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {});
    }
  } finally {
    client.release();
  }
  return done;
}

/**
 * A group commit's rows, one list per column, as `encodeBatch` sends them. A class rather than a literal: one map
 * for every batch, so the code building it stays optimised (TurboFan spent a third of a second of V8's helper
 * threads on each version of it, and a changed map discarded one).
 */
class Batch {
  readonly seq: number[] = [];
  readonly sid: Array<number | null> = [];
  readonly session: string[] = [];
  readonly n: number[] = [];
  readonly kind: string[] = [];
  readonly at: number[] = [];
  readonly meta: string[] = [];
  readonly content: Array<string | null> = [];
  readonly prev: string[] = [];
  readonly hash: string[] = [];
  readonly key: Array<string | null> = [];
  readonly nonce: Array<Uint8Array | null> = [];
  readonly data: Array<Uint8Array | null> = [];
  /** Content parts after the first. */
  readonly partSid: number[] = [];
  readonly partN: number[] = [];
  readonly part: number[] = [];
  readonly partKey: Array<string | null> = [];
  readonly partNonce: Array<Uint8Array | null> = [];
  readonly partData: Uint8Array[] = [];
  readonly inserts = new Map<string, ProjectedRow & { sid: number }>();
  readonly updates = new Map<number, SessionUpdate>();

  /** Appends the event to the chain at `cursor` (moving it) and its rows to the batch. */
  chain(cursor: ChainCursor, event: NewEvent, sid: number | null): void {
    const parts = event.parts ?? [];
    const metaText = serializeMeta(event.meta);
    const content = contentHash(parts);
    const seq = ++cursor.seq;
    const hash = eventHash(cursor.prev, { seq, sessionId: event.sessionId, n: event.n, kind: event.kind, atMs: event.atMs, metaText, contentHash: content });
    const first = parts.find((p) => p.part === 0);
    this.seq.push(seq);
    this.sid.push(sid);
    this.session.push(event.sessionId);
    this.n.push(event.n);
    this.kind.push(event.kind);
    this.at.push(event.atMs);
    this.meta.push(metaText);
    this.content.push(content);
    this.prev.push(cursor.prev);
    this.hash.push(hash);
    this.key.push(first?.keyId ?? null);
    this.nonce.push(first?.nonce ?? null);
    this.data.push(first?.data ?? null);
    cursor.prev = hash;
    if (sid === null) return;
    for (const p of parts) {
      if (p.part === 0) continue;
      this.partSid.push(sid);
      this.partN.push(event.n);
      this.part.push(p.part);
      this.partKey.push(p.keyId);
      this.partNonce.push(p.nonce);
      this.partData.push(p.data);
    }
  }

  /** The event rows in EVENT_COLUMNS order. */
  eventLists(): unknown[][] {
    return [this.seq, this.sid, this.session, this.n, this.kind, this.at, this.meta, this.content, this.prev, this.hash, this.key, this.nonce, this.data];
  }

  /** The later content parts in CONTENT_COLUMNS order. */
  contentLists(): unknown[][] {
    return [this.partSid, this.partN, this.part, this.partKey, this.partNonce, this.partData];
  }
}

/** A column of a batch's table and its element type. */
type Column = readonly [name: string, type: ElementType];

/** Rows for one table (one list per column), or updates of one set of `sessions` columns (the first list: sids). */
type Segment = { table: string; columns: readonly Column[]; lists: unknown[][]; signature: string | undefined };

const EVENT_COLUMNS: readonly Column[] = [
  ['seq', 'bigint'],
  ['sid', 'bigint'],
  ['session_id', 'text'],
  ['n', 'integer'],
  ['kind', 'text'],
  ['at_ms', 'bigint'],
  ['meta', 'text'],
  ['content_hash', 'text'],
  ['prev_hash', 'text'],
  ['hash', 'text'],
  ['key_id', 'text'],
  ['nonce', 'bytea'],
  ['content', 'bytea'],
];
const CONTENT_COLUMNS: readonly Column[] = [
  ['sid', 'bigint'],
  ['n', 'integer'],
  ['part', 'integer'],
  ['key_id', 'text'],
  ['nonce', 'bytea'],
  ['data', 'bytea'],
];
const SESSION_INSERT_COLUMNS: readonly Column[] = SESSION_TABLE_COLUMNS.map((c) => [c, columnType(c)]);
const GROUP_COLUMNS: readonly Column[] = [
  ['group_name', 'text'],
  ['sid', 'bigint'],
];

/** The columns of an update of `sessions` (sid first) for a signature (the updated columns, sorted, comma-separated). */
const updateColumns = (signature: string): Column[] => [['sid', 'bigint'], ...signature.split(',').map((c): Column => [c, columnType(c)])];

/** Statements (name and text) kept per batch shape; a commit's shape is one of a few. */
const STATEMENT_CACHE_LIMIT = 256;
