// The embedded store: SQLite through better-sqlite3, in WAL mode so readers
// (the CLI, the sessions API) never block the recorder. Writes take the
// database's write lock (BEGIN IMMEDIATE) before reading the chain head, so
// even two processes sharing the file keep one linear chain.
//
// better-sqlite3 is synchronous: in the gateway this class runs inside a
// worker thread (worker-store.ts), so an fsync never stalls the event loop.
// The CLI and tests use it directly.
import Database from 'better-sqlite3';
import { contentHash, eventHash, serializeMeta } from './chain.js';
import type { StorageConfig } from './config.js';
import { NO_ORDINAL, TRAIL_SESSION_ID, type ContentPart, type NewEvent, type StoredEvent } from './events.js';
import { LATEST_VERSION, MIGRATIONS } from './migrations/index.js';
import { projectEvent, type SessionUpdate } from './projection.js';
import { fts5Match, INDEXED_KINDS, keptEntries, PendingIndex, readEntries } from './search.js';
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
import { preparePrivateFile } from '../ops/private-files.js';
import {
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

export type SqliteSettings = StorageConfig['sqlite'];

const asBuffer = (bytes: Uint8Array | null): Buffer | null =>
  bytes === null ? null : Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

const EVENT_COLUMNS = 13;
/** Rows per multi-row event INSERT: 13 parameters each, well under SQLite's limit of 32,766. */
const EVENT_ROWS_PER_STATEMENT = 64;

/** From this many index matches on, a search walks the sessions by time instead of fetching every match: measured on 100,000 sessions, fetching costs ~0.1 ms a match, the walk up to ~20 ms. */
const MANY_MATCHES = 200;

/** How many open sessions' sids are remembered, to spare a lookup per event. */
const SID_CACHE_LIMIT = 100_000;

export class SqliteStore implements AuditStore {
  readonly driver = 'sqlite' as const;
  transactions = 0;
  private readonly updates = new Map<string, Database.Statement>();
  /** Multi-row event INSERTs, by row count (1 to EVENT_ROWS_PER_STATEMENT). */
  private readonly eventInserts = new Map<number, Database.Statement>();
  private readonly statements;
  private readonly appendTransaction;
  /** sid of sessions started through this handle and not yet ended. */
  private readonly sids = new Map<string, number>();
  /** Index entries were removed since the last purge: their tokens may linger in FTS5 segments until merged. */
  private searchRemoved = false;
  /** What the indexing pass will need of sessions committed here, so it need not read it back. */
  private readonly pendingIndex = new PendingIndex();
  /** Events of the append transaction running, handed to pendingIndex once it committed. */
  private appending: Array<{ event: NewEvent; sid: number | null }> = [];

  private constructor(private readonly db: Database.Database) {
    this.statements = {
      head: db.prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM chain_head WHERE id = 1'),
      setHead: db.prepare('UPDATE chain_head SET seq = ?, hash = ? WHERE id = 1'),
      insertContent: db.prepare('INSERT INTO contents (sid, n, part, key_id, nonce, data) VALUES (?, ?, ?, ?, ?, ?)'),
      insertSession: db.prepare(`INSERT INTO sessions (${SESSION_TABLE_COLUMNS.join(', ')}) VALUES (${SESSION_TABLE_COLUMNS.map(() => '?').join(', ')})`),
      insertGroup: db.prepare('INSERT OR IGNORE INTO session_groups (group_name, sid) VALUES (?, ?)'),
      state: db.prepare<[string], { sid: number; state: string; legal_hold: number }>('SELECT sid, state, legal_hold FROM sessions WHERE id = ?'),
      session: db.prepare<[string], SessionTableRow>('SELECT * FROM sessions WHERE id = ?'),
      sessionEvents: db.prepare<[string], EventTableRow>(`SELECT ${eventColumns(false)} FROM events WHERE sid = (SELECT sid FROM sessions WHERE id = ?) ORDER BY seq`),
      sessionEventsWithContent: db.prepare<[string], EventTableRow>(
        `SELECT ${eventColumns(true)} FROM events WHERE sid = (SELECT sid FROM sessions WHERE id = ?) ORDER BY seq`,
      ),
      sessionContents: db.prepare<[string], ContentTableRow>('SELECT * FROM contents WHERE sid = (SELECT sid FROM sessions WHERE id = ?)'),
      eventSeq: db.prepare<[number, number], { seq: number; kind: string }>('SELECT seq, kind FROM events WHERE sid = ? AND n = ? ORDER BY seq LIMIT 1'),
      // An entry per session, its rowid the session's sid (a search yields sids without a lookup).
      insertSearch: db.prepare('INSERT OR REPLACE INTO session_search (rowid, text) VALUES (?, ?)'),
      deleteSearch: db.prepare('DELETE FROM session_search WHERE rowid = ?'),
      searchHead: db.prepare<[], { seq: number }>('SELECT seq FROM search_head WHERE id = 1'),
      setSearchHead: db.prepare('UPDATE search_head SET seq = ? WHERE id = 1'),
      endedAfter: db.prepare<[number, number], { seq: number; sid: number }>(
        "SELECT seq, sid FROM events WHERE seq > ? AND kind = 'session.end' AND sid IS NOT NULL ORDER BY seq LIMIT ?",
      ),
      countMatches: db.prepare<[string], { n: number }>(`SELECT count(*) AS n FROM (SELECT 1 FROM session_search WHERE session_search MATCH ? LIMIT ${MANY_MATCHES})`),
      deleteContent: db.prepare('DELETE FROM contents WHERE sid = ? AND n = ?'),
      setInlineContent: db.prepare('UPDATE events SET key_id = ?, nonce = ?, content = ? WHERE sid = ? AND n = ?'),
    };
    this.appendTransaction = db.transaction((events: NewEvent[], replay = false): Array<number | null> => {
      const head = this.statements.head.get()!;
      let seq = head.seq;
      let prev = head.hash;
      const seqs: Array<number | null> = [];
      // Event rows go in as multi-row INSERTs: one statement per EVENT_ROWS_PER_STATEMENT events, not one each.
      let rows: unknown[] = [];
      for (const event of events) {
        const state = event.precondition ? this.statements.state.get(event.sessionId)?.state : undefined;
        if ((event.precondition === 'open' && state !== 'open') || (event.precondition === 'exists' && state === undefined)) {
          seqs.push(null);
          continue;
        }
        // A replayed batch may have committed before: what is already stored stays as it is, once.
        const stored = replay ? this.storedSeq(event) : undefined;
        if (stored !== undefined) {
          seqs.push(stored);
          continue;
        }
        const parts = event.parts ?? [];
        const metaText = serializeMeta(event.meta);
        const content = contentHash(parts);
        seq += 1;
        const hash = eventHash(prev, { seq, sessionId: event.sessionId, n: event.n, kind: event.kind, atMs: event.atMs, metaText, contentHash: content });
        const sid = event.kind === 'session.start' ? seq : this.sidOf(event.sessionId);
        const first = parts.find((p) => p.part === 0);
        rows.push(seq, sid, event.sessionId, event.n, event.kind, event.atMs, metaText, content, prev, hash, first?.keyId ?? null, asBuffer(first?.nonce ?? null), asBuffer(first?.data ?? null));
        if (rows.length === EVENT_ROWS_PER_STATEMENT * EVENT_COLUMNS) rows = this.insertEvents(rows);
        if (sid !== null) this.insertParts(sid, event.n, parts);
        this.appending.push({ event, sid });
        const projection = projectEvent(event.sessionId, event, event.atMs);
        if (projection && 'insert' in projection) {
          this.statements.insertSession.run(...sessionValues(projection.insert, seq)); // spread: see insertEvents
          for (const group of projection.insert.groups) this.statements.insertGroup.run(group, seq);
          if (this.sids.size < SID_CACHE_LIMIT) this.sids.set(event.sessionId, seq);
        } else if (projection && sid !== null) {
          this.update(sid, projection.update);
        }
        if (event.kind === 'session.end') this.sids.delete(event.sessionId);
        prev = hash;
        seqs.push(seq);
      }
      this.insertEvents(rows);
      this.statements.setHead.run(seq, prev);
      return seqs;
    });
  }

  static async open(settings: SqliteSettings): Promise<SqliteStore> {
    return SqliteStore.openSync(settings);
  }

  static openSync(settings: SqliteSettings): SqliteStore {
    let db: Database.Database;
    try {
      preparePrivateFile(settings.path);
      db = new Database(settings.path, { timeout: settings.busy_timeout });
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal' && settings.path !== ':memory:') throw new Error(`could not switch to WAL mode (got "${String(mode)}")`);
      db.pragma(`synchronous = ${settings.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
      // Overwritten and deleted content is zeroed, so a redaction leaves no copy in free pages.
      db.pragma('secure_delete = ON');
      migrate(db);
      return new SqliteStore(db);
    } catch (err) {
      throw new StorageUnavailableError(`cannot open the SQLite audit database ${settings.path}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Inserts the event rows flattened in `values`; returns a fresh array for the next ones. */
  private insertEvents(values: unknown[]): unknown[] {
    const count = values.length / EVENT_COLUMNS;
    if (count === 0) return values;
    let statement = this.eventInserts.get(count);
    if (!statement) {
      const row = `(${Array.from({ length: EVENT_COLUMNS }, () => '?').join(', ')})`;
      statement = this.db.prepare(
        `INSERT INTO events (seq, sid, session_id, n, kind, at_ms, meta, content_hash, prev_hash, hash, key_id, nonce, content) VALUES ${Array.from({ length: count }, () => row).join(', ')}`,
      );
      this.eventInserts.set(count, statement);
    }
    // Spread, not one array: better-sqlite3 reads an array's values one by one through V8's API (a property lookup
    // each), arguments straight from the call (about 30,000 instructions less per session with callgrind).
    statement.run(...values);
    return [];
  }

  /** The sid of a session, or null if it has no row (a trail event, or a session deleted meanwhile). */
  private sidOf(sessionId: string): number | null {
    if (sessionId === TRAIL_SESSION_ID) return null;
    return this.sids.get(sessionId) ?? this.statements.state.get(sessionId)?.sid ?? null;
  }

  private insertParts(sid: number, n: number, parts: readonly ContentPart[]): void {
    for (const p of parts) if (p.part > 0) this.statements.insertContent.run(sid, n, p.part, p.keyId, asBuffer(p.nonce), asBuffer(p.data));
  }

  /** The seq under which this event is already stored (a session's start: its sid), if it is. */
  private storedSeq(event: NewEvent): number | undefined {
    if (event.sessionId === TRAIL_SESSION_ID || event.n < 0) return undefined;
    if (event.kind === 'session.start') return this.statements.state.get(event.sessionId)?.sid;
    const sid = this.sidOf(event.sessionId);
    return sid === null ? undefined : this.statements.eventSeq.get(sid, event.n)?.seq;
  }

  async append(events: NewEvent[], options: { replay?: boolean } = {}): Promise<Array<number | null>> {
    this.appending = [];
    try {
      const seqs = this.appendTransaction.immediate(events, options.replay ?? false);
      this.transactions++;
      this.pendingIndex.committed(this.appending);
      this.appending = [];
      return seqs;
    } catch (err) {
      this.appending = [];
      // The sids handed out in the rolled-back transaction do not exist.
      for (const e of events) if (e.kind === 'session.start') this.sids.delete(e.sessionId);
      throw err;
    }
  }

  private update(sid: number, update: SessionUpdate): void {
    const columns = Object.keys(update) as Array<keyof SessionUpdate>;
    const key = columns.join(',');
    let statement = this.updates.get(key);
    if (!statement) {
      statement = this.db.prepare(`UPDATE sessions SET ${columns.map((c) => `${c} = ?`).join(', ')} WHERE sid = ?`);
      this.updates.set(key, statement);
    }
    statement.run(...columns.map((c) => columnValue(update[c])), sid);
  }

  async registerInstance(i: RecorderInstance): Promise<void> {
    this.db
      .prepare('INSERT INTO recorder_instances (id, hostname, pid, started_at, heartbeat_at, closed_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(i.id, i.hostname, i.pid, i.started_at, i.heartbeat_at, i.closed_at);
  }

  async heartbeat(id: string, atMs: number): Promise<void> {
    this.db.prepare('UPDATE recorder_instances SET heartbeat_at = ? WHERE id = ?').run(atMs, id);
  }

  async closeInstance(id: string, atMs: number): Promise<void> {
    this.db.prepare('UPDATE recorder_instances SET closed_at = ? WHERE id = ? AND closed_at IS NULL').run(atMs, id);
  }

  async unclosedInstances(): Promise<RecorderInstance[]> {
    return this.db.prepare<[], RecorderInstance>('SELECT * FROM recorder_instances WHERE closed_at IS NULL ORDER BY started_at').all();
  }

  async openSessions(instanceIds: string[]): Promise<string[]> {
    if (instanceIds.length === 0) return [];
    return this.db
      .prepare<[string], { id: string }>("SELECT id FROM sessions WHERE state = 'open' AND instance_id IN (SELECT value FROM json_each(?)) ORDER BY sid")
      .all(JSON.stringify(instanceIds))
      .map((r) => r.id);
  }

  async chainHead(): Promise<ChainHead> {
    return this.statements.head.get()!;
  }

  async getSession(id: string): Promise<SessionRow | undefined> {
    const row = this.statements.session.get(id);
    return row ? tableToSession(row) : undefined;
  }

  async listSessions(query: SessionQuery): Promise<SessionRow[]> {
    const params: unknown[] = [];
    const where = sessionWhere(
      query,
      (v) => (params.push(v), '?'),
      (terms) => {
        const match = fts5Match(terms);
        params.push(match);
        // Few matches: fetch those sessions and sort them. Many: walk sessions newest first and stop at a full page
        // (`+sid` keeps SQLite from driving the query by the match list, which would read and sort them all).
        const many = this.statements.countMatches.get(match)!.n >= MANY_MATCHES;
        return `${many ? '+' : ''}sid IN (SELECT rowid FROM session_search WHERE session_search MATCH ?)`;
      },
    );
    return this.db
      .prepare<unknown[], SessionTableRow>(`SELECT * FROM sessions ${where} ORDER BY received_at DESC, id DESC LIMIT ?`)
      .all(...params, query.limit)
      .map(tableToSession);
  }

  async scanSessions(afterId: string, limit: number): Promise<SessionRow[]> {
    return this.db.prepare<[string, number], SessionTableRow>('SELECT * FROM sessions WHERE id > ? ORDER BY id LIMIT ?').all(afterId, limit).map(tableToSession);
  }

  async sessionEvents(sessionId: string, withContent: boolean): Promise<StoredEvent[]> {
    if (!withContent) return attachContents(this.statements.sessionEvents.all(sessionId), []);
    return attachContents(this.statements.sessionEventsWithContent.all(sessionId), this.statements.sessionContents.all(sessionId));
  }

  async eventsOfSessions(sessionIds: string[]): Promise<StoredEvent[]> {
    const rows = this.db
      .prepare<[string], EventTableRow>(
        `SELECT ${eventColumns(false)} FROM events WHERE sid IN (SELECT sid FROM sessions WHERE id IN (SELECT value FROM json_each(?))) ORDER BY seq`,
      )
      .all(JSON.stringify(sessionIds));
    return attachContents(rows, []);
  }

  async readEvents(afterSeq: number, limit: number, options: { withContent?: boolean; kinds?: readonly string[]; sinceMs?: number } = {}): Promise<StoredEvent[]> {
    const params: unknown[] = [afterSeq];
    let where = 'seq > ?';
    if (options.kinds) {
      where += ' AND kind IN (SELECT value FROM json_each(?))';
      params.push(JSON.stringify(options.kinds));
    }
    if (options.sinceMs !== undefined) {
      where += ' AND at_ms >= ?';
      params.push(options.sinceMs);
    }
    const events = this.db
      .prepare<unknown[], EventTableRow>(`SELECT ${eventColumns(options.withContent ?? false)} FROM events WHERE ${where} ORDER BY seq LIMIT ?`)
      .all(...params, limit);
    if (!options.withContent || events.length === 0) return attachContents(events, []);
    const contents = this.db
      .prepare<[number, number], ContentTableRow>('SELECT c.* FROM contents c JOIN events e ON e.sid = c.sid AND e.n = c.n WHERE e.seq > ? AND e.seq <= ?')
      .all(afterSeq, Number(events[events.length - 1]!.seq));
    return attachContents(events, contents);
  }

  async sessionIdsOfSubject(subject: string, issuer?: string): Promise<string[]> {
    const rows =
      issuer === undefined
        ? this.db.prepare<[string], { id: string }>('SELECT id FROM sessions WHERE subject = ? ORDER BY received_at').all(subject)
        : this.db.prepare<[string, string], { id: string }>('SELECT id FROM sessions WHERE subject = ? AND issuer = ? ORDER BY received_at').all(subject, issuer);
    return rows.map((r) => r.id);
  }

  async expiredSessions(query: ExpiredQuery): Promise<string[]> {
    const params: unknown[] = [];
    const where = expiredWhere(
      query,
      (v) => (params.push(v), '?'),
      (values) => (params.push(JSON.stringify(values)), '(SELECT value FROM json_each(?))'),
    );
    return this.db
      .prepare<unknown[], { id: string }>(`SELECT id FROM sessions ${where} ORDER BY received_at LIMIT ?`)
      .all(...params, query.limit)
      .map((r) => r.id);
  }

  async rewriteContents(sessionId: string, rewrites: ContentRewrite[], evidence: NewEvent & { kind: 'redaction' }): Promise<{ seq: number }> {
    const run = this.db.transaction(() => {
      const state = this.statements.state.get(sessionId);
      if (!state) throw new SessionStateError(sessionId, 'not_found');
      if (state.legal_hold) throw new SessionStateError(sessionId, 'legal_hold');
      if (state.state === 'open') throw new SessionStateError(sessionId, 'open');
      this.pendingIndex.forget(state.sid);
      const targets: Array<[number, string]> = [];
      for (const rewrite of rewrites) {
        const event = this.statements.eventSeq.get(state.sid, rewrite.n);
        if (!event || rewrite.n === NO_ORDINAL) continue;
        this.statements.deleteContent.run(state.sid, rewrite.n);
        const first = rewrite.parts.find((p) => p.part === 0)!;
        this.statements.setInlineContent.run(first.keyId, asBuffer(first.nonce), asBuffer(first.data), state.sid, rewrite.n);
        this.insertParts(state.sid, rewrite.n, rewrite.parts);
        targets.push([event.seq, contentHash(rewrite.parts)!]);
      }
      // The index follows the content: the old entry goes, and what is left of the text comes back (if the session
      // was indexed already; otherwise the next indexing pass reads the rewritten content).
      if (this.statements.deleteSearch.run(state.sid).changes > 0) {
        this.searchRemoved = true;
        this.indexSessions([state.sid]);
      }
      const [seq] = this.appendTransaction([{ ...evidence, meta: { ...evidence.meta, targets } }]);
      return { seq: seq! };
    });
    const result = run.immediate();
    this.transactions++;
    return result;
  }

  async deleteSessions(ids: string[], evidence: NewEvent & { kind: 'retention.delete' | 'session.delete' }): Promise<DeleteOutcome> {
    const run = this.db.transaction(() => {
      const rows = this.db
        .prepare<[string], { sid: number; id: string; state: string; legal_hold: number }>(
          'SELECT sid, id, state, legal_hold FROM sessions WHERE id IN (SELECT value FROM json_each(?)) ORDER BY sid',
        )
        .all(JSON.stringify(ids));
      const held = rows.filter((r) => r.legal_hold).map((r) => r.id);
      const open = rows.filter((r) => !r.legal_hold && r.state === 'open').map((r) => r.id);
      const doomed = rows.filter((r) => !r.legal_hold && r.state !== 'open');
      const deleted = doomed.map((r) => r.id);
      if (doomed.length === 0) return { deleted, held, open };
      for (const r of doomed) this.pendingIndex.forget(r.sid);
      const sids = JSON.stringify(doomed.map((r) => r.sid));
      const vouches = this.db
        .prepare<[string], { seq: number; hash: string }>('SELECT seq, hash FROM events WHERE sid IN (SELECT value FROM json_each(?)) ORDER BY seq')
        .all(sids)
        .map((r): [number, string] => [r.seq, r.hash]);
      const unindexed = this.db.prepare('DELETE FROM session_search WHERE rowid IN (SELECT value FROM json_each(?))').run(sids);
      if (unindexed.changes > 0) this.searchRemoved = true;
      for (const table of ['contents', 'events', 'session_groups', 'sessions']) {
        this.db.prepare(`DELETE FROM ${table} WHERE sid IN (SELECT value FROM json_each(?))`).run(sids);
      }
      this.appendTransaction([{ ...evidence, meta: { ...evidence.meta, sessions: deleted, deleted: vouches } }]);
      return { deleted, held, open };
    });
    const result = run.immediate();
    this.transactions++;
    return result;
  }

  /** Pushes rewritten pages out of the WAL, so no copy of redacted content remains in it. */
  async purge(): Promise<void> {
    // A deleted FTS5 entry is only marked deleted; merging every segment drops its tokens for good.
    if (this.searchRemoved) {
      this.db.prepare("INSERT INTO session_search (session_search) VALUES ('optimize')").run();
      this.searchRemoved = false;
    }
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  /**
   * Indexes, in one transaction, the sessions of up to `limit` session ends
   * recorded after the search head, and moves the head past them. Returns
   * how many ends it went through (0: nothing was waiting).
   */
  async indexEnded(limit: number): Promise<number> {
    return this.db
      .transaction((): number => {
        const ends = this.statements.endedAfter.all(this.statements.searchHead.get()!.seq, limit);
        if (ends.length === 0) return 0;
        this.indexSessions(ends.map((e) => e.sid));
        this.statements.setSearchHead.run(ends[ends.length - 1]!.seq);
        return ends.length;
      })
      .immediate();
  }

  /** Writes the index entry of each session from its content: kept from its commits, or else as stored (inside a transaction). */
  private indexSessions(all: number[]): void {
    const { entries, unread } = keptEntries(this.pendingIndex, all);
    if (unread.length > 0) {
      const list = JSON.stringify(unread);
      const rows = this.db
        .prepare<[string, string], EventTableRow>(
          `SELECT ${eventColumns(true)} FROM events WHERE sid IN (SELECT value FROM json_each(?)) AND kind IN (SELECT value FROM json_each(?)) ORDER BY sid, n`,
        )
        .all(list, JSON.stringify(INDEXED_KINDS));
      // Later parts exist only for content over chunk_bytes: most sessions have none.
      const contents = this.db.prepare<[string], ContentTableRow>('SELECT * FROM contents WHERE sid IN (SELECT value FROM json_each(?))').all(list);
      readEntries(attachContents(rows, contents), (i) => Number(rows[i]!.sid), entries);
    }
    for (const { sid, text } of entries) this.statements.insertSearch.run(sid, text);
  }

  async reclaimMemory(): Promise<void> {
    // A burst's group commits leave a multi-row INSERT per batch size (up to 64, ~40 KB of compiled program each
    // at 32 rows): let go, they are finalized by the collection that follows, and the next burst prepares its own.
    this.eventInserts.clear();
    this.db.pragma('shrink_memory');
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

/** Brings the schema up to date; returns the versions it applied. */
function migrate(db: Database.Database): number[] {
  db.exec('CREATE TABLE IF NOT EXISTS audit_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at integer NOT NULL)');
  return db.transaction((): number[] => {
    const done: number[] = [];
    const applied = new Set(db.prepare<[], { version: number }>('SELECT version FROM audit_migrations').all().map((r) => r.version));
    const newest = Math.max(0, ...applied);
    if (newest > LATEST_VERSION) {
      throw new Error(`the audit schema is at version ${newest}, newer than this modelgate understands (${LATEST_VERSION}); upgrade modelgate`);
    }
    for (const migration of MIGRATIONS) {
      if (applied.has(migration.version)) continue;
      db.exec(migration.sqlite);
      db.prepare('INSERT INTO audit_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(migration.version, migration.name, Date.now());
      done.push(migration.version);
    }
    return done;
  }).immediate();
}
