// `modelgate keys create|list|rotate|revoke`: service keys, through the
// gateway's /v1/service-keys API with the caller's own identity (an
// administrator: identity.service_keys.admin_groups). A key is printed once,
// alone on stdout so it can be piped into a secret store; the rest goes to
// stderr.
import { parseDuration } from '../config/units.js';
import { UsageError, type Command, type OptionValues as Values } from './command.js';
import { gatewayApiOptions, withGatewayApi, type GatewayApi } from './gateway-api.js';
import { printTable } from './review-view.js';
import { printable } from './terminal-text.js';

const ACTIONS = ['create', 'list', 'rotate', 'revoke'] as const;

interface KeyView {
  id: string;
  name: string;
  groups: string[];
  owner: { issuer: string; subject: string; email?: string };
  created_at: number;
  expires_at: number;
  replaced_by: string | null;
  revoked_at: number | null;
  key_prefix: string;
  state: string;
  key?: string;
  old_keys_end_at?: number;
}

export const keysCommand: Command = {
  name: 'keys',
  summary: 'Service keys for tools that cannot refresh a token: create (shown once), list, rotate, revoke.',
  usage: [
    'modelgate keys create NAME --groups a,b [--expires 90d] [--owner alice@example.com]',
    '       modelgate keys list [--json]',
    '       modelgate keys rotate NAME [--overlap 24h] [--expires 90d]',
    '       modelgate keys revoke NAME [--key-id ID]',
  ].join('\n'),
  options: {
    ...gatewayApiOptions,
    groups: { type: 'string', description: 'create: the service identity\'s groups, comma-separated (they decide its access)', valueName: 'a,b' },
    expires: { type: 'string', description: 'create/rotate: the key\'s lifetime (default: identity.service_keys.default_lifetime; rotate: the old key\'s)', valueName: 'duration' },
    owner: { type: 'string', description: 'create: the person responsible for it (default: you)', valueName: 'subject' },
    overlap: { type: 'string', description: 'rotate: how long the old key keeps working (default: identity.service_keys.rotation_overlap; 0 ends it now)', valueName: 'duration' },
    'key-id': { type: 'string', description: 'revoke: only this key (e.g. the old one after a rotation), not every key of the identity', valueName: 'id' },
  },
  async run(values, positionals) {
    const [action, name, ...extra] = positionals;
    if (!action || !(ACTIONS as readonly string[]).includes(action)) throw new UsageError(`give one of: ${ACTIONS.join(', ')}`);
    if (action !== 'list' && !name) throw new UsageError(`"keys ${action}" needs the service identity's name`);
    if (extra.length > 0 || (action === 'list' && name)) throw new UsageError(`unexpected argument "${extra[0] ?? name}"`);
    for (const option of ['expires', 'overlap'] as const) {
      const value = values[option];
      if (typeof value === 'string' && parseDuration(value) === undefined) throw new UsageError(`--${option} "${value}" is not a duration: use e.g. 90d, 24h, 30m`);
    }
    switch (action) {
      case 'create': {
        const groups = String(values.groups ?? '').split(',').map((g) => g.trim()).filter(Boolean);
        if (groups.length === 0) throw new UsageError('"keys create" needs --groups a,b: the groups decide what the service may use');
        const body = { name, groups, ...(typeof values.expires === 'string' && { expires: values.expires }), ...(typeof values.owner === 'string' && { owner: values.owner }) };
        return withGatewayApi('keys', values, async (api) => {
          const created = await api.post<KeyView>('/v1/service-keys', body);
          return showKey(created, values, `Created service identity "${printable(created.name)}" (groups ${created.groups.map(printable).join(', ')}; owner ${printable(ownerLabel(created))}); the key expires ${iso(created.expires_at)}.`);
        });
      }
      case 'rotate': {
        const body = { ...(typeof values.overlap === 'string' && { overlap: values.overlap }), ...(typeof values.expires === 'string' && { expires: values.expires }) };
        return withGatewayApi('keys', values, async (api) => {
          const rotated = await api.post<KeyView>(`/v1/service-keys/${encodeURIComponent(name!)}/rotate`, body);
          return showKey(rotated, values, `New key for "${printable(rotated.name)}", expiring ${iso(rotated.expires_at)}. The old key keeps working until ${iso(rotated.old_keys_end_at!)} unless revoked (modelgate keys revoke ${printable(rotated.name)} --key-id <old id>).`);
        });
      }
      case 'revoke': {
        const body = typeof values['key-id'] === 'string' ? { key_id: values['key-id'] } : {};
        return withGatewayApi('keys', values, async (api) => {
          const { revoked } = await api.post<{ revoked: number }>(`/v1/service-keys/${encodeURIComponent(name!)}/revoke`, body);
          console.error(`Revoked ${revoked} key(s) of "${printable(name!)}"; every gateway instance refuses them from now on.`);
          return 0;
        });
      }
      default:
        return withGatewayApi('keys', values, (api) => list(api, values));
    }
  },
};

function showKey(view: KeyView, values: Values, message: string): number {
  if (values.json) {
    console.log(JSON.stringify(view, null, 2));
    return 0;
  }
  console.error(`${message}\nThe key, shown only now (store it in a secret manager; the gateway keeps only its hash):`);
  console.log(view.key);
  return 0;
}

async function list(api: GatewayApi, values: Values): Promise<number> {
  const { data } = await api.get<{ data: KeyView[] }>('/v1/service-keys');
  if (values.json) {
    console.log(JSON.stringify(data, null, 2));
    return 0;
  }
  if (data.length === 0) {
    console.log('No service keys. Create one with "modelgate keys create NAME --groups a,b".');
    return 0;
  }
  printTable(
    ['NAME', 'KEY', 'GROUPS', 'OWNER', 'CREATED', 'EXPIRES', 'STATE'],
    data.map((k) => [k.name, k.key_prefix, k.groups.join(','), ownerLabel(k), iso(k.created_at), iso(k.expires_at), k.state].map(printable)),
  );
  return 0;
}

function ownerLabel(view: KeyView): string {
  return view.owner.email ?? view.owner.subject;
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
