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
/** Plain ASCII without '%': copied as it is. */
const ASCII_RUN = /[\x00-\x24\x26-\x7f]+/y;

export interface NormalisedText {
  /** What detectors see. */
  readonly text: string;
  /** For each index of `text`: where its source starts in the original. */
  readonly sourceStart: Int32Array;
  /** For each index of `text`: where its source ends in the original. */
  readonly sourceEnd: Int32Array;
}

/** Texts that need no work: nothing outside ASCII and no `%40`. Checked first, it keeps plain prose free. */
const NEEDS_WORK = /[^\x00-\x7f]|%40/;

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

/** The detection copy of `text`, or undefined when it would be `text` itself. */
export function normaliseForDetection(text: string): NormalisedText | undefined {
  if (!NEEDS_WORK.test(text)) return undefined;
  const n = text.length;
  const parts: string[] = [];
  let starts = new Int32Array(n + 16);
  let ends = new Int32Array(n + 16);
  let length = 0;
  const reserve = (more: number): void => {
    if (length + more <= starts.length) return;
    const grown = Math.max(starts.length * 2, length + more);
    const s = new Int32Array(grown), e = new Int32Array(grown);
    s.set(starts);
    e.set(ends);
    starts = s;
    ends = e;
  };
  const emit = (out: string, from: number, to: number): void => {
    reserve(out.length);
    parts.push(out);
    for (let k = 0; k < out.length; k++, length++) {
      starts[length] = from;
      ends[length] = to;
    }
  };
  let changed = false;
  let i = 0;
  while (i < n) {
    ASCII_RUN.lastIndex = i;
    let runEnd = ASCII_RUN.test(text) ? ASCII_RUN.lastIndex : i;
    // A combining mark after the run composes with the run's last letter: that letter starts a segment.
    if (runEnd > i && runEnd < n && MARK.test(text[runEnd]!)) runEnd -= 1;
    if (runEnd > i) {
      reserve(runEnd - i);
      parts.push(text.slice(i, runEnd));
      for (let k = i; k < runEnd; k++, length++) {
        starts[length] = k;
        ends[length] = k + 1;
      }
      i = runEnd;
      continue;
    }
    const code = text.charCodeAt(i);
    if (code === 37 /* % */) {
      // `%40` is '@' in URLs and form data (mailto:, ?email=jane%40example.com).
      const at = text.charCodeAt(i + 1) === 52 && text.charCodeAt(i + 2) === 48;
      emit(at ? '@' : '%', i, at ? i + 3 : i + 1);
      changed ||= at;
      i += at ? 3 : 1;
      continue;
    }
    // A segment: one code point and the combining marks after it, which NFKC may compose.
    let end = i + (code >= 0xd800 && code <= 0xdbff && i + 1 < n ? 2 : 1);
    while (end < n && text.charCodeAt(end) >= 0x300) {
      const point = text.codePointAt(end)!;
      if (!MARK.test(String.fromCodePoint(point))) break;
      end += point > 0xffff ? 2 : 1;
    }
    const segment = text.slice(i, end);
    const out = normaliseSegment(segment);
    if (out !== segment) changed = true;
    emit(out, i, end);
    i = end;
  }
  if (!changed) return undefined;
  return { text: parts.join(''), sourceStart: starts.subarray(0, length), sourceEnd: ends.subarray(0, length) };
}

/** The original offsets of `[start, end)` in the copy. */
export function toOriginal(normalised: NormalisedText, start: number, end: number): { start: number; end: number } {
  return { start: normalised.sourceStart[start]!, end: normalised.sourceEnd[end - 1]! };
}

/** The original offset where copy index `at` begins (the original length at the copy's end). */
export function originalOffset(normalised: NormalisedText, at: number, originalLength: number): number {
  return at >= normalised.text.length ? originalLength : normalised.sourceStart[at]!;
}
