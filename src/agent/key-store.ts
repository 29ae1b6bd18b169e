// Where agent keys live: the `storage:` database every gateway instance
// shares, so a key created or revoked with the CLI is seen by all of them.
// One row per key; an agent has one key, or two while a rotation overlaps.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { StorageConfig } from '../audit/config.js';

export interface AgentKeyRecord {
  /** The public part of the key, `mga_<id>_…`. */
  id: string;
  /** The agent's name, as operators know it. */
  agent: string;
  /** SHA-256 (hex) of the key's secret part. */
  hash: string;
  /** Connections the agent may serve. */
  connections: string[];
  created_at: number;
  /** Set on the old key by a rotation: it keeps working until then. */
  expires_at: number | null;
  revoked_at: number | null;
}

export interface AgentKeyStore {
  insert(record: AgentKeyRecord): Promise<void>;
  get(id: string): Promise<AgentKeyRecord | undefined>;
  /** Every key, newest first. */
  list(): Promise<AgentKeyRecord[]>;
  /** Marks every key of `agent` revoked at `now`; returns how many were live. */
  revokeAgent(agent: string, now: number): Promise<number>;
  /** Lets a key lapse at `at` (rotation's overlap); an earlier expiry is kept. */
  expire(id: string, at: number): Promise<void>;
  close(): Promise<void>;
}

export function keyIsLive(record: AgentKeyRecord, now: number): boolean {
  return record.revoked_at === null && (record.expires_at === null || record.expires_at > now);
}

const COLUMNS = 'id, agent, hash, connections, created_at, expires_at, revoked_at';

interface Row {
  id: string;
  agent: string;
  hash: string;
  connections: string;
  created_at: number | string;
  expires_at: number | string | null;
  revoked_at: number | string | null;
}

const optionalNumber = (v: number | string | null): number | null => (v === null ? null : Number(v));

function fromRow(row: Row): AgentKeyRecord {
  return {
    id: row.id,
    agent: row.agent,
    hash: row.hash,
    connections: JSON.parse(row.connections) as string[],
    created_at: Number(row.created_at),
    expires_at: optionalNumber(row.expires_at),
    revoked_at: optionalNumber(row.revoked_at),
  };
}

/** The two drivers differ only in placeholders and how a statement is run. */
interface SqlRunner {
  all(sql: string, params: unknown[]): Promise<Row[]>;
  run(sql: string, params: unknown[]): Promise<number>;
  close(): Promise<void>;
}

class SqlAgentKeyStore implements AgentKeyStore {
  constructor(private readonly sql: SqlRunner) {}

  async insert(r: AgentKeyRecord): Promise<void> {
    await this.sql.run(`INSERT INTO agent_keys (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`, [
      r.id,
      r.agent,
      r.hash,
      JSON.stringify(r.connections),
      r.created_at,
      r.expires_at,
      r.revoked_at,
    ]);
  }

  async get(id: string): Promise<AgentKeyRecord | undefined> {
    const [row] = await this.sql.all(`SELECT ${COLUMNS} FROM agent_keys WHERE id = ?`, [id]);
    return row ? fromRow(row) : undefined;
  }

  async list(): Promise<AgentKeyRecord[]> {
    return (await this.sql.all(`SELECT ${COLUMNS} FROM agent_keys ORDER BY created_at DESC, id`, [])).map(fromRow);
  }

  revokeAgent(agent: string, now: number): Promise<number> {
    return this.sql.run('UPDATE agent_keys SET revoked_at = ? WHERE agent = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)', [now, agent, now]);
  }

  async expire(id: string, at: number): Promise<void> {
    await this.sql.run('UPDATE agent_keys SET expires_at = ? WHERE id = ? AND (expires_at IS NULL OR expires_at > ?)', [at, id, at]);
  }

  close(): Promise<void> {
    return this.sql.close();
  }
}

const TABLE = `CREATE TABLE IF NOT EXISTS agent_keys (
  id TEXT PRIMARY KEY,
  agent TEXT NOT NULL,
  hash TEXT NOT NULL,
  connections TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT,
  revoked_at BIGINT
)`;
const INDEX = 'CREATE INDEX IF NOT EXISTS agent_keys_agent ON agent_keys (agent)';
/** Arbitrary but fixed: serialises table creation when several instances start at once. */
const SCHEMA_LOCK_ID = 0x6d67_6167;

export async function openAgentKeyStore(storage: StorageConfig): Promise<AgentKeyStore> {
  if (storage.driver === 'postgres') {
    const settings = storage.postgres!;
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({
      connectionString: settings.url,
      max: 2,
      connectionTimeoutMillis: settings.connect_timeout,
      statement_timeout: settings.statement_timeout,
      application_name: 'modelgate-agents',
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
      await client.query(TABLE);
      await client.query(INDEX);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      client.release();
      await pool.end().catch(() => {});
      throw err;
    }
    client.release();
    return new SqlAgentKeyStore({
      all: async (sql, params) => (await pool.query<Row>(numbered(sql), params)).rows,
      run: async (sql, params) => (await pool.query(numbered(sql), params)).rowCount ?? 0,
      close: () => pool.end(),
    });
  }
  const settings = storage.sqlite;
  const { default: Database } = await import('better-sqlite3');
  if (settings.path !== ':memory:') mkdirSync(dirname(settings.path), { recursive: true });
  const db = new Database(settings.path, { timeout: settings.busy_timeout });
  db.pragma('journal_mode = WAL');
  db.exec(`${TABLE}; ${INDEX};`);
  return new SqlAgentKeyStore({
    all: async (sql, params) => db.prepare<unknown[], Row>(sql).all(...params),
    run: async (sql, params) => db.prepare(sql).run(...params).changes,
    close: async () => {
      db.close();
    },
  });
}
