// Turns a byte stream into text chunk by chunk for the stream decoders.
// A multi-byte UTF-8 character split across chunks is held back until its
// last byte arrives, and a byte-order mark at the very start is dropped
// (both SSE and JSON forbid it in the payload).
//
// Each chunk is decoded by Buffer's UTF-8 decoder (V8's), with only the
// bytes of a character the chunk cuts off carried to the next one: a
// streaming TextDecoder costs several times as much per byte (ICU) on the
// relay's hot path. Both replace invalid bytes with U+FFFD the same way (the
// Encoding standard's "maximal subpart" rule).

export class Utf8ChunkDecoder {
  /** The first bytes of a character the last chunk ended inside. */
  #carry: Buffer | undefined;
  #atStart = true;

  decode(chunk: Uint8Array | string): string {
    // A string chunk ends any byte sequence left incomplete before it.
    if (typeof chunk === 'string') return this.#dropLeadingBom(this.end() + chunk);
    let bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.#carry) {
      bytes = Buffer.concat([this.#carry, bytes]);
      this.#carry = undefined;
    }
    const cut = incompleteTail(bytes);
    if (cut > 0) {
      // Copied: the caller may reuse the chunk's memory.
      this.#carry = Buffer.from(bytes.subarray(bytes.length - cut));
      bytes = bytes.subarray(0, bytes.length - cut);
    }
    return this.#dropLeadingBom(bytes.toString('utf8'));
  }

  /** Flushes a trailing incomplete byte sequence (as U+FFFD). */
  end(): string {
    const carry = this.#carry;
    this.#carry = undefined;
    return carry ? this.#dropLeadingBom(carry.toString('utf8')) : '';
  }

  #dropLeadingBom(text: string): string {
    if (!this.#atStart || text === '') return text;
    this.#atStart = false;
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  }
}

/**
 * How many bytes at the end of `bytes` begin a character that the next
 * bytes could still complete (0 to 3). Bytes that can no longer be part of a
 * valid character are not held back: they decode to U+FFFD now, as they
 * would later.
 */
function incompleteTail(bytes: Buffer): number {
  const length = bytes.length;
  // The last byte that is not a continuation byte (10xxxxxx), within a character's reach.
  for (let back = 1; back <= 3 && back <= length; back++) {
    const byte = bytes[length - back]!;
    if ((byte & 0xc0) === 0x80) continue;
    const needs = byte >= 0xf0 && byte <= 0xf4 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc2 ? 2 : 1;
    if (needs <= back || byte > 0xf4) return 0;
    // The continuation bytes so far must be ones this lead byte accepts (E0, ED, F0 and F4 narrow the second byte).
    if (back >= 2 && !secondByteFits(byte, bytes[length - back + 1]!)) return 0;
    return back;
  }
  return 0;
}

function secondByteFits(lead: number, second: number): boolean {
  if (lead === 0xe0) return second >= 0xa0;
  if (lead === 0xed) return second <= 0x9f;
  if (lead === 0xf0) return second >= 0x90;
  if (lead === 0xf4) return second <= 0x8f;
  return true;
}
