// The gateway's own signing keys, kept in the shared identity state so every
// instance signs and verifies with the same set. Rotation is lazy and safe
// to race: the next key is published `key_prepublish` before it signs (so
// verifiers that cache the JWKS already have it), its activation time is
// unique in the store (one instance wins), and an old key stays published
// until every token it signed has expired.
import { calculateJwkThumbprint, errors, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK, type JWTVerifyGetKey } from 'jose';
import type { GatewayTokensConfig } from '../config/identity-schema.js';
import type { IdentityState, StoredSigningKey } from './state/identity-state.js';

export interface SigningKey {
  kid: string;
  alg: string;
  key: CryptoKey;
}

/** Reloads triggered by unknown `kid`s happen at most this often, so forged kids cannot hammer the store. */
const UNKNOWN_KID_RELOAD_MS = 1_000;

export class GatewaySigningKeys {
  private keys: StoredSigningKey[] = [];
  private loadedAt = Number.NEGATIVE_INFINITY;
  private unknownKidReloadAt = Number.NEGATIVE_INFINITY;
  private loading: Promise<void> | undefined;
  private readonly imported = new Map<string, Promise<CryptoKey>>();

  constructor(
    private readonly state: IdentityState,
    private readonly config: GatewayTokensConfig,
    /** How long after a key stops signing its tokens may still be valid (longest token lifetime plus clock skew). */
    private readonly retentionMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The key to sign with now, creating or rotating keys as the schedule says. */
  async current(): Promise<SigningKey> {
    await this.refreshIfStale();
    await this.rotateIfDue();
    const active = this.activeKey();
    if (!active) throw new Error('no active gateway signing key after rotation');
    return { kid: active.kid, alg: active.alg, key: await this.importPrivate(active) };
  }

  /** Public keys of every key that signs now, will sign soon, or signed tokens that are still valid. */
  async publicJwks(): Promise<{ keys: JWK[] }> {
    await this.refreshIfStale();
    return { keys: this.publishedKeys().map((k) => ({ ...k.publicJwk })) };
  }

  /** A jose key resolver over the published keys; an unknown `kid` rereads the store at a bounded rate. */
  resolver(): JWTVerifyGetKey {
    return async (header) => {
      await this.refreshIfStale();
      let found = this.publishedKeys().find((k) => k.kid === header.kid);
      // Another instance may have just made a key (first key, or an emergency rotation).
      if (!found && this.now() - this.unknownKidReloadAt >= UNKNOWN_KID_RELOAD_MS) {
        this.unknownKidReloadAt = this.now();
        await this.reload();
        found = this.publishedKeys().find((k) => k.kid === header.kid);
      }
      if (!found) throw new errors.JWKSNoMatchingKey();
      if (found.alg !== header.alg) throw new errors.JOSEAlgNotAllowed();
      return importJWK(found.publicJwk, found.alg) as Promise<CryptoKey>;
    };
  }

  /** Makes a new key that signs from now on, e.g. after a suspected key leak. Old tokens stay valid until revoked. */
  async rotateNow(): Promise<void> {
    await this.reload();
    const latest = this.keys.at(-1)?.activatesAt ?? 0;
    await this.addKey(Math.max(this.now(), latest + 1));
  }

  /**
   * After a suspected key leak: deletes every key, so nothing they signed
   * verifies once instances resync, and starts a new one. Revoking tokens is
   * not enough then, as whoever holds the key can mint new ones.
   */
  async replaceAllKeys(): Promise<void> {
    await this.reload();
    for (const key of this.keys) await this.state.deleteSigningKey(key.kid);
    this.imported.clear();
    await this.addKey(this.now());
  }

  /** Rereads keys from the shared store and deletes keys that nothing can need any more. */
  async reload(): Promise<void> {
    this.loading ??= (async () => {
      try {
        this.keys = sortKeys(await this.state.signingKeys());
        this.loadedAt = this.now();
        for (const expired of this.expiredKeys()) await this.state.deleteSigningKey(expired.kid);
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }

  private async refreshIfStale(): Promise<void> {
    if (this.now() - this.loadedAt >= this.config.sync_interval) await this.reload();
  }

  private async rotateIfDue(): Promise<void> {
    const now = this.now();
    const active = this.activeKey();
    if (!active) {
      // First key ever (or every key expired): it has to sign at once.
      await this.addKey(now);
      return;
    }
    const successor = this.keys.find((k) => k.activatesAt > active.activatesAt);
    if (successor) return;
    if (now >= active.activatesAt + this.config.key_rotation - this.config.key_prepublish) {
      await this.addKey(Math.max(active.activatesAt + this.config.key_rotation, now + this.config.key_prepublish));
    }
  }

  private async addKey(activatesAt: number): Promise<void> {
    const alg = this.config.algorithm;
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const publicJwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(publicJwk);
    await this.state.addSigningKey({
      kid,
      alg,
      privateJwk: { ...(await exportJWK(privateKey)), kid, alg },
      publicJwk: { ...publicJwk, kid, alg, use: 'sig' },
      createdAt: this.now(),
      activatesAt,
    });
    // Whether this instance won or another did, the store now has the key to use.
    await this.reload();
  }

  /** The newest key whose activation time has come. */
  private activeKey(): StoredSigningKey | undefined {
    const now = this.now();
    return this.keys.filter((k) => k.activatesAt <= now).at(-1);
  }

  private publishedKeys(): StoredSigningKey[] {
    const expired = new Set(this.expiredKeys().map((k) => k.kid));
    return this.keys.filter((k) => !expired.has(k.kid));
  }

  /** Keys replaced by a successor so long ago that no token they signed can still be valid. */
  private expiredKeys(): StoredSigningKey[] {
    const now = this.now();
    return this.keys.filter((key, i) => {
      const successor = this.keys[i + 1];
      return successor !== undefined && successor.activatesAt <= now && successor.activatesAt + this.retentionMs <= now;
    });
  }

  private importPrivate(key: StoredSigningKey): Promise<CryptoKey> {
    let imported = this.imported.get(key.kid);
    if (!imported) {
      imported = importJWK(key.privateJwk, key.alg) as Promise<CryptoKey>;
      this.imported.set(key.kid, imported);
    }
    return imported;
  }
}

/** By activation time, then kid: every instance picks the same signing key. */
function sortKeys(keys: StoredSigningKey[]): StoredSigningKey[] {
  return [...keys].sort((a, b) => a.activatesAt - b.activatesAt || (a.kid < b.kid ? -1 : a.kid > b.kid ? 1 : 0));
}
