// `modelgate agents create|list|rotate|revoke`: agent keys, in the storage
// database every gateway instance reads. A key is printed once and only its
// hash is kept; connected gateways notice a revocation within
// agents.key_check_interval and cut the agent.
import { openAgentKeyStore, keyIsLive, type AgentKeyRecord } from '../agent/key-store.js';
import { AgentKeys } from '../agent/registry.js';
import { parseDuration } from '../config/units.js';
import { loadConfigOrReport } from './config-file.js';
import { configOption, UsageError, type Command } from './command.js';
import { EXIT_CONFIG } from './gateway.js';

function state(record: AgentKeyRecord, now: number): string {
  if (record.revoked_at !== null) return `revoked ${new Date(record.revoked_at).toISOString()}`;
  if (record.expires_at !== null) return keyIsLive(record, now) ? `expires ${new Date(record.expires_at).toISOString()}` : 'expired';
  return 'live';
}

export const agentsCommand: Command = {
  name: 'agents',
  summary: 'Manage agent keys: create (shown once), list, rotate, revoke.',
  usage: 'modelgate agents (create NAME --connections a,b | list | rotate NAME [--overlap 1h] | revoke NAME) [--config modelgate.yaml]',
  options: {
    config: configOption('The gateway configuration (for storage and connection names)'),
    connections: { type: 'string', description: 'create: the connections the agent may serve, comma-separated', valueName: 'a,b' },
    overlap: { type: 'string', description: 'rotate: how long the old key keeps working', valueName: 'duration', default: '1h' },
    json: { type: 'boolean', description: 'list: print JSON' },
  },
  async run(values, positionals) {
    const [action, name, ...extra] = positionals;
    if (!action || !['create', 'list', 'rotate', 'revoke'].includes(action)) throw new UsageError('give one of: create, list, rotate, revoke');
    if (action !== 'list' && !name) throw new UsageError(`"agents ${action}" needs the agent's name`);
    if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const config = await loadConfigOrReport(String(values.config));
    if (!config) return EXIT_CONFIG;
    const agentServed = new Set(config.connections.filter((c) => c.targets.some((t) => t.via === 'agent')).map((c) => c.name));
    const keys = new AgentKeys(await openAgentKeyStore(config.storage));
    try {
      const now = Date.now();
      switch (action) {
        case 'create': {
          const connections = String(values.connections ?? '').split(',').map((c) => c.trim()).filter(Boolean);
          if (connections.length === 0) throw new UsageError('"agents create" needs --connections a,b');
          const unknown = connections.filter((c) => !agentServed.has(c));
          if (unknown.length > 0) throw new UsageError(`not a connection served "via: agent" in this configuration: ${unknown.join(', ')}`);
          const { key } = await keys.create(name!, connections, now);
          console.log(`Created agent "${name}" for ${connections.join(', ')}. Its key, shown only now:\n\n  ${key}\n\nRun beside the model: MODELGATE_AGENT_KEY=<key> modelgate agent --gateway <agents URL> --serve ${connections[0]}=http://127.0.0.1:8000`);
          return 0;
        }
        case 'rotate': {
          const overlap = parseDuration(String(values.overlap));
          if (overlap === undefined) throw new UsageError(`--overlap "${String(values.overlap)}" is not a duration`);
          const { key, oldKeysExpireAt } = await keys.rotate(name!, overlap, now);
          console.log(`New key for agent "${name}", shown only now:\n\n  ${key}\n\nThe old key works until ${new Date(oldKeysExpireAt).toISOString()}. Put the new one in the agent's key file (it switches without dropping requests).`);
          return 0;
        }
        case 'revoke': {
          const revoked = await keys.revoke(name!, now);
          if (revoked === 0) {
            console.error(`modelgate agents: agent "${name}" has no live key`);
            return 1;
          }
          const seconds = Math.max(1, Math.ceil((config.agents?.key_check_interval ?? 1000) / 1000));
          console.log(`Revoked agent "${name}" (${revoked} key(s)); connected gateways cut it within ${seconds}s.`);
          return 0;
        }
        default: {
          const records = await keys.list();
          if (values.json) {
            console.log(JSON.stringify(records.map((r) => ({ ...r, hash: undefined, state: state(r, now) })), null, 2));
            return 0;
          }
          if (records.length === 0) {
            console.log('No agents. Create one with "modelgate agents create NAME --connections a,b".');
            return 0;
          }
          const rows = [['AGENT', 'KEY', 'CONNECTIONS', 'CREATED', 'STATE'], ...records.map((r) => [r.agent, `mga_${r.id}_…`, r.connections.join(','), new Date(r.created_at).toISOString(), state(r, now)])];
          const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
          for (const row of rows) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
          return 0;
        }
      }
    } catch (err) {
      if (err instanceof UsageError) throw err;
      console.error(`modelgate agents: ${(err as Error).message}`);
      return 1;
    } finally {
      await keys.store.close();
    }
  },
};
