// Identity state in this process only: for `modelgate dev`, tests, and a
// single gateway instance that may forget sessions on restart.
import type { IdentityState, RecordKind, Revocation, ServiceKeyRecord, StoredSigningKey } from './identity-state.js';

interface StoredRecord {
  value: string;
  expiresAt: number;
}

export class MemoryIdentityState implements IdentityState {
  readonly kind = 'memory';
  private readonly keys = new Map<string, StoredSigningKey>();
  private readonly revoked = new Map<string, Revocation>();
  private readonly records = new Map<string, StoredRecord>();
  private readonly serviceKeyRecords = new Map<string, ServiceKeyRecord>();

  async init(): Promise<void> {}

  async signingKeys(): Promise<StoredSigningKey[]> {
    return [...this.keys.values()].sort((a, b) => a.activatesAt - b.activatesAt).map((key) => structuredClone(key));
  }

  async addSigningKey(key: StoredSigningKey): Promise<boolean> {
    if ([...this.keys.values()].some((existing) => existing.activatesAt === key.activatesAt)) return false;
    this.keys.set(key.kid, structuredClone(key));
    return true;
  }

  async deleteSigningKey(kid: string): Promise<void> {
    this.keys.delete(kid);
  }

  async revocations(now: number): Promise<Revocation[]> {
    return [...this.revoked.values()].filter((r) => r.expiresAt > now).map((r) => ({ ...r }));
  }

  async revoke(revocation: Revocation): Promise<void> {
    const existing = this.revoked.get(revocation.scope);
    this.revoked.set(revocation.scope, {
      scope: revocation.scope,
      revokedBefore: Math.max(existing?.revokedBefore ?? 0, revocation.revokedBefore),
      expiresAt: Math.max(existing?.expiresAt ?? 0, revocation.expiresAt),
    });
  }

  async put(kind: RecordKind, key: string, value: string, expiresAt: number): Promise<void> {
    this.records.set(recordId(kind, key), { value, expiresAt });
  }

  async putIfAbsent(kind: RecordKind, key: string, value: string, expiresAt: number, now: number): Promise<boolean> {
    const existing = this.records.get(recordId(kind, key));
    if (existing && existing.expiresAt > now) return false;
    this.records.set(recordId(kind, key), { value, expiresAt });
    return true;
  }

  async get(kind: RecordKind, key: string, now: number): Promise<string | undefined> {
    const record = this.records.get(recordId(kind, key));
    return record && record.expiresAt > now ? record.value : undefined;
  }

  async take(kind: RecordKind, key: string, now: number): Promise<string | undefined> {
    const record = this.records.get(recordId(kind, key));
    this.records.delete(recordId(kind, key));
    return record && record.expiresAt > now ? record.value : undefined;
  }

  async delete(kind: RecordKind, key: string): Promise<void> {
    this.records.delete(recordId(kind, key));
  }

  async insertServiceKey(record: ServiceKeyRecord): Promise<void> {
    if (this.serviceKeyRecords.has(record.id)) throw new Error(`service key ${record.id} exists`);
    this.serviceKeyRecords.set(record.id, structuredClone(record));
  }

  async serviceKey(id: string): Promise<ServiceKeyRecord | undefined> {
    const record = this.serviceKeyRecords.get(id);
    return record && structuredClone(record);
  }

  async serviceKeys(): Promise<ServiceKeyRecord[]> {
    return [...this.serviceKeyRecords.values()].sort((a, b) => b.created_at - a.created_at || a.id.localeCompare(b.id)).map((r) => structuredClone(r));
  }

  async replaceServiceKeys(name: string, replacedBy: string, at: number, now: number): Promise<number> {
    let changed = 0;
    for (const r of this.liveServiceKeys(name, now)) {
      if (r.id === replacedBy || r.expires_at <= at) continue;
      r.expires_at = at;
      r.replaced_by = replacedBy;
      changed++;
    }
    return changed;
  }

  async revokeServiceKeys(name: string, now: number, id?: string): Promise<number> {
    let changed = 0;
    for (const r of this.liveServiceKeys(name, now)) {
      if (id !== undefined && r.id !== id) continue;
      r.revoked_at = now;
      changed++;
    }
    return changed;
  }

  private liveServiceKeys(name: string, now: number): ServiceKeyRecord[] {
    return [...this.serviceKeyRecords.values()].filter((r) => r.name === name && r.revoked_at === null && r.expires_at > now);
  }

  async purgeExpired(now: number): Promise<void> {
    for (const [id, record] of this.records) if (record.expiresAt <= now) this.records.delete(id);
    for (const [scope, revocation] of this.revoked) if (revocation.expiresAt <= now) this.revoked.delete(scope);
  }

  async close(): Promise<void> {}
}

function recordId(kind: RecordKind, key: string): string {
  return `${kind}\n${key}`;
}
