// Service keys: long-lived `mgk_…` keys for tools that cannot refresh a
// short-lived token (a notebook server, a legacy app). Each key authenticates
// as a named service identity with its own groups, and carries the person who
// created it, so its requests are recorded under both. Only a hash is stored,
// in the identity state every instance shares; each request reads its key's
// record, so a revocation holds at once on every instance.
import type { ServiceKeysConfig } from '../config/identity-schema.js';
import { GatewayError } from '../http/errors.js';
import { invalidToken } from './errors.js';
import type { Principal } from './principal.js';
import { newSecretKey, parseSecretKey, secretMatches } from './secret-key.js';
import type { IdentityState, ServiceKeyRecord } from './state/identity-state.js';

export const SERVICE_KEY_PREFIX = 'mgk';
/** The issuer recorded for service identities: no token issuer can claim it (it is not a URL). */
export const SERVICE_KEY_ISSUER = 'modelgate:service-keys';
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export type ServiceKeyOwner = ServiceKeyRecord['owner'];

export function looksLikeServiceKey(token: string): boolean {
  return token.startsWith(`${SERVICE_KEY_PREFIX}_`);
}

export function serviceKeyState(record: ServiceKeyRecord, now: number): 'live' | 'revoked' | 'replaced' | 'expired' {
  if (record.revoked_at !== null) return 'revoked';
  if (record.expires_at > now) return 'live';
  return record.replaced_by !== null ? 'replaced' : 'expired';
}

/** What an administrator gets to see of a key: everything but its hash. */
export function describeServiceKey(record: ServiceKeyRecord, now: number) {
  const { hash: _hash, ...rest } = record;
  return { ...rest, key_prefix: `${SERVICE_KEY_PREFIX}_${record.id}_…`, state: serviceKeyState(record, now) };
}

/** A management request the rules refuse, as the API answers it. */
function refused(message: string, status: 400 | 404 | 409, code: string): GatewayError {
  return new GatewayError(message, { status, type: status === 404 ? 'not_found_error' : 'invalid_request_error', code });
}

