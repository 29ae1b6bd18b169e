// Turns a byte stream into text chunk by chunk for the stream decoders.
// A multi-byte UTF-8 character split across chunks is held back until its
// last byte arrives, and a byte-order mark at the very start is dropped
// (both SSE and JSON forbid it in the payload).

export class Utf8ChunkDecoder {
  // ignoreBOM keeps the mark in the output so string and byte chunks are
  // stripped by the same code below.
  readonly #decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  #atStart = true;

  decode(chunk: Uint8Array | string): string {
    // A string chunk ends any byte sequence left incomplete before it.
    const text = typeof chunk === 'string' ? this.#decoder.decode() + chunk : this.#decoder.decode(chunk, { stream: true });
    return this.#dropLeadingBom(text);
  }

  /** Flushes a trailing incomplete byte sequence (as U+FFFD). */
  end(): string {
    return this.#dropLeadingBom(this.#decoder.decode());
  }

  #dropLeadingBom(text: string): string {
    if (!this.#atStart || text === '') return text;
    this.#atStart = false;
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  }
}
