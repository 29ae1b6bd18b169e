// Which instance holds agents for which connection, in the `storage:`
// database all instances share. Each instance claims its connections with a
// lease it renews; a killed instance's claims lapse on their own. Readers
// cache briefly, and keep the last answer while the database is away, so a
// database outage does not cut routing that was working.
import type { StorageConfig } from '../audit/config.js';
import { openAgentDb, type AgentDb } from './agent-db.js';

export interface RouteHolder {
  instance: string;
  /** The holder's internal routing listener. */
  address: string;
  agents: number;
  /** Its lease lapsed (less than a lease ago): tried only after every live holder. */
  lapsed: boolean;
}

const TABLE = `CREATE TABLE IF NOT EXISTS agent_routes (
  instance TEXT NOT NULL,
  connection TEXT NOT NULL,
  address TEXT NOT NULL,
  agents INTEGER NOT NULL,
  expires_at BIGINT NOT NULL,
  PRIMARY KEY (instance, connection)
)`;
const INDEX = 'CREATE INDEX IF NOT EXISTS agent_routes_connection ON agent_routes (connection, expires_at)';
/** How long a read is reused before asking the database again. */
const READ_CACHE_MS = 500;

export class RouteTable {
  private readonly cache = new Map<string, { at: number; holders: RouteHolder[] }>();

  private constructor(
    private readonly db: AgentDb,
    readonly instance: string,
    private readonly address: string,
    private readonly leaseMs: number,
  ) {}

  static async open(storage: StorageConfig, instance: string, address: string, leaseMs: number): Promise<RouteTable> {
    return new RouteTable(await openAgentDb(storage, [TABLE, INDEX], 'modelgate-agent-routes'), instance, address, leaseMs);
  }

  /** Claims (or renews) `held` connections for this instance and withdraws every other claim it had. */
  async publish(held: ReadonlyMap<string, number>, now = Date.now()): Promise<void> {
    const expires = now + this.leaseMs;
    for (const [connection, agents] of held) {
      await this.db.run(
        `INSERT INTO agent_routes (instance, connection, address, agents, expires_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (instance, connection) DO UPDATE SET address = excluded.address, agents = excluded.agents, expires_at = excluded.expires_at`,
        [this.instance, connection, this.address, agents, expires],
      );
    }
    const names = [...held.keys()];
    await this.db.run(`DELETE FROM agent_routes WHERE instance = ?${names.length ? ` AND connection NOT IN (${names.map(() => '?').join(', ')})` : ''}`, [this.instance, ...names]);
  }

  /**
   * Other instances with a live claim on `connection`, most agents first;
   * then those whose claim lapsed less than a lease ago, latest first. A
   * lapsed claim may be a holder that could not renew (the database was
   * away for it too, and it renews only once it is back): worth a try
   * before answering that no agent is connected. A holder that has no agent
   * answers "not started" and a dead one refuses the connection, so a wrong
   * guess costs one hop. Claims withdrawn (agent gone, clean stop) are deleted, never tried.
   */
  async holders(connection: string, now = Date.now()): Promise<RouteHolder[]> {
    const cached = this.cache.get(connection);
    if (cached && now - cached.at < READ_CACHE_MS) return cached.holders;
    try {
      const rows = await this.db.all<{ instance: string; address: string; agents: number | string; expires_at: number | string }>(
        `SELECT instance, address, agents, expires_at FROM agent_routes WHERE connection = ? AND expires_at > ? AND instance <> ?
         ORDER BY CASE WHEN expires_at > ? THEN 0 ELSE 1 END, CASE WHEN expires_at > ? THEN agents ELSE 0 END DESC, expires_at DESC, instance`,
        [connection, now - this.leaseMs, this.instance, now, now],
      );
      const holders = rows.map((r) => ({ instance: r.instance, address: r.address, agents: Number(r.agents), lapsed: Number(r.expires_at) <= now }));
      this.cache.set(connection, { at: now, holders });
      return holders;
    } catch (err) {
      // The database is away: the last answer is better than none while its leases would still hold.
      if (cached && now - cached.at < this.leaseMs) return cached.holders;
      throw err;
    }
  }

  /** Forgets this instance's claims (clean shutdown); a crash leaves them to lapse. */
  async withdraw(): Promise<void> {
    await this.db.run('DELETE FROM agent_routes WHERE instance = ?', [this.instance]);
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