export class ServiceKeys {
  constructor(
    private readonly state: IdentityState,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new service identity and its first key; the key is returned once and never stored. */
  async create(request: { name: string; groups: string[]; lifetimeMs?: number; owner: ServiceKeyOwner }, config: ServiceKeysConfig): Promise<{ record: ServiceKeyRecord; key: string }> {
    checkName(request.name);
    const groups = checkGroups(request.groups);
    const lifetime = checkLifetime(request.lifetimeMs ?? config.default_lifetime, config);
    const now = this.now();
    if ((await this.live(request.name, now)).length > 0) {
      throw refused(`The service identity "${request.name}" exists; rotate its key ("modelgate keys rotate ${request.name}") or revoke it first.`, 409, 'service_key_exists');
    }
    return this.issue(request.name, groups, request.owner, now, lifetime);
  }

  /**
   * A new key for `name`, with the same groups and owner; the old keys keep
   * working for `overlapMs` (or until revoked, or until they expire if sooner).
   */
  async rotate(name: string, request: { overlapMs?: number; lifetimeMs?: number }, config: ServiceKeysConfig): Promise<{ record: ServiceKeyRecord; key: string; oldKeysEndAt: number }> {
    const now = this.now();
    const live = await this.live(name, now);
    const newest = live[0];
    if (!newest) throw refused(`The service identity "${name}" has no live key; create it again with "modelgate keys create".`, 404, 'service_key_not_found');
    const overlap = request.overlapMs ?? config.rotation_overlap;
    if (overlap > config.max_lifetime) throw refused('The overlap is longer than identity.service_keys.max_lifetime.', 400, 'service_key_overlap_invalid');
    const lifetime = checkLifetime(request.lifetimeMs ?? newest.expires_at - newest.created_at, config);
    const issued = await this.issue(name, newest.groups, newest.owner, now, lifetime);
    await this.state.replaceServiceKeys(name, issued.record.id, now + overlap, now);
    return { ...issued, oldKeysEndAt: now + overlap };
  }

  /** Revokes every live key of `name`, or the one with `id`; returns how many. */
  async revoke(name: string, id?: string): Promise<number> {
    const revoked = await this.state.revokeServiceKeys(name, this.now(), id);
    if (revoked === 0) throw refused(`The service identity "${name}" has no live key${id ? ` with id ${id}` : ''}.`, 404, 'service_key_not_found');
    return revoked;
  }

  list(): Promise<ServiceKeyRecord[]> {
    return this.state.serviceKeys();
  }

  /** The service identity of a genuine, live key; otherwise a 401 that says why. */
  async authenticate(key: string): Promise<Principal> {
    const parsed = parseSecretKey(SERVICE_KEY_PREFIX, key);
    const record = parsed ? await this.state.serviceKey(parsed.id) : undefined;
    if (!parsed || !record || !secretMatches(parsed.secret, record.hash)) {
      throw invalidToken('service_key_invalid', 'This service key is not known to the gateway. Check that it was copied whole; an administrator can list keys with "modelgate keys list".');
    }
    const now = this.now();
    const owner = record.owner.email ?? record.owner.subject;
    switch (serviceKeyState(record, now)) {
      case 'revoked':
        throw invalidToken('service_key_revoked', `The key of service identity "${record.name}" was revoked at ${iso(record.revoked_at!)}. Ask its owner (${owner}) for a new one.`);
      case 'replaced':
        throw invalidToken('service_key_expired', `The key of service identity "${record.name}" was replaced by a rotation and stopped working at ${iso(record.expires_at)}. Use the new key.`);
      case 'expired':
        throw invalidToken('service_key_expired', `The key of service identity "${record.name}" expired at ${iso(record.expires_at)}. Ask its owner (${owner}) to rotate it: modelgate keys rotate ${record.name}`);
      case 'live':
        break;
    }
    return {
      issuer: SERVICE_KEY_ISSUER,
      subject: record.name,
      groups: [...record.groups],
      tokenId: record.id,
      expiresAt: Math.floor(record.expires_at / 1000),
      method: 'service_key',
      owner: record.owner,
    };
  }

  private async issue(name: string, groups: string[], owner: ServiceKeyOwner, now: number, lifetime: number): Promise<{ record: ServiceKeyRecord; key: string }> {
    const { id, key, hash } = newSecretKey(SERVICE_KEY_PREFIX);
    const record: ServiceKeyRecord = { id, name, groups, owner, hash, created_at: now, expires_at: now + lifetime, replaced_by: null, revoked_at: null };
    await this.state.insertServiceKey(record);
    return { record, key };
  }

  private async live(name: string, now: number): Promise<ServiceKeyRecord[]> {
    return (await this.state.serviceKeys()).filter((r) => r.name === name && serviceKeyState(r, now) === 'live');
  }
}

function checkName(name: string): void {
  if (!NAME.test(name)) throw refused(`"${name}" is not a valid service identity name: use 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit.`, 400, 'service_key_name_invalid');
}

function checkGroups(groups: string[]): string[] {
  const clean = [...new Set(groups.map((g) => g.trim()).filter(Boolean))];
  if (clean.length === 0) throw refused('A service identity needs at least one group: its groups decide what it may use, like a person\'s.', 400, 'service_key_groups_missing');
  return clean;
}

function checkLifetime(ms: number, config: ServiceKeysConfig): number {
  if (!Number.isFinite(ms) || ms <= 0) throw refused('A key\'s lifetime must be positive, e.g. 90d.', 400, 'service_key_lifetime_invalid');
  if (ms > config.max_lifetime) {
    throw refused(`A key may live at most ${Math.floor(config.max_lifetime / 86_400_000)}d (identity.service_keys.max_lifetime).`, 400, 'service_key_lifetime_invalid');
  }
  return ms;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
