// Reviews in PostgreSQL, shared by a fleet. Every change is announced with
// NOTIFY inside its transaction, so a request held on one instance hears
// about an approval made on another as soon as it commits. The listening
// connection reconnects with backoff; while it is down, held requests poll.
import pg from 'pg';
import type { PostgresSettings } from '../audit/postgres-store.js';
import type { Review } from './review.js';
import { reviewColumns, reviewFromRow, ReviewStoreUnavailableError, type ReviewQuery, type ReviewStore } from './review-store.js';

const CHANNEL = 'modelgate_reviews';
/** Arbitrary but fixed: serialises table creation when several instances start at once. */
const SCHEMA_LOCK_ID = 0x6d67_7276;
const RECONNECT_MAX_MS = 5_000;

const COLUMNS = 'id, kind, state, requester_issuer, requester_subject, connection, fingerprint, created_at, updated_at, expires_at, grant_expires_at, doc, prompt';

const parse = (rows: Array<{ doc: string; prompt?: string | null }>): Review[] => rows.map(reviewFromRow);

export class PostgresReviewStore implements ReviewStore {
  private listener: pg.Client | undefined;
  private listeners: Array<(id: string) => void> = [];
  private connected = false;
  private closed = false;
  private reconnectDelay = 100;
  private reconnectTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly settings: PostgresSettings,
  ) {}

  static async open(settings: PostgresSettings): Promise<PostgresReviewStore> {
    const pool = new pg.Pool({
      connectionString: settings.url,
      max: Math.min(settings.pool_size, 5),
      connectionTimeoutMillis: settings.connect_timeout,
      statement_timeout: settings.statement_timeout,
      application_name: 'modelgate-approvals',
      ...(settings.schema ? { options: `-c search_path=${settings.schema}` } : {}),
    });
    pool.on('error', () => {});
    try {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK_ID]);
        if (settings.schema) await client.query(`CREATE SCHEMA IF NOT EXISTS ${settings.schema}`);
        await client.query(`
          CREATE TABLE IF NOT EXISTS approval_reviews (
            id text PRIMARY KEY,
            kind text NOT NULL,
            state text NOT NULL,
            requester_issuer text NOT NULL,
            requester_subject text NOT NULL,
            connection text NOT NULL,
            fingerprint text,
            created_at bigint NOT NULL,
            updated_at bigint NOT NULL,
            expires_at bigint NOT NULL,
            grant_expires_at bigint,
            doc text NOT NULL,
            prompt text
          );
          -- Tables from the first approvals build lack updated_at (retention) and the separate prompt column.
          ALTER TABLE approval_reviews ADD COLUMN IF NOT EXISTS updated_at bigint NOT NULL DEFAULT 0;
          ALTER TABLE approval_reviews ADD COLUMN IF NOT EXISTS prompt text;
          CREATE INDEX IF NOT EXISTS approval_reviews_fingerprint ON approval_reviews (fingerprint, created_at);
          CREATE INDEX IF NOT EXISTS approval_reviews_pending ON approval_reviews (state, expires_at);
          CREATE INDEX IF NOT EXISTS approval_reviews_requester ON approval_reviews (requester_subject, created_at);
          CREATE INDEX IF NOT EXISTS approval_reviews_updated ON approval_reviews (updated_at);
          CREATE TABLE IF NOT EXISTS approval_waiters (
            waiter_id text PRIMARY KEY,
            review_id text NOT NULL,
            lease_until bigint NOT NULL
          );
          CREATE INDEX IF NOT EXISTS approval_waiters_review ON approval_waiters (review_id, lease_until);
        `);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.release();
      }
    } catch (err) {
      await pool.end().catch(() => {});
      throw new ReviewStoreUnavailableError(`cannot prepare the PostgreSQL review store: ${(err as Error).message}`, { cause: err });
    }
    return new PostgresReviewStore(pool, settings);
  }

  get pushing(): boolean {
    return this.connected;
  }

  async insert(review: Review): Promise<void> {
    const c = reviewColumns(review);
    await this.pool.query(
      `WITH inserted AS (INSERT INTO approval_reviews (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id)
       SELECT pg_notify($14, id) FROM inserted`,
      [c.id, c.kind, c.state, c.requester_issuer, c.requester_subject, c.connection, c.fingerprint, c.created_at, c.updated_at, c.expires_at, c.grant_expires_at, c.doc, c.prompt, CHANNEL],
    );
  }

  async get(id: string): Promise<Review | undefined> {
    const { rows } = await this.pool.query<{ doc: string; prompt: string | null }>('SELECT doc, prompt FROM approval_reviews WHERE id = $1', [id]);
    return parse(rows)[0];
  }

  async getMany(ids: readonly string[]): Promise<Review[]> {
    if (ids.length === 0) return [];
    const { rows } = await this.pool.query<{ doc: string }>('SELECT doc FROM approval_reviews WHERE id = ANY($1)', [ids]);
    return parse(rows);
  }

  async list(query: ReviewQuery): Promise<Review[]> {
    const clauses: string[] = [];
    const params: unknown[] = [];
    const param = (v: unknown) => (params.push(v), `$${params.length}`);
    if (query.state) clauses.push(`state = ${param(query.state)}`);
    if (query.kind) clauses.push(`kind = ${param(query.kind)}`);
    if (query.requester) clauses.push(`requester_subject = ${param(query.requester.subject)}`);
    if (query.requester?.issuer !== undefined) clauses.push(`requester_issuer = ${param(query.requester.issuer)}`);
    const where = clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : '';
    const { rows } = await this.pool.query<{ doc: string }>(`SELECT doc FROM approval_reviews ${where} ORDER BY created_at DESC LIMIT ${param(query.limit ?? 100)}`, params);
    return parse(rows);
  }

  async byFingerprint(fingerprint: string): Promise<Review[]> {
    const { rows } = await this.pool.query<{ doc: string }>('SELECT doc FROM approval_reviews WHERE fingerprint = $1 ORDER BY created_at DESC LIMIT 20', [fingerprint]);
    return parse(rows);
  }

  async activeGrants(subject: string, connection: string, now: number): Promise<Review[]> {
    const { rows } = await this.pool.query<{ doc: string }>(
      `SELECT doc FROM approval_reviews WHERE kind = 'access' AND state = 'approved' AND requester_subject = $1 AND connection = $2 AND grant_expires_at > $3`,
      [subject, connection, now],
    );
    return parse(rows);
  }

  async deleteDecidedBefore(cutoff: number, limit: number): Promise<number> {
    const { rowCount } = await this.pool.query(
      `DELETE FROM approval_reviews WHERE id IN (SELECT id FROM approval_reviews WHERE state <> 'pending' AND updated_at < $1 LIMIT $2)`,
      [cutoff, limit],
    );
    return rowCount ?? 0;
  }

  async duePending(now: number, limit: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ id: string }>(`SELECT id FROM approval_reviews WHERE state = 'pending' AND expires_at <= $1 LIMIT $2`, [now, limit]);
    return rows.map((r) => r.id);
  }

  async update<T>(id: string, change: (current: Review) => { next?: Review; result: T }): Promise<T | undefined> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<{ doc: string; prompt: string | null }>('SELECT doc, prompt FROM approval_reviews WHERE id = $1 FOR UPDATE', [id]);
      const current = parse(rows)[0];
      if (!current) {
        await client.query('ROLLBACK');
        return undefined;
      }
      const { next, result } = change(current);
      if (next) {
        const c = reviewColumns(next);
        await client.query('UPDATE approval_reviews SET state = $2, updated_at = $6, expires_at = $3, grant_expires_at = $4, doc = $5, prompt = $7 WHERE id = $1', [
          id,
          c.state,
          c.expires_at,
          c.grant_expires_at,
          c.doc,
          c.updated_at,
          c.prompt,
        ]);
        await client.query('SELECT pg_notify($1, $2)', [CHANNEL, id]);
      }
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async holdWaiter(reviewId: string, waiterId: string, leaseUntil: number): Promise<void> {
    await this.pool.query(
      `INSERT INTO approval_waiters (waiter_id, review_id, lease_until) VALUES ($1, $2, $3)
       ON CONFLICT (waiter_id) DO UPDATE SET lease_until = EXCLUDED.lease_until`,
      [waiterId, reviewId, leaseUntil],
    );
  }

  async dropWaiter(waiterId: string): Promise<void> {
    await this.pool.query('DELETE FROM approval_waiters WHERE waiter_id = $1', [waiterId]);
  }

  async liveWaiters(reviewId: string, now: number): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>('SELECT count(*) AS n FROM approval_waiters WHERE review_id = $1 AND lease_until > $2', [reviewId, now]);
    return Number(rows[0]?.n ?? 0);
  }

  async dropExpiredWaiters(now: number): Promise<void> {
    await this.pool.query('DELETE FROM approval_waiters WHERE lease_until <= $1', [now]);
  }

  async subscribe(listener: (id: string) => void): Promise<boolean> {
    this.listeners.push(listener);
    if (!this.listener) await this.listen();
    return true;
  }

  /** A dedicated connection for LISTEN (pooled connections cannot hold one). */
  private async listen(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({
      connectionString: this.settings.url,
      connectionTimeoutMillis: this.settings.connect_timeout,
      // The pid tells an operator (and a test) which instance's listener a backend is.
      application_name: `modelgate-approvals-listen:${process.pid}`,
      ...(this.settings.schema ? { options: `-c search_path=${this.settings.schema}` } : {}),
    });
    this.listener = client;
    const lost = () => {
      if (this.listener !== client) return;
      this.connected = false;
      this.listener = undefined;
      client.end().catch(() => {});
      if (this.closed) return;
      this.reconnectTimer = setTimeout(() => void this.listen(), this.reconnectDelay);
      this.reconnectTimer.unref();
      this.reconnectDelay = Math.min(this.reconnectDelay * 2, RECONNECT_MAX_MS);
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (message) => {
      if (message.channel !== CHANNEL || !message.payload) return;
      for (const l of this.listeners) l(message.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      this.connected = true;
      this.reconnectDelay = 100;
    } catch {
      lost();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    const listener = this.listener;
    this.listener = undefined;
    this.connected = false;
    await listener?.end().catch(() => {});
    await this.pool.end();
  }
}
