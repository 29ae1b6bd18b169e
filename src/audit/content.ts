// Storing content: truncate at the size limit, split into parts, and
// optionally encrypt each part with AES-256-GCM. The additional data binds a
// ciphertext to its session, event ordinal and part, so a database operator
// cannot move one user's prompt into another session undetected.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { EncryptionKeyConfig } from './config.js';
import type { ContentInfo, ContentPart } from './events.js';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export class ContentKeyError extends Error {}

export class ContentCipher {
  private readonly keys: Map<string, Buffer>;
  readonly currentKeyId: string;

  constructor(keys: readonly EncryptionKeyConfig[]) {
    if (keys.length === 0) throw new ContentKeyError('encryption needs at least one key');
    this.keys = new Map(keys.map((k) => [k.id, Buffer.from(k.key, 'base64')]));
    for (const [id, key] of this.keys) if (key.length !== 32) throw new ContentKeyError(`encryption key "${id}" is not 32 bytes`);
    this.currentKeyId = keys[0]!.id;
  }

  encrypt(plaintext: Uint8Array, aad: Buffer): { keyId: string; nonce: Buffer; data: Buffer } {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.currentKeyId)!, nonce);
    cipher.setAAD(aad);
    const data = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return { keyId: this.currentKeyId, nonce, data };
  }

  decrypt(keyId: string, nonce: Uint8Array, data: Uint8Array, aad: Buffer): Buffer {
    const key = this.keys.get(keyId);
    if (!key) throw new ContentKeyError(`content is encrypted with key "${keyId}", which is not configured in recording.encryption.keys`);
    if (data.byteLength < TAG_BYTES) throw new ContentKeyError('ciphertext is shorter than its authentication tag');
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAAD(aad);
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new ContentKeyError('content failed authentication: it was altered, or moved from another session or row');
    }
  }
}

function additionalData(sessionId: string, n: number, part: number): Buffer {
  return Buffer.from(`modelgate.audit.v1\0${sessionId}\0${n}\0${part}`, 'utf8');
}

export interface ContentLimits {
  maxBytes: number;
  partBytes: number;
}

/** The longest prefix of `bytes` of at most `max` bytes that does not split a UTF-8 character. */
function utf8Prefix(bytes: Buffer, max: number): Buffer {
  if (bytes.length <= max) return bytes;
  let end = max;
  // Back up over continuation bytes (10xxxxxx) to the start of the cut character.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

export function encodeContent(
  text: string,
  where: { sessionId: string; n: number },
  limits: ContentLimits,
  cipher: ContentCipher | undefined,
): { parts: ContentPart[]; info: ContentInfo } {
  const full = Buffer.from(text, 'utf8');
  const stored = utf8Prefix(full, limits.maxBytes);
  const parts: ContentPart[] = [];
  for (let offset = 0, part = 0; offset < stored.length || part === 0; offset += limits.partBytes, part++) {
    const slice = stored.subarray(offset, offset + limits.partBytes);
    if (cipher) {
      const { keyId, nonce, data } = cipher.encrypt(slice, additionalData(where.sessionId, where.n, part));
      parts.push({ part, keyId, nonce, data });
    } else {
      parts.push({ part, keyId: null, nonce: null, data: slice });
    }
  }
  return { parts, info: { bytes: full.length, stored_bytes: stored.length, truncated: stored.length < full.length } };
}

export function decodeContent(parts: readonly ContentPart[], where: { sessionId: string; n: number }, cipher: ContentCipher | undefined): string {
  const ordered = [...parts].sort((a, b) => a.part - b.part);
  const buffers = ordered.map((p) => {
    if (p.keyId === null) return Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength);
    if (!cipher) throw new ContentKeyError(`content is encrypted with key "${p.keyId}", but recording.encryption is not configured`);
    return cipher.decrypt(p.keyId, p.nonce ?? new Uint8Array(), p.data, additionalData(where.sessionId, where.n, p.part));
  });
  // Most content is one part: decode it in place rather than copy it first.
  return (buffers.length === 1 ? buffers[0]! : Buffer.concat(buffers)).toString('utf8');
}
