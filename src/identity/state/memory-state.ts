// Identity state in this process only: for `modelgate dev`, tests, and a
// single gateway instance that may forget sessions on restart.
import type { IdentityState, RecordKind, Revocation, StoredSigningKey } from './identity-state.js';

interface StoredRecord {
  value: string;
  expiresAt: number;
}

export class MemoryIdentityState implements IdentityState {
  readonly kind = 'memory';
  private readonly keys = new Map<string, StoredSigningKey>();
  private readonly revoked = new Map<string, Revocation>();
  private readonly records = new Map<string, StoredRecord>();

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

  async purgeExpired(now: number): Promise<void> {
    for (const [id, record] of this.records) if (record.expiresAt <= now) this.records.delete(id);
    for (const [scope, revocation] of this.revoked) if (revocation.expiresAt <= now) this.revoked.delete(scope);
  }

  async close(): Promise<void> {}
}

function recordId(kind: RecordKind, key: string): string {
  return `${kind}\n${key}`;
}
