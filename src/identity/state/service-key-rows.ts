// The identity_service_keys table, shared by the SQLite and PostgreSQL
// states: one DDL, one set of statements (`?` placeholders; PostgreSQL
// numbers them), one row mapping. Groups and owner are JSON text.
import type { ServiceKeyRecord } from './identity-state.js';

export const SERVICE_KEYS_TABLE = `
CREATE TABLE IF NOT EXISTS identity_service_keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  groups TEXT NOT NULL,
  owner TEXT NOT NULL,
  hash TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  replaced_by TEXT,
  revoked_at BIGINT
);
CREATE INDEX IF NOT EXISTS identity_service_keys_name ON identity_service_keys (name);
`;

const COLUMNS = 'id, name, groups, owner, hash, created_at, expires_at, replaced_by, revoked_at';
const LIVE = 'revoked_at IS NULL AND expires_at > ?';

export const SERVICE_KEY_SQL = {
  insert: `INSERT INTO identity_service_keys (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  get: `SELECT ${COLUMNS} FROM identity_service_keys WHERE id = ?`,
  list: `SELECT ${COLUMNS} FROM identity_service_keys ORDER BY created_at DESC, id`,
  /** params: at, replacedBy, name, replacedBy, at (an earlier end is kept), now */
  replace: `UPDATE identity_service_keys SET expires_at = ?, replaced_by = ? WHERE name = ? AND id <> ? AND expires_at > ? AND ${LIVE}`,
  /** params: now, name, now */
  revokeAll: `UPDATE identity_service_keys SET revoked_at = ? WHERE name = ? AND ${LIVE}`,
  /** params: now, name, id, now */
  revokeOne: `UPDATE identity_service_keys SET revoked_at = ? WHERE name = ? AND id = ? AND ${LIVE}`,
} as const;

export interface ServiceKeyRow {
  id: string;
  name: string;
  groups: string;
  owner: string;
  hash: string;
  created_at: number | string;
  expires_at: number | string;
  replaced_by: string | null;
  revoked_at: number | string | null;
}

export function serviceKeyParams(r: ServiceKeyRecord): unknown[] {
  return [r.id, r.name, JSON.stringify(r.groups), JSON.stringify(r.owner), r.hash, r.created_at, r.expires_at, r.replaced_by, r.revoked_at];
}

export function serviceKeyFromRow(row: ServiceKeyRow): ServiceKeyRecord {
  return {
    id: row.id,
    name: row.name,
    groups: JSON.parse(row.groups) as string[],
    owner: JSON.parse(row.owner) as ServiceKeyRecord['owner'],
    hash: row.hash,
    created_at: Number(row.created_at),
    expires_at: Number(row.expires_at),
    replaced_by: row.replaced_by,
    revoked_at: row.revoked_at === null ? null : Number(row.revoked_at),
  };
}
