// Incremental newline-delimited JSON decoder for Ollama-style streams. Like
// the SSE decoder it hands back whole lines only, each with its exact text,
// so the gateway can pass a line through untouched or replace it.

import { Utf8ChunkDecoder } from './utf8-chunks.js';

export interface NdjsonLine {
  /** The exact text of the line, including its "\n" (or "\r\n"). The byte limit applies to this. */
  raw: string;
  /** The parsed JSON, or undefined if the line did not parse. */
  value: unknown;
  /** Why the line did not parse. */
  error?: string;
  /** Set on the line `end()` flushes when the stream stopped before its "\n". */
  incomplete?: true;
}

export class NdjsonLineTooLargeError extends Error {
  constructor(readonly limitBytes: number) {
    super(`An NDJSON line exceeded the ${limitBytes}-byte limit`);
    this.name = 'NdjsonLineTooLargeError';
  }
}

export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;

/** Feed it with push(), finish with end(). After it throws, discard it. */
export class NdjsonDecoder {
  readonly #maxLineBytes: number;
  readonly #utf8 = new Utf8ChunkDecoder();
  /** The start of a line whose "\n" has not arrived yet. */
  #pending = '';
  #pendingBytes = 0;
  #ended = false;

  constructor(opts: { maxLineBytes?: number } = {}) {
    this.#maxLineBytes = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  }

  push(chunk: Uint8Array | string): NdjsonLine[] {
    if (this.#ended) throw new Error('NdjsonDecoder.push() called after end()');
    const text = this.#utf8.decode(chunk);
    const lines: NdjsonLine[] = [];
    // Only the new text can hold the "\n" that ends the pending line, so the
    // pending part is never rescanned.
    let lineStart = 0;
    for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n', lineStart)) {
      this.#emit(this.#pending + text.slice(lineStart, newline + 1), lines);
      this.#pending = '';
      this.#pendingBytes = 0;
      lineStart = newline + 1;
    }
    this.#append(text.slice(lineStart));
    return lines;
  }

  /** Flushes the stream; a final line without its "\n" is returned marked `incomplete`. */
  end(): NdjsonLine[] {
    if (this.#ended) return [];
    this.#ended = true;
    this.#append(this.#utf8.end());
    const lines: NdjsonLine[] = [];
    this.#emit(this.#pending, lines);
    this.#pending = '';
    const last = lines[0];
    return last ? [{ ...last, incomplete: true }] : [];
  }

  #append(text: string): void {
    this.#pending += text;
    this.#pendingBytes += Buffer.byteLength(text);
    if (this.#pendingBytes > this.#maxLineBytes) throw new NdjsonLineTooLargeError(this.#maxLineBytes);
  }

  #emit(raw: string, into: NdjsonLine[]): void {
    // Checked per line too, so the outcome does not depend on how the stream was chunked.
    if (Buffer.byteLength(raw) > this.#maxLineBytes) throw new NdjsonLineTooLargeError(this.#maxLineBytes);
    if (/^[ \t\r\n]*$/.test(raw)) return;
    try {
      // JSON.parse itself allows the surrounding whitespace, "\r" included.
      into.push({ raw, value: JSON.parse(raw) });
    } catch (err) {
      into.push({ raw, value: undefined, error: err instanceof Error ? err.message : String(err) });
    }
  }
}
