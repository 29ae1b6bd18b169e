// The hash chain. Every event stores the hash of its predecessor and its own
// hash over (predecessor, seq, session, ordinal, kind, time, meta, content
// hash). Editing an event breaks its own hash; deleting, inserting or moving
// one breaks a link; editing content breaks `content_hash`. A moved row
// still hashes correctly at its original seq, which its predecessor link
// reveals: that is how `verify` tells a moved row from an edited one.
import { hash } from 'node:crypto';
import type { ContentPart } from './events.js';

export const GENESIS_HASH = '0'.repeat(64);

/**
 * Meta is hashed as the text stored, and verify re-hashes that text, never a
 * re-serialisation: plain JSON.stringify is enough, no canonical form needed.
 */
export function serializeMeta(meta: object): string {
  return JSON.stringify(meta);
}

export interface HashedFields {
  seq: number;
  sessionId: string;
  n: number;
  kind: string;
  atMs: number;
  metaText: string;
  contentHash: string | null;
}

export function eventHash(prevHash: string, event: HashedFields): string {
  return hash('sha256', `modelgate.audit.v1\n${prevHash}\n${JSON.stringify([event.seq, event.sessionId, event.n, event.kind, event.atMs, event.metaText, event.contentHash])}`);
}

/** Hash of an event's stored content parts (ciphertext when encrypted, so verifying needs no keys). */
export function contentHash(parts: readonly ContentPart[]): string | null {
  if (parts.length === 0) return null;
  const ordered = parts.length === 1 ? parts : [...parts].sort((a, b) => a.part - b.part);
  const pieces: Uint8Array[] = [];
  for (const p of ordered) {
    const nonce = p.nonce ? Buffer.from(p.nonce.buffer, p.nonce.byteOffset, p.nonce.byteLength).toString('hex') : '';
    pieces.push(Buffer.from(`${p.part}:${p.keyId ?? ''}:${nonce}:${p.data.byteLength}\n`), p.data);
  }
  return hash('sha256', Buffer.concat(pieces));
}
