// The identity state several gateway instances share: gateway signing keys,
// token revocations, and short-lived records (browser sessions, pending
// logins, SAML request IDs, seen assertion IDs). Memory for one process,
// SQLite for one host, PostgreSQL for a fleet; all with identity_* tables.
import type { JWK } from 'jose';

export interface StoredSigningKey {
  kid: string;
  alg: string;
  privateJwk: JWK;
  publicJwk: JWK;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms from which this key signs. Unique: two instances rotating at once cannot both win. */
  activatesAt: number;
}

export interface Revocation {
  /** `all`, or `subject:<sub>`. */
  scope: string;
  /** Epoch seconds: tokens issued at or before this are refused. */
  revokedBefore: number;
  /** Epoch ms after which no affected token can still be valid, so the record may go. */
  expiresAt: number;
}

/** A service key's stored form: never the key itself, only the SHA-256 of its secret part. */
export interface ServiceKeyRecord {
  /** The public part of the key, `mgk_<id>_…`. */
  id: string;
  /** The service identity the key authenticates as. */
  name: string;
  groups: string[];
  /** Who created the service identity; requests with its keys are recorded under them too. */
  owner: { issuer: string; subject: string; email?: string };
  /** SHA-256 (hex) of the key's secret part. */
  hash: string;
  /** Epoch ms. */
  created_at: number;
  /** Epoch ms: the key's end, set at creation and brought forward by a rotation's overlap. */
  expires_at: number;
  /** Set on the old key by a rotation: the key that replaced it. */
  replaced_by: string | null;
  revoked_at: number | null;
}

/** Kinds of short-lived records, each its own namespace. */
export type RecordKind = 'session' | 'oidc_login' | 'saml_request' | 'saml_assertion' | 'saml_login';

export interface IdentityState {
  readonly kind: 'memory' | 'sqlite' | 'postgres';
  /** Creates the tables if they do not exist. Idempotent, safe from several instances at once. */
  init(): Promise<void>;

  signingKeys(): Promise<StoredSigningKey[]>;
  /** False when a key with the same activation time exists already (another instance rotated first). */
  addSigningKey(key: StoredSigningKey): Promise<boolean>;
  deleteSigningKey(kid: string): Promise<void>;

  revocations(now: number): Promise<Revocation[]>;
  /** Keeps the later of an existing and the new cut-off. */
  revoke(revocation: Revocation): Promise<void>;

  /** Stores a record, replacing any with the same key. */
  put(kind: RecordKind, key: string, value: string, expiresAt: number): Promise<void>;
  /** Stores a record unless a live one has the key: true when stored. The replay check. */
  putIfAbsent(kind: RecordKind, key: string, value: string, expiresAt: number, now: number): Promise<boolean>;
  get(kind: RecordKind, key: string, now: number): Promise<string | undefined>;
  /** Reads and deletes in one step, so a single-use record is used once even across instances. */
  take(kind: RecordKind, key: string, now: number): Promise<string | undefined>;
  delete(kind: RecordKind, key: string): Promise<void>;
  insertServiceKey(record: ServiceKeyRecord): Promise<void>;
  serviceKey(id: string): Promise<ServiceKeyRecord | undefined>;
  /** Every service key, newest first. */
  serviceKeys(): Promise<ServiceKeyRecord[]>;
  /** Brings the end of `name`'s live keys (other than `replacedBy`) forward to `at`; returns how many. */
  replaceServiceKeys(name: string, replacedBy: string, at: number, now: number): Promise<number>;
  /** Revokes `name`'s live keys (or the one with `id`) at `now`; returns how many were live. */
  revokeServiceKeys(name: string, now: number, id?: string): Promise<number>;

  /** Drops expired records and revocations. */
  purgeExpired(now: number): Promise<void>;

  close(): Promise<void>;
}
