// Small character-level helpers shared by detectors. All offsets are UTF-16
// code units, like JavaScript string indices.

const ASCII_WORD = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  ASCII_WORD[c] = /[A-Za-z0-9_]/.test(ch) ? 1 : 0;
}
const UNICODE_WORD = /[\p{L}\p{N}\p{M}]/u;

/** Letter, digit, mark or underscore: what "whole word" matching must not touch. */
export function isWordCharAt(text: string, index: number): boolean {
  if (index < 0 || index >= text.length) return false;
  const code = text.charCodeAt(index);
  if (code < 128) return ASCII_WORD[code] === 1;
  // Look at the whole code point so astral letters count as letters.
  const point = text.codePointAt(index);
  if (point === undefined) return false;
  if (code >= 0xdc00 && code <= 0xdfff && index > 0) {
    const prev = text.codePointAt(index - 1);
    if (prev !== undefined && prev > 0xffff) return UNICODE_WORD.test(String.fromCodePoint(prev));
  }
  return UNICODE_WORD.test(String.fromCodePoint(point));
}

/** Shannon entropy in bits per character. */
export function shannonEntropy(value: string): number {
  if (value.length === 0) return 0;
  const counts = new Map<number, number>();
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  let bits = 0;
  for (const n of counts.values()) {
    const p = n / value.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

/** How many of lower case, upper case, digits and other characters the value mixes. */
export function characterClassCount(value: string): number {
  let lower = 0, upper = 0, digit = 0, other = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 97 && c <= 122) lower = 1;
    else if (c >= 65 && c <= 90) upper = 1;
    else if (c >= 48 && c <= 57) digit = 1;
    else other = 1;
  }
  return lower + upper + digit + other;
}

/**
 * Whether `words` (a regex without the g flag) matches in the `before`
 * characters ahead of the span or the `after` characters behind it. This is
 * how Presidio-style context words raise confidence.
 */
export function hasContext(text: string, start: number, end: number, words: RegExp, before: number, after = 0): boolean {
  if (before > 0 && words.test(text.slice(Math.max(0, start - before), start))) return true;
  return after > 0 && words.test(text.slice(end, Math.min(text.length, end + after)));
}

export const DIGIT_KEYWORDS: readonly string[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
