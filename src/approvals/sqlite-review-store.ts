// Reviews in the embedded SQLite database (one host). Transactions are
// IMMEDIATE, so two processes on one file take turns; there is no push, so
// held requests poll.
import Database from 'better-sqlite3';
import type { SqliteSettings } from '../audit/sqlite-store.js';
import type { Review } from './review.js';
import { reviewColumns, reviewFromRow, ReviewStoreUnavailableError, type ReviewQuery, type ReviewStore } from './review-store.js';
import { preparePrivateFile } from '../ops/private-files.js';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS approval_reviews (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    requester_issuer TEXT NOT NULL,
    requester_subject TEXT NOT NULL,
    connection TEXT NOT NULL,
    fingerprint TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    grant_expires_at INTEGER,
    doc TEXT NOT NULL,
    prompt TEXT
  );
`;

/** Indexes, created once every column they need exists. */
const INDEXES = `
  CREATE TABLE IF NOT EXISTS approval_waiters (
    waiter_id TEXT PRIMARY KEY,
    review_id TEXT NOT NULL,
    lease_until INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS approval_waiters_review ON approval_waiters (review_id, lease_until);
  CREATE INDEX IF NOT EXISTS approval_reviews_fingerprint ON approval_reviews (fingerprint, created_at);
  CREATE INDEX IF NOT EXISTS approval_reviews_pending ON approval_reviews (state, expires_at);
  CREATE INDEX IF NOT EXISTS approval_reviews_requester ON approval_reviews (requester_subject, created_at);
  CREATE INDEX IF NOT EXISTS approval_reviews_updated ON approval_reviews (updated_at);
`;

export class SqliteReviewStore implements ReviewStore {
  readonly pushing = false;
  private readonly statements;

  private constructor(private readonly db: Database.Database) {
    this.statements = {
      insert: db.prepare(`INSERT INTO approval_reviews (id, kind, state, requester_issuer, requester_subject, connection, fingerprint, created_at, updated_at, expires_at, grant_expires_at, doc, prompt)
        VALUES (@id, @kind, @state, @requester_issuer, @requester_subject, @connection, @fingerprint, @created_at, @updated_at, @expires_at, @grant_expires_at, @doc, @prompt)`),
      update: db.prepare(`UPDATE approval_reviews SET state = @state, updated_at = @updated_at, expires_at = @expires_at, grant_expires_at = @grant_expires_at, doc = @doc, prompt = @prompt WHERE id = @id`),
      get: db.prepare<[string], { doc: string; prompt: string | null }>('SELECT doc, prompt FROM approval_reviews WHERE id = ?'),
      byFingerprint: db.prepare<[string], { doc: string }>('SELECT doc FROM approval_reviews WHERE fingerprint = ? ORDER BY created_at DESC LIMIT 20'),
      activeGrants: db.prepare<[string, string, number], { doc: string }>(
        `SELECT doc FROM approval_reviews WHERE kind = 'access' AND state = 'approved' AND requester_subject = ? AND connection = ? AND grant_expires_at > ?`,
      ),
      duePending: db.prepare<[number, number], { id: string }>(`SELECT id FROM approval_reviews WHERE state = 'pending' AND expires_at <= ? LIMIT ?`),
      holdWaiter: db.prepare(
        `INSERT INTO approval_waiters (waiter_id, review_id, lease_until) VALUES (?, ?, ?)
         ON CONFLICT (waiter_id) DO UPDATE SET lease_until = excluded.lease_until`,
      ),
      dropWaiter: db.prepare('DELETE FROM approval_waiters WHERE waiter_id = ?'),
      liveWaiters: db.prepare<[string, number], { n: number }>('SELECT count(*) AS n FROM approval_waiters WHERE review_id = ? AND lease_until > ?'),
      dropExpiredWaiters: db.prepare('DELETE FROM approval_waiters WHERE lease_until <= ?'),
    };
  }

  static open(settings: SqliteSettings): SqliteReviewStore {
    try {
      preparePrivateFile(settings.path);
      const db = new Database(settings.path, { timeout: settings.busy_timeout });
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${settings.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
      db.exec(SCHEMA);
      // Tables from the first approvals build lack updated_at (retention) and the separate prompt column.
      const columns = db.prepare<[], { name: string }>('PRAGMA table_info(approval_reviews)').all();
      if (!columns.some((c) => c.name === 'updated_at')) db.exec('ALTER TABLE approval_reviews ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0');
      if (!columns.some((c) => c.name === 'prompt')) db.exec('ALTER TABLE approval_reviews ADD COLUMN prompt TEXT');
      db.exec(INDEXES);
      return new SqliteReviewStore(db);
    } catch (err) {
      throw new ReviewStoreUnavailableError(`cannot open the SQLite review store ${settings.path}: ${(err as Error).message}`, { cause: err });
    }
  }

  async insert(review: Review): Promise<void> {
    this.statements.insert.run(reviewColumns(review));
  }

  async get(id: string): Promise<Review | undefined> {
    const row = this.statements.get.get(id);
    return row && reviewFromRow(row);
  }

  async getMany(ids: readonly string[]): Promise<Review[]> {
    if (ids.length === 0) return [];
    const rows = this.db.prepare(`SELECT doc FROM approval_reviews WHERE id IN (${ids.map(() => '?').join(',')})`).all(...ids) as Array<{ doc: string }>;
    return rows.map((r) => reviewFromRow(r));
  }

  async list(query: ReviewQuery): Promise<Review[]> {
    const clauses: string[] = [];
    const params: unknown[] = [];
    if (query.state) (clauses.push('state = ?'), params.push(query.state));
    if (query.kind) (clauses.push('kind = ?'), params.push(query.kind));
    if (query.requester) (clauses.push('requester_subject = ?'), params.push(query.requester.subject));
    if (query.requester?.issuer !== undefined) (clauses.push('requester_issuer = ?'), params.push(query.requester.issuer));
    const where = clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : '';
    const rows = this.db.prepare(`SELECT doc FROM approval_reviews ${where} ORDER BY created_at DESC LIMIT ?`).all(...params, query.limit ?? 100) as Array<{ doc: string }>;
    return rows.map((r) => reviewFromRow(r));
  }

  async byFingerprint(fingerprint: string): Promise<Review[]> {
    return this.statements.byFingerprint.all(fingerprint).map((r) => reviewFromRow(r));
  }

  async activeGrants(subject: string, connection: string, now: number): Promise<Review[]> {
    return this.statements.activeGrants.all(subject, connection, now).map((r) => reviewFromRow(r));
  }

  async deleteDecidedBefore(cutoff: number, limit: number): Promise<number> {
    return this.db
      .prepare(`DELETE FROM approval_reviews WHERE id IN (SELECT id FROM approval_reviews WHERE state <> 'pending' AND updated_at < ? LIMIT ?)`)
      .run(cutoff, limit).changes;
  }

  async duePending(now: number, limit: number): Promise<string[]> {
    return this.statements.duePending.all(now, limit).map((r) => r.id);
  }

  async update<T>(id: string, change: (current: Review) => { next?: Review; result: T }): Promise<T | undefined> {
    const run = this.db.transaction((): T | undefined => {
      const row = this.statements.get.get(id);
      if (!row) return undefined;
      const { next, result } = change(reviewFromRow(row));
      if (next) this.statements.update.run(reviewColumns(next));
      return result;
    });
    return run.immediate();
  }

  async holdWaiter(reviewId: string, waiterId: string, leaseUntil: number): Promise<void> {
    this.statements.holdWaiter.run(waiterId, reviewId, leaseUntil);
  }

  async dropWaiter(waiterId: string): Promise<void> {
    this.statements.dropWaiter.run(waiterId);
  }

  async liveWaiters(reviewId: string, now: number): Promise<number> {
    return this.statements.liveWaiters.get(reviewId, now)?.n ?? 0;
  }

  async dropExpiredWaiters(now: number): Promise<void> {
    this.statements.dropExpiredWaiters.run(now);
  }

  async subscribe(): Promise<boolean> {
    return false;
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
