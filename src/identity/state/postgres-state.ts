// Identity state in PostgreSQL, shared by every gateway instance of a fleet.
// Single statements only: each operation is atomic on its own (upserts with
// a WHERE, DELETE ... RETURNING), so no transaction spans a network round trip.
import type { Pool } from 'pg';
import type { IdentityState, RecordKind, Revocation, ServiceKeyRecord, StoredSigningKey } from './identity-state.js';
import { SERVICE_KEY_SQL, SERVICE_KEYS_TABLE, serviceKeyFromRow, serviceKeyParams, type ServiceKeyRow } from './service-key-rows.js';

export interface PostgresStateOptions {
  url: string;
  schema: string;
  poolSize: number;
}

/** Arbitrary but fixed: serialises table creation when several instances start at once. */
const SCHEMA_LOCK_ID = 0x6d67_6964;
/** As `storage.postgres.connect_timeout`'s default. */
const CONNECT_TIMEOUT_MS = 5_000;

export class PostgresIdentityState implements IdentityState {
  readonly kind = 'postgres';

  constructor(
    private readonly pool: Pool,
    private readonly schema: string,
  ) {}

  static async open(options: PostgresStateOptions): Promise<PostgresIdentityState> {
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize,
      // A server that accepts the connection and never answers fails the call instead of holding a request forever.
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      // The schema name is validated by the config schema (identifier characters only).
      options: `-c search_path=${options.schema}`,
    });
    // An idle client losing its server (PostgreSQL restarted) is reported here; unheard, it would crash the process. The next query gets a fresh client.
    pool.on('error', () => {});
    return new PostgresIdentityState(pool, options.schema);
  }

  async init(): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK_ID]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${this.schema}`);
      await client.query(`
        CREATE TABLE IF NOT EXISTS identity_signing_keys (
          kid text PRIMARY KEY,
          alg text NOT NULL,
          private_jwk text NOT NULL,
          public_jwk text NOT NULL,
          created_at bigint NOT NULL,
          activates_at bigint NOT NULL UNIQUE
        );
        CREATE TABLE IF NOT EXISTS identity_revocations (
          scope text PRIMARY KEY,
          revoked_before bigint NOT NULL,
          expires_at bigint NOT NULL
        );
        CREATE TABLE IF NOT EXISTS identity_records (
          kind text NOT NULL,
          key text NOT NULL,
          value text NOT NULL,
          expires_at bigint NOT NULL,
          PRIMARY KEY (kind, key)
        );
        CREATE INDEX IF NOT EXISTS identity_records_expiry ON identity_records (expires_at);
      `);
      await client.query(SERVICE_KEYS_TABLE);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async signingKeys(): Promise<StoredSigningKey[]> {
    const { rows } = await this.pool.query<{
      kid: string;
      alg: string;
      private_jwk: string;
      public_jwk: string;
      created_at: string;
      activates_at: string;
    }>('SELECT * FROM identity_signing_keys ORDER BY activates_at');
    return rows.map((row) => ({
      kid: row.kid,
      alg: row.alg,
      privateJwk: JSON.parse(row.private_jwk),
      publicJwk: JSON.parse(row.public_jwk),
      createdAt: Number(row.created_at),
      activatesAt: Number(row.activates_at),
    }));
  }

  async addSigningKey(key: StoredSigningKey): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      `INSERT INTO identity_signing_keys (kid, alg, private_jwk, public_jwk, created_at, activates_at)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
      [key.kid, key.alg, JSON.stringify(key.privateJwk), JSON.stringify(key.publicJwk), key.createdAt, key.activatesAt],
    );
    return rowCount === 1;
  }

  async deleteSigningKey(kid: string): Promise<void> {
    await this.pool.query('DELETE FROM identity_signing_keys WHERE kid = $1', [kid]);
  }

  async revocations(now: number): Promise<Revocation[]> {
    const { rows } = await this.pool.query<{ scope: string; revoked_before: string; expires_at: string }>(
      'SELECT scope, revoked_before, expires_at FROM identity_revocations WHERE expires_at > $1',
      [now],
    );
    return rows.map((row) => ({ scope: row.scope, revokedBefore: Number(row.revoked_before), expiresAt: Number(row.expires_at) }));
  }

  async revoke(revocation: Revocation): Promise<void> {
    await this.pool.query(
      `INSERT INTO identity_revocations (scope, revoked_before, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (scope) DO UPDATE SET
         revoked_before = GREATEST(identity_revocations.revoked_before, EXCLUDED.revoked_before),
         expires_at = GREATEST(identity_revocations.expires_at, EXCLUDED.expires_at)`,
      [revocation.scope, revocation.revokedBefore, revocation.expiresAt],
    );
  }

  async put(kind: RecordKind, key: string, value: string, expiresAt: number): Promise<void> {
    await this.pool.query(
      `INSERT INTO identity_records (kind, key, value, expires_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (kind, key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`,
      [kind, key, value, expiresAt],
    );
  }

  async putIfAbsent(kind: RecordKind, key: string, value: string, expiresAt: number, now: number): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      `INSERT INTO identity_records (kind, key, value, expires_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (kind, key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at
       WHERE identity_records.expires_at <= $5`,
      [kind, key, value, expiresAt, now],
    );
    return rowCount === 1;
  }

  async get(kind: RecordKind, key: string, now: number): Promise<string | undefined> {
    const { rows } = await this.pool.query<{ value: string }>(
      'SELECT value FROM identity_records WHERE kind = $1 AND key = $2 AND expires_at > $3',
      [kind, key, now],
    );
    return rows[0]?.value;
  }

  async take(kind: RecordKind, key: string, now: number): Promise<string | undefined> {
    const { rows } = await this.pool.query<{ value: string; expires_at: string }>(
      'DELETE FROM identity_records WHERE kind = $1 AND key = $2 RETURNING value, expires_at',
      [kind, key],
    );
    const row = rows[0];
    return row && Number(row.expires_at) > now ? row.value : undefined;
  }

  async delete(kind: RecordKind, key: string): Promise<void> {
    await this.pool.query('DELETE FROM identity_records WHERE kind = $1 AND key = $2', [kind, key]);
  }

  async insertServiceKey(record: ServiceKeyRecord): Promise<void> {
    await this.pool.query(numbered(SERVICE_KEY_SQL.insert), serviceKeyParams(record));
  }

  async serviceKey(id: string): Promise<ServiceKeyRecord | undefined> {
    const { rows } = await this.pool.query<ServiceKeyRow>(numbered(SERVICE_KEY_SQL.get), [id]);
    return rows[0] && serviceKeyFromRow(rows[0]);
  }

  async serviceKeys(): Promise<ServiceKeyRecord[]> {
    return (await this.pool.query<ServiceKeyRow>(SERVICE_KEY_SQL.list)).rows.map(serviceKeyFromRow);
  }

  async replaceServiceKeys(name: string, replacedBy: string, at: number, now: number): Promise<number> {
    return (await this.pool.query(numbered(SERVICE_KEY_SQL.replace), [at, replacedBy, name, replacedBy, at, now])).rowCount ?? 0;
  }

  async revokeServiceKeys(name: string, now: number, id?: string): Promise<number> {
    const { rowCount } =
      id === undefined
        ? await this.pool.query(numbered(SERVICE_KEY_SQL.revokeAll), [now, name, now])
        : await this.pool.query(numbered(SERVICE_KEY_SQL.revokeOne), [now, name, id, now]);
    return rowCount ?? 0;
  }

  async purgeExpired(now: number): Promise<void> {
    await this.pool.query('DELETE FROM identity_records WHERE expires_at <= $1', [now]);
    await this.pool.query('DELETE FROM identity_revocations WHERE expires_at <= $1', [now]);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** `?` placeholders as PostgreSQL's `$n`. */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}
