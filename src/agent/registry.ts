// Agent keys' life cycle over the key store: create (shown once), rotate
// with an overlap so a running agent never goes dark, revoke, and the check
// a tunnel handshake makes. Pure rules here; the store only persists.
import { GatewayError } from '../http/errors.js';
import { keyIsLive, type AgentKeyRecord, type AgentKeyStore } from './key-store.js';
import { newAgentKey, parseAgentKey, secretMatches } from './keys.js';

export class AgentKeys {
  constructor(readonly store: AgentKeyStore) {}

  /** A new agent and its first key; the key is returned once and never stored. */
  async create(agent: string, connections: string[], now = Date.now()): Promise<{ record: AgentKeyRecord; key: string }> {
    if ((await this.liveKeys(agent, now)).length > 0) throw new Error(`agent "${agent}" exists; use "agents rotate" for a new key or "agents revoke" first`);
    return this.issue(agent, connections, now);
  }

  /** A new key for `agent`; its current keys keep working for `overlapMs`, then lapse. */
  async rotate(agent: string, overlapMs: number, now = Date.now()): Promise<{ record: AgentKeyRecord; key: string; oldKeysExpireAt: number }> {
    const live = await this.liveKeys(agent, now);
    if (live.length === 0) throw new Error(`agent "${agent}" has no live key; create it again`);
    const issued = await this.issue(agent, live[0]!.connections, now);
    for (const old of live) await this.store.expire(old.id, now + overlapMs);
    return { ...issued, oldKeysExpireAt: now + overlapMs };
  }

  revoke(agent: string, now = Date.now()): Promise<number> {
    return this.store.revokeAgent(agent, now);
  }

  list(): Promise<AgentKeyRecord[]> {
    return this.store.list();
  }

  /** The key's record when it is genuine and live; otherwise a 401 naming why. */
  async authenticate(key: string | undefined, now = Date.now()): Promise<AgentKeyRecord> {
    const parsed = key ? parseAgentKey(key) : undefined;
    const record = parsed ? await this.store.get(parsed.id) : undefined;
    if (!parsed || !record || !secretMatches(parsed.secret, record.hash)) {
      throw new GatewayError('Unknown agent key. Create one with "modelgate agents create NAME --connections a,b".', { status: 401, type: 'authentication_error', code: 'invalid_agent_key' });
    }
    if (!keyIsLive(record, now)) {
      throw new GatewayError(`The key of agent "${record.agent}" was ${record.revoked_at !== null ? 'revoked' : 'rotated and has expired'}.`, {
        status: 401,
        type: 'authentication_error',
        code: record.revoked_at !== null ? 'agent_key_revoked' : 'agent_key_expired',
      });
    }
    return record;
  }

  private async liveKeys(agent: string, now: number): Promise<AgentKeyRecord[]> {
    return (await this.store.list()).filter((r) => r.agent === agent && keyIsLive(r, now));
  }

  private async issue(agent: string, connections: string[], now: number): Promise<{ record: AgentKeyRecord; key: string }> {
    const { id, key, hash } = newAgentKey();
    const record: AgentKeyRecord = { id, agent, hash, connections, created_at: now, expires_at: null, revoked_at: null };
    await this.store.insert(record);
    return { record, key };
  }
}
