// The copy of a text that detectors match on: NFKC (full-width digits and
// letters, ligatures, compatibility spaces become their plain forms),
// invisible characters removed (zero-width, bidi controls, soft hyphen,
// BOM), every other space separator a plain space, and `%40` read as `@`.
// Each character of the copy knows the original characters it came from, so
// a span found in the copy masks exactly the original characters, and the
// text around it stays as it was.

/** Format characters that render as nothing but split a token for a regex. */
const INVISIBLE = /[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]/g;
/** Space separators NFKC keeps as they are (U+3000, U+00A0, U+2009, U+202F become a space anyway). */
const OTHER_SPACE = /[\s\u1680\u2028\u2029]/gu;
const MARK = /\p{M}/u;

export interface NormalisedText {
  /** What detectors see. */
  readonly text: string;
  /** Where the source of copy index `i` starts in the original. */
  sourceStart(i: number): number;
  /** Where the source of copy index `i` ends in the original. */
  sourceEnd(i: number): number;
}

/**
 * Texts that need no work: nothing outside ASCII and no `%40`. Checked first, it keeps plain prose free;
 * a loop over char codes and one indexOf cost a fraction of the two-branch regex on every streamed window.
 */
function needsWork(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return true;
  return text.includes('%40');
}
const INVISIBLE_OR_SPACE = /[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\s\u1680\u2028\u2029]/u;

/** One original segment (a character and its combining marks) → what detectors see, remembered across calls. */
const segmentCache = new Map<string, string>();
const SEGMENT_CACHE_LIMIT = 10_000;

function normaliseSegment(segment: string): string {
  let out = segmentCache.get(segment);
  if (out !== undefined) return out;
  out = segment.replace(INVISIBLE, '').normalize('NFKC').replace(OTHER_SPACE, ' ');
  if (segmentCache.size >= SEGMENT_CACHE_LIMIT) segmentCache.clear();
  segmentCache.set(segment, out);
  return out;
}

/**
 * Where the copy's length differs from the original's: a removed invisible
 * character, `%40`, a ligature or a composition. Between pieces the copy and
 * the original differ by a constant offset, so one-for-one changes (a
 * no-break space, a full-width digit) and plain runs need no entry at all.
 */
class PieceMap implements NormalisedText {
  readonly copyAt: number[] = [];
  readonly copyLength: number[] = [];
  readonly sourceAt: number[] = [];
  readonly sourceLength: number[] = [];
  text = '';

  add(copyAt: number, copyLength: number, sourceAt: number, sourceLength: number): void {
    this.copyAt.push(copyAt);
    this.copyLength.push(copyLength);
    this.sourceAt.push(sourceAt);
    this.sourceLength.push(sourceLength);
  }

  /** The last piece starting at or before copy index `i`, or -1. */
  #piece(i: number): number {
    let low = 0, high = this.copyAt.length - 1, found = -1;
    while (low <= high) {
      const mid = (low + high) >> 1;
      if (this.copyAt[mid]! <= i) {
        found = mid;
        low = mid + 1;
      } else high = mid - 1;
    }
    return found;
  }

  #map(i: number, end: boolean): number {
    const p = this.#piece(i);
    if (p < 0) return i + (end ? 1 : 0);
    const copyEnd = this.copyAt[p]! + this.copyLength[p]!;
    const sourceEnd = this.sourceAt[p]! + this.sourceLength[p]!;
    if (i < copyEnd) return end ? sourceEnd : this.sourceAt[p]!;
    return sourceEnd + (i - copyEnd) + (end ? 1 : 0);
  }

  sourceStart(i: number): number {
    return this.#map(i, false);
  }

  sourceEnd(i: number): number {
    return this.#map(i, true);
  }
}

interface NormalisedRun {
  out: string;
  /** [copy index, copy length, run index, run length] where lengths differ, relative to the run. */
  pieces: Array<readonly [number, number, number, number]>;
}

const STABLE: NormalisedRun['pieces'] = [];
/** Short runs repeat (a no-break space after a digit, the same words): their result is remembered. */
const runCache = new Map<string, NormalisedRun>();
const RUN_CACHE_LIMIT = 10_000;
const CACHED_RUN_LENGTH = 32;

