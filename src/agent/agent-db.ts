// The agent tables' handle on the `storage:` database every instance shares
// (agent keys, and which instance holds which agents). The two drivers
// differ only in placeholders and how a statement is run.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { StorageConfig } from '../audit/config.js';

export interface AgentDb {
  all<Row>(sql: string, params: unknown[]): Promise<Row[]>;
  run(sql: string, params: unknown[]): Promise<number>;
  close(): Promise<void>;
}

/** Arbitrary but fixed: serialises table creation when several instances start at once. */
const SCHEMA_LOCK_ID = 0x6d67_6167;

/** Opens the storage database and creates `ddl` (idempotent statements) in it. */
export async function openAgentDb(storage: StorageConfig, ddl: readonly string[], applicationName: string): Promise<AgentDb> {
  if (storage.driver === 'postgres') {
    const settings = storage.postgres!;
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({
      connectionString: settings.url,
      max: 2,
      connectionTimeoutMillis: settings.connect_timeout,
      statement_timeout: settings.statement_timeout,
      application_name: applicationName,
      ...(settings.schema ? { options: `-c search_path=${settings.schema}` } : {}),
    });
    pool.on('error', () => {});
    const numbered = (sql: string) => {
      let n = 0;
      return sql.replace(/\?/g, () => `$${++n}`);
    };
    const client = await pool.connect().catch(async (err: unknown) => {
      await pool.end().catch(() => {});
      throw err;
    });
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK_ID]);
      if (settings.schema) await client.query(`CREATE SCHEMA IF NOT EXISTS ${settings.schema}`);
      for (const statement of ddl) await client.query(statement);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      client.release();
      await pool.end().catch(() => {});
      throw err;
    }
    client.release();
    return {
      all: async <Row>(sql: string, params: unknown[]) => (await pool.query(numbered(sql), params)).rows as Row[],
      run: async (sql, params) => (await pool.query(numbered(sql), params)).rowCount ?? 0,
      close: () => pool.end(),
    };
  }
  const settings = storage.sqlite;
  const { default: Database } = await import('better-sqlite3');
  if (settings.path !== ':memory:') mkdirSync(dirname(settings.path), { recursive: true });
  const db = new Database(settings.path, { timeout: settings.busy_timeout });
  db.pragma('journal_mode = WAL');
  for (const statement of ddl) db.exec(statement);
  return {
    all: async <Row>(sql: string, params: unknown[]) => db.prepare<unknown[], Row>(sql).all(...params),
    run: async (sql, params) => db.prepare(sql).run(...params).changes,
    close: async () => {
      db.close();
    },
  };
}
