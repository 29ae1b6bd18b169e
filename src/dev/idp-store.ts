// In-memory storage for the development IdP. One store outlives the Provider
// instances that key rotation creates, so sessions, grants, codes and refresh
// tokens survive a rotation. Nothing touches the disk.
import type { Adapter, AdapterPayload } from 'oidc-provider';

interface Entry {
  payload: AdapterPayload;
  /** Epoch milliseconds; undefined means it never expires. */
  expiresAt: number | undefined;
}

const SWEEP_INTERVAL_MS = 60_000;

export class DevIdpStore {
  private readonly entries = new Map<string, Entry>();
  private readonly sessionKeyByUid = new Map<string, string>();
  private readonly deviceCodeKeyByUserCode = new Map<string, string>();
  /** Keys of the tokens and codes issued under each grant, for revokeByGrantId. */
  private readonly keysByGrant = new Map<string, Set<string>>();
  private lastSweepAt = Date.now();

  /** The `adapter` factory oidc-provider expects: one adapter per model name. */
  readonly adapterFactory = (modelName: string): Adapter => new ModelAdapter(this, modelName);

  get(key: string): AdapterPayload | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      this.delete(key);
      return undefined;
    }
    return entry.payload;
  }

  set(key: string, payload: AdapterPayload, expiresInSeconds: number | undefined): void {
    this.sweepExpired();
    this.delete(key);
    const expiresAt = expiresInSeconds === undefined ? undefined : Date.now() + expiresInSeconds * 1000;
    this.entries.set(key, { payload, expiresAt });
    if (typeof payload.uid === 'string' && key.startsWith('Session:')) this.sessionKeyByUid.set(payload.uid, key);
    if (typeof payload.userCode === 'string') this.deviceCodeKeyByUserCode.set(payload.userCode, key);
    if (typeof payload.grantId === 'string') {
      const keys = this.keysByGrant.get(payload.grantId) ?? new Set<string>();
      keys.add(key);
      this.keysByGrant.set(payload.grantId, keys);
    }
  }

  delete(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    const { uid, userCode, grantId } = entry.payload;
    if (typeof uid === 'string' && this.sessionKeyByUid.get(uid) === key) this.sessionKeyByUid.delete(uid);
    if (typeof userCode === 'string' && this.deviceCodeKeyByUserCode.get(userCode) === key) {
      this.deviceCodeKeyByUserCode.delete(userCode);
    }
    if (typeof grantId === 'string') {
      const keys = this.keysByGrant.get(grantId);
      keys?.delete(key);
      if (keys?.size === 0) this.keysByGrant.delete(grantId);
    }
  }

  keyForSessionUid(uid: string): string | undefined {
    return this.sessionKeyByUid.get(uid);
  }

  keyForUserCode(userCode: string): string | undefined {
    return this.deviceCodeKeyByUserCode.get(userCode);
  }

  deleteGrant(grantId: string): void {
    for (const key of [...(this.keysByGrant.get(grantId) ?? [])]) this.delete(key);
    this.keysByGrant.delete(grantId);
  }

  /** Drops expired entries now and then, so a long `modelgate dev` run does not grow forever. */
  private sweepExpired(): void {
    const now = Date.now();
    if (now - this.lastSweepAt < SWEEP_INTERVAL_MS) return;
    this.lastSweepAt = now;
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt !== undefined && entry.expiresAt <= now) this.delete(key);
    }
  }
}

class ModelAdapter implements Adapter {
  constructor(
    private readonly store: DevIdpStore,
    private readonly modelName: string,
  ) {}

  private key(id: string): string {
    return `${this.modelName}:${id}`;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number | undefined): Promise<void> {
    // Copies in and out, as a database would, so nobody mutates stored state by accident.
    this.store.set(this.key(id), structuredClone(payload), expiresIn);
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const payload = this.store.get(this.key(id));
    return payload && structuredClone(payload);
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    const key = this.store.keyForSessionUid(uid);
    const payload = key === undefined ? undefined : this.store.get(key);
    return payload && structuredClone(payload);
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    const key = this.store.keyForUserCode(userCode);
    const payload = key === undefined ? undefined : this.store.get(key);
    return payload && structuredClone(payload);
  }

  async consume(id: string): Promise<void> {
    const payload = this.store.get(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id: string): Promise<void> {
    this.store.delete(this.key(id));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    this.store.deleteGrant(grantId);
  }
}
