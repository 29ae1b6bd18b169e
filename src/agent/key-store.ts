// Where agent keys live: the `storage:` database every gateway instance
// shares, so a key created or revoked with the CLI is seen by all of them.
// One row per key; an agent has one key, or two while a rotation overlaps.
import type { StorageConfig } from '../audit/config.js';
import { openAgentDb, type AgentDb } from './agent-db.js';

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

class SqlAgentKeyStore implements AgentKeyStore {
  constructor(private readonly sql: AgentDb) {}

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
    const [row] = await this.sql.all<Row>(`SELECT ${COLUMNS} FROM agent_keys WHERE id = ?`, [id]);
    return row ? fromRow(row) : undefined;
  }

  async list(): Promise<AgentKeyRecord[]> {
    return (await this.sql.all<Row>(`SELECT ${COLUMNS} FROM agent_keys ORDER BY created_at DESC, id`, [])).map(fromRow);
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
export async function openAgentKeyStore(storage: StorageConfig): Promise<AgentKeyStore> {
  return new SqlAgentKeyStore(await openAgentDb(storage, [TABLE, INDEX], 'modelgate-agents'));
}
