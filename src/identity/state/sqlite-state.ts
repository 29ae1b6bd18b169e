// Identity state in a SQLite file: several gateway processes on one host
// share it (WAL mode, busy timeout). Statements are prepared once.
import type BetterSqlite3 from 'better-sqlite3';
import type { IdentityState, RecordKind, Revocation, ServiceKeyRecord, StoredSigningKey } from './identity-state.js';
import { SERVICE_KEY_SQL, SERVICE_KEYS_TABLE, serviceKeyFromRow, serviceKeyParams, type ServiceKeyRow } from './service-key-rows.js';
import { preparePrivateFile } from '../../ops/private-files.js';

interface KeyRow {
  kid: string;
  alg: string;
  private_jwk: string;
  public_jwk: string;
  created_at: number;
  activates_at: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS identity_signing_keys (
  kid TEXT PRIMARY KEY,
  alg TEXT NOT NULL,
  private_jwk TEXT NOT NULL,
  public_jwk TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  activates_at INTEGER NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS identity_revocations (
  scope TEXT PRIMARY KEY,
  revoked_before INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS identity_records (
  kind TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS identity_records_expiry ON identity_records (expires_at);
`;

export class SqliteIdentityState implements IdentityState {
  readonly kind = 'sqlite';
  private statements: ReturnType<SqliteIdentityState['prepare']> | undefined;

  constructor(private readonly db: BetterSqlite3.Database) {}

  static async open(path: string): Promise<SqliteIdentityState> {
    const { default: Database } = await import('better-sqlite3');
    preparePrivateFile(path);
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    return new SqliteIdentityState(db);
  }

  async init(): Promise<void> {
    this.db.exec(SCHEMA);
    this.db.exec(SERVICE_KEYS_TABLE);
    this.statements = this.prepare();
  }

  private prepare() {
    const db = this.db;
    return {
      keys: db.prepare<[], KeyRow>('SELECT * FROM identity_signing_keys ORDER BY activates_at'),
      addKey: db.prepare(
        `INSERT INTO identity_signing_keys (kid, alg, private_jwk, public_jwk, created_at, activates_at)
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      ),
      deleteKey: db.prepare('DELETE FROM identity_signing_keys WHERE kid = ?'),
      revocations: db.prepare<[number], { scope: string; revoked_before: number; expires_at: number }>(
        'SELECT scope, revoked_before, expires_at FROM identity_revocations WHERE expires_at > ?',
      ),
      revoke: db.prepare(
        `INSERT INTO identity_revocations (scope, revoked_before, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (scope) DO UPDATE SET revoked_before = max(revoked_before, excluded.revoked_before),
                                           expires_at = max(expires_at, excluded.expires_at)`,
      ),
      put: db.prepare(
        `INSERT INTO identity_records (kind, key, value, expires_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
      ),
      putIfAbsent: db.prepare(
        `INSERT INTO identity_records (kind, key, value, expires_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
         WHERE identity_records.expires_at <= ?`,
      ),
      get: db.prepare<[string, string, number], { value: string }>(
        'SELECT value FROM identity_records WHERE kind = ? AND key = ? AND expires_at > ?',
      ),
      take: db.prepare<[string, string], { value: string; expires_at: number }>(
        'DELETE FROM identity_records WHERE kind = ? AND key = ? RETURNING value, expires_at',
      ),
      delete: db.prepare('DELETE FROM identity_records WHERE kind = ? AND key = ?'),
      insertServiceKey: db.prepare(SERVICE_KEY_SQL.insert),
      serviceKey: db.prepare<[string], ServiceKeyRow>(SERVICE_KEY_SQL.get),
      serviceKeys: db.prepare<[], ServiceKeyRow>(SERVICE_KEY_SQL.list),
      replaceServiceKeys: db.prepare(SERVICE_KEY_SQL.replace),
      revokeServiceKeys: db.prepare(SERVICE_KEY_SQL.revokeAll),
      revokeServiceKey: db.prepare(SERVICE_KEY_SQL.revokeOne),
      purgeRecords: db.prepare('DELETE FROM identity_records WHERE expires_at <= ?'),
      purgeRevocations: db.prepare('DELETE FROM identity_revocations WHERE expires_at <= ?'),
    };
  }

  private get sql(): NonNullable<SqliteIdentityState['statements']> {
    if (!this.statements) throw new Error('SqliteIdentityState.init() has not run');
    return this.statements;
  }

  async signingKeys(): Promise<StoredSigningKey[]> {
    return this.sql.keys.all().map((row) => ({
      kid: row.kid,
      alg: row.alg,
      privateJwk: JSON.parse(row.private_jwk),
      publicJwk: JSON.parse(row.public_jwk),
      createdAt: row.created_at,
      activatesAt: row.activates_at,
    }));
  }

  async addSigningKey(key: StoredSigningKey): Promise<boolean> {
    const { changes } = this.sql.addKey.run(
      key.kid,
      key.alg,
      JSON.stringify(key.privateJwk),
      JSON.stringify(key.publicJwk),
      key.createdAt,
      key.activatesAt,
    );
    return changes === 1;
  }

  async deleteSigningKey(kid: string): Promise<void> {
    this.sql.deleteKey.run(kid);
  }

  async revocations(now: number): Promise<Revocation[]> {
    return this.sql.revocations.all(now).map((row) => ({ scope: row.scope, revokedBefore: row.revoked_before, expiresAt: row.expires_at }));
  }

  async revoke(revocation: Revocation): Promise<void> {
    this.sql.revoke.run(revocation.scope, revocation.revokedBefore, revocation.expiresAt);
  }

  async put(kind: RecordKind, key: string, value: string, expiresAt: number): Promise<void> {
    this.sql.put.run(kind, key, value, expiresAt);
  }

  async putIfAbsent(kind: RecordKind, key: string, value: string, expiresAt: number, now: number): Promise<boolean> {
    return this.sql.putIfAbsent.run(kind, key, value, expiresAt, now).changes === 1;
  }

  async get(kind: RecordKind, key: string, now: number): Promise<string | undefined> {
    return this.sql.get.get(kind, key, now)?.value;
  }

  async take(kind: RecordKind, key: string, now: number): Promise<string | undefined> {
    const row = this.sql.take.get(kind, key);
    return row && row.expires_at > now ? row.value : undefined;
  }

  async delete(kind: RecordKind, key: string): Promise<void> {
    this.sql.delete.run(kind, key);
  }

  async insertServiceKey(record: ServiceKeyRecord): Promise<void> {
    this.sql.insertServiceKey.run(...serviceKeyParams(record));
  }

  async serviceKey(id: string): Promise<ServiceKeyRecord | undefined> {
    const row = this.sql.serviceKey.get(id);
    return row && serviceKeyFromRow(row);
  }

  async serviceKeys(): Promise<ServiceKeyRecord[]> {
    return this.sql.serviceKeys.all().map(serviceKeyFromRow);
  }

  async replaceServiceKeys(name: string, replacedBy: string, at: number, now: number): Promise<number> {
    return this.sql.replaceServiceKeys.run(at, replacedBy, name, replacedBy, at, now).changes;
  }

  async revokeServiceKeys(name: string, now: number, id?: string): Promise<number> {
    return id === undefined ? this.sql.revokeServiceKeys.run(now, name, now).changes : this.sql.revokeServiceKey.run(now, name, id, now).changes;
  }

  async purgeExpired(now: number): Promise<void> {
    this.sql.purgeRecords.run(now);
    this.sql.purgeRevocations.run(now);
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