function normaliseRun(run: string): NormalisedRun {
  const cached = runCache.get(run);
  if (cached !== undefined) return cached;
  let result: NormalisedRun;
  // Most runs (CJK, accented words) are already what detectors should see.
  if (!INVISIBLE_OR_SPACE.test(run) && run.normalize('NFKC') === run) {
    result = { out: run, pieces: STABLE };
  } else {
    let out = '';
    const pieces: NormalisedRun['pieces'] = [];
    for (let i = 0; i < run.length;) {
      // A segment: one code point and the combining marks after it, which NFKC may compose.
      const code = run.charCodeAt(i);
      let end = i + (code >= 0xd800 && code <= 0xdbff && i + 1 < run.length ? 2 : 1);
      while (end < run.length && run.charCodeAt(end) >= 0x300) {
        const point = run.codePointAt(end)!;
        if (!MARK.test(String.fromCodePoint(point))) break;
        end += point > 0xffff ? 2 : 1;
      }
      const segment = run.slice(i, end);
      const normalised = end - i === 1 && code < 0x80 ? segment : normaliseSegment(segment);
      if (normalised.length !== segment.length) pieces.push([out.length, normalised.length, i, segment.length]);
      out += normalised;
      i = end;
    }
    result = { out, pieces };
  }
  if (run.length <= CACHED_RUN_LENGTH) {
    if (runCache.size >= RUN_CACHE_LIMIT) runCache.clear();
    runCache.set(run, result);
  }
  return result;
}

/** `%40`, or a run outside ASCII with the character before it (a combining mark composes with it). */
const WORK = /%40|[\x00-\x7f]?[^\x00-\x7f]+/g;

/**
 * For the windows of one stream (each a suffix of the stream, `windowStart`
 * its offset): whether a window is ASCII and plain (no `%40`, so it needs no
 * copy), each character read once. The stream offsets of the last
 * character outside ASCII and of the last `%40` are kept; a window holds
 * one when it starts at or before it. A window that does not continue what
 * was read starts the reading again at its own start.
 */
export class StreamPlainness {
  #readTo = -1;
  #lastNonAscii = -1;
  #lastPercent40 = -1;

  /** Reads what `window` adds, and returns 0 when it is plain, 1 when ASCII with a `%40`, 2 when not ASCII. */
  read(window: string, windowStart: number): 0 | 1 | 2 {
    let at = this.#readTo - windowStart;
    if (this.#readTo < 0 || at < 0 || at > window.length) {
      this.#lastNonAscii = -1;
      this.#lastPercent40 = -1;
      at = 0;
    }
    for (let i = at; i < window.length; i++) if (window.charCodeAt(i) > 0x7f) this.#lastNonAscii = windowStart + i;
    // A `%40` may begin in the two characters read last time.
    for (let p = window.indexOf('%40', Math.max(0, at - 2)); p !== -1; p = window.indexOf('%40', p + 1)) this.#lastPercent40 = windowStart + p;
    this.#readTo = windowStart + window.length;
    return this.#lastNonAscii >= windowStart ? 2 : this.#lastPercent40 >= windowStart ? 1 : 0;
  }
}

/** The detection copy of `text`, or undefined when it would be `text` itself. */
export function normaliseForDetection(text: string): NormalisedText | undefined {
  if (!needsWork(text)) return undefined;
  const map = new PieceMap();
  let delta = 0; // copy length minus original length so far
  let changed = false;
  const copy = text.replace(WORK, (match: string, offset: number): string => {
    if (match === '%40') {
      // `%40` is '@' in URLs and form data (mailto:, ?email=jane%40example.com).
      map.add(offset + delta, 1, offset, 3);
      delta -= 2;
      changed = true;
      return '@';
    }
    const run = normaliseRun(match);
    if (run.out !== match) changed = true;
    const copyOffset = offset + delta;
    for (const [at, length, sourceAt, sourceLength] of run.pieces) {
      map.add(copyOffset + at, length, offset + sourceAt, sourceLength);
      delta += length - sourceLength;
    }
    return run.out;
  });
  if (!changed) return undefined;
  map.text = copy;
  return map;
}

/** The original offsets of `[start, end)` in the copy. */
export function toOriginal(normalised: NormalisedText, start: number, end: number): { start: number; end: number } {
  return { start: normalised.sourceStart(start), end: normalised.sourceEnd(end - 1) };
}

/** The original offset where copy index `at` begins (the original length at the copy's end). */
export function originalOffset(normalised: NormalisedText, at: number, originalLength: number): number {
  return at >= normalised.text.length ? originalLength : normalised.sourceStart(at);
}
