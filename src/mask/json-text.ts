// Masking JSON text (tool-call arguments) on what it means, not how it is
// spelled. `{"to":"bob\u0040example.com"}` decodes to an email in the
// client, so detection must see the decoded strings: a decoder turns the
// escapes inside strings into their characters, the StreamMasker masks that,
// and an encoder escapes again what JSON requires inside strings. Both are
// state machines over code units, so escapes split across deltas (`\u00` |
// `40`) decode the same as whole ones and the stream stays valid JSON.
//
// Escapes that would change the structure if decoded (`\"`, `\\`) and lone
// surrogates stay as they are; replacements never contain `"` or `\`.
import { StreamMasker, type StreamMaskerOptions } from './stream-masker.js';
import type { Termination } from './types.js';

/** One text field's masker: plain text or JSON text. */
export interface FieldMasker {
  push(delta: string): string;
  flush(): string;
  readonly termination: Termination | undefined;
  readonly receivedLength: number;
}

const SHORT_ESCAPES: Readonly<Record<string, string>> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', '/': '/' };
const isHex4 = (text: string): boolean => /^[0-9a-fA-F]{4}$/.test(text);

/** Raw JSON text in, the same text with string escapes decoded (except `\"`, `\\`, surrogates). */
export class JsonEscapeDecoder {
  #inString = false;
  /** An escape sequence not complete yet: `\`, `\u`, `\u00`... */
  #pending = '';

  push(raw: string): string {
    let out = '';
    for (const ch of raw) {
      // `for of` iterates code points; a raw pair stays whole, and escapes are ASCII anyway.
      if (this.#pending !== '') {
        this.#pending += ch;
        out += this.#escape();
        continue;
      }
      if (!this.#inString) {
        if (ch === '"') this.#inString = true;
        out += ch;
      } else if (ch === '\\') {
        this.#pending = ch;
      } else {
        if (ch === '"') this.#inString = false;
        out += ch;
      }
    }
    return out;
  }

  /** The end of the text: an incomplete escape goes out as it came. */
  flush(): string {
    const rest = this.#pending;
    this.#pending = '';
    return rest;
  }

  /** Decodes #pending once complete; '' while it is still arriving. */
  #escape(): string {
    const seq = this.#pending;
    const kind = seq[1]!;
    if (kind === 'u') {
      if (seq.length < 6) return '';
      this.#pending = '';
      const hex = seq.slice(2);
      if (!isHex4(hex)) return seq;
      const code = Number.parseInt(hex, 16);
      // Quote and backslash would change the structure; a lone surrogate cannot be re-encoded as text.
      if (code === 0x22 || code === 0x5c || (code >= 0xd800 && code <= 0xdfff)) return seq;
      return String.fromCharCode(code);
    }
    this.#pending = '';
    return SHORT_ESCAPES[kind] ?? seq;
  }
}

/** Decoded (and masked) JSON text in, valid JSON text out: control characters inside strings escaped again. */
export class JsonEscapeEncoder {
  #inString = false;
  #afterBackslash = false;

  push(text: string): string {
    let out = '';
    for (const ch of text) {
      if (!this.#inString) {
        if (ch === '"') this.#inString = true;
        out += ch;
      } else if (this.#afterBackslash) {
        this.#afterBackslash = false;
        out += ch;
      } else if (ch === '\\') {
        this.#afterBackslash = true;
        out += ch;
      } else if (ch === '"') {
        this.#inString = false;
        out += ch;
      } else {
        out += ch < ' ' ? escapeControl(ch) : ch;
      }
    }
    return out;
  }
}

function escapeControl(ch: string): string {
  const short = { '\n': '\\n', '\t': '\\t', '\r': '\\r', '\b': '\\b', '\f': '\\f' }[ch];
  return short ?? `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** A StreamMasker over the decoded text of streamed JSON. */
export class JsonTextMasker implements FieldMasker {
  readonly #decoder = new JsonEscapeDecoder();
  readonly #encoder = new JsonEscapeEncoder();
  readonly #masker: StreamMasker;
  #received = 0;

  constructor(options: StreamMaskerOptions) {
    this.#masker = new StreamMasker(options);
  }

  get termination(): Termination | undefined {
    return this.#masker.termination;
  }

  get receivedLength(): number {
    return this.#received;
  }

  push(delta: string): string {
    this.#received += delta.length;
    return this.#encoder.push(this.#masker.push(this.#decoder.push(delta)));
  }

  flush(): string {
    const rest = this.#decoder.flush();
    const released = rest === '' ? '' : this.#masker.push(rest);
    return this.#encoder.push(released + this.#masker.flush());
  }
}
