// One pass over the text that tells which detectors can possibly match (the
// gitleaks keyword prefilter). Keywords with letters go, one case-insensitive
// alternation per detector, into an RE2.Set: one DFA pass reports which
// alternations occur (about 2.5 times the speed of a JavaScript Aho-Corasick
// loop over the same keywords). Keywords without letters ('@', '://', digits)
// have no case and are found with indexOf, which costs next to nothing.
import RE2 from 're2';
import { AhoCorasick } from './aho-corasick.js';
import type { ScanContext } from './context.js';
import type { Detector } from './detector.js';

function escapeLiteral(literal: string): string {
  return literal.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}

const HAS_LETTER = /\p{L}/u;

export class KeywordPrefilter {
  private readonly set: InstanceType<typeof RE2.Set> | undefined;
  /** For each pattern of the set, the detector it gates. */
  private readonly setDetectors: readonly number[];
  /** Letterless keywords and the detectors each gates. */
  private readonly literals: ReadonlyMap<string, readonly number[]>;
  private readonly ungated: readonly number[];

  constructor(private readonly detectors: readonly Detector[]) {
    const patterns: string[] = [];
    const setDetectors: number[] = [];
    const literals = new Map<string, number[]>();
    const ungated: number[] = [];
    detectors.forEach((detector, d) => {
      if (detector.keywords.length === 0) {
        ungated.push(d);
        return;
      }
      const worded = [...new Set(detector.keywords.filter((k) => HAS_LETTER.test(k)).map((k) => k.toLowerCase()))];
      if (worded.length > 0) {
        patterns.push(`(?i:${worded.map(escapeLiteral).join('|')})`);
        setDetectors.push(d);
      }
      for (const keyword of detector.keywords.filter((k) => !HAS_LETTER.test(k))) {
        const gated = literals.get(keyword) ?? [];
        gated.push(d);
        literals.set(keyword, gated);
      }
    });
    this.set = patterns.length === 0 ? undefined : new RE2.Set(patterns, 'u');
    this.setDetectors = setDetectors;
    this.literals = literals;
    this.ungated = ungated;
  }

  /** Indices of the detectors to run on the context's text, in detector order. */
  select(context: ScanContext): number[] {
    const fired = new Uint8Array(this.detectors.length);
    for (const d of this.ungated) fired[d] = 1;
    for (const [literal, gated] of this.literals) {
      if (gated.every((d) => fired[d] === 1)) continue;
      if (context.text.includes(literal)) for (const d of gated) fired[d] = 1;
    }
    if (this.set !== undefined) {
      for (const pattern of this.set.match(context.utf8Bytes())) fired[this.setDetectors[pattern]!] = 1;
    }
    const selected: number[] = [];
    fired.forEach((f, d) => { if (f === 1) selected.push(d); });
    return selected;
  }
}

/** Characters outside ASCII that Unicode case folding (RE2's `(?i)`) equates with ASCII letters: KELVIN SIGN (k), LONG S (s). */
const FOLDS_TO_ASCII = /[\u212a\u017f]/;
export const isAscii = (text: string): boolean => {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
};

/**
 * The prefilter's choice for ASCII text, for every slice of it at once: one
 * JavaScript Aho-Corasick pass over the widest slice records, per detector,
 * where its last keyword occurrence starts, and a detector fires on a slice
 * from `at` exactly when that is at or after `at` (or it has no keywords).
 * On ASCII text this is what KeywordPrefilter.select reports: RE2's `(?i)`
 * folds an ASCII letter only with ASCII letters and with the two characters
 * of FOLDS_TO_ASCII, so a keyword outside ASCII never occurs in ASCII text.
 * A streamed frame's window is short: one pass here costs less than a
 * Buffer and a native call per lookbehind tier.
 */
export class AsciiKeywordIndex {
  readonly #matcher: AhoCorasick;
  /** For each pattern of the matcher, the detectors it gates. */
  readonly #gates: ReadonlyArray<readonly number[]>;
  readonly #ungated: readonly number[];
  /** Reused by every call (scans are synchronous): per detector, the last keyword start, or -1. */
  readonly #lastStarts: Int32Array;
  /** Per pattern, its last start in this call, or -1; and the patterns seen, in the order first seen. */
  readonly #patternStarts: Int32Array;
  readonly #seen: Int32Array;
  #seenCount = 0;
  readonly #visit: (pattern: number, start: number) => void;
  readonly #detectorCount: number;

  /** Undefined when some keyword would need Unicode case folding to be matched on ASCII text. */
  static for(detectors: readonly Detector[]): AsciiKeywordIndex | undefined {
    const patterns = new Map<string, number[]>();
    const ungated: number[] = [];
    for (const [d, detector] of detectors.entries()) {
      if (detector.keywords.length === 0) ungated.push(d);
      for (const keyword of detector.keywords) {
        // As KeywordPrefilter gives it to RE2: lower-cased when it has a letter, else literal.
        const form = HAS_LETTER.test(keyword) ? keyword.toLowerCase() : keyword;
        if (form === '') {
          // Found in any text, as `includes('')` is.
          if (!ungated.includes(d)) ungated.push(d);
          continue;
        }
        if (!isAscii(form)) {
          if (HAS_LETTER.test(keyword) && FOLDS_TO_ASCII.test(form)) return undefined;
          continue; // never occurs in ASCII text
        }
        const gated = patterns.get(form) ?? [];
        if (!gated.includes(d)) gated.push(d);
        patterns.set(form, gated);
      }
    }
    return new AsciiKeywordIndex([...patterns.keys()], [...patterns.values()], ungated, detectors.length);
  }

  private constructor(patterns: string[], gates: number[][], ungated: number[], detectorCount: number) {
    // Letterless keywords have no case in ASCII, so folding every pattern changes only the lettered ones.
    this.#matcher = new AhoCorasick(patterns, { caseInsensitive: true });
    this.#gates = gates;
    this.#detectorCount = detectorCount;
    this.#ungated = ungated;
    this.#lastStarts = new Int32Array(detectorCount);
    this.#patternStarts = new Int32Array(patterns.length).fill(-1);
    this.#seen = new Int32Array(patterns.length);
    // Matches come in order of their end, so a pattern's last match is its last start (digits match over and over).
    this.#visit = (pattern, start) => {
      if (this.#patternStarts[pattern] === -1) this.#seen[this.#seenCount++] = pattern;
      this.#patternStarts[pattern] = start;
    };
  }

  /** A keyword pass for the windows of one stream, reading each character once (see KeywordStream). */
  stream(): KeywordStream {
    return new KeywordStream(this.#matcher, this.#gates, this.#ungated, this.#detectorCount);
  }

  /**
   * For ASCII `text`: per detector, the start of its last keyword occurrence
   * at or after `from` (-1 for none; the text's length for a detector without
   * keywords, which fires on every slice). Valid until the next call.
   */
  lastKeywordStarts(text: string, from: number): Int32Array {
    const lastStarts = this.#lastStarts;
    lastStarts.fill(-1);
    for (const d of this.#ungated) lastStarts[d] = text.length;
    this.#seenCount = 0;
    this.#matcher.scan(text, this.#visit, from);
    const patternStarts = this.#patternStarts;
    for (let i = 0; i < this.#seenCount; i++) {
      const pattern = this.#seen[i]!;
      const start = patternStarts[pattern]!;
      patternStarts[pattern] = -1;
      for (const d of this.#gates[pattern]!) if (start > lastStarts[d]!) lastStarts[d] = start;
    }
    return lastStarts;
  }
}

/**
 * AsciiKeywordIndex over the windows a streaming masker shows the scanner:
 * each a suffix of one growing stream (`windowStart` its stream offset).
 * The automaton's state and each detector's last keyword start (in stream
 * offsets) are kept between windows, so each character is read once, not
 * once per frame while it stays in the window. The occurrences found are
 * those of one pass over the stream from where reading began, a keyword
 * across two frames included; one starting inside a window lies wholly in
 * it, so a detector's last start at or after a slice's start is what
 * `lastKeywordStarts` gives on that slice. A window that does not continue
 * what was read (it starts past the characters read, or ends before them)
 * starts the pass again at its own start.
 */
export class KeywordStream {
  readonly #matcher: AhoCorasick;
  readonly #ungated: readonly number[];
  /** Per pattern, its group: patterns gating the same detectors (the ten digits) share one. */
  readonly #groupOf: Int32Array;
  /** Per detector, the groups that gate it. */
  readonly #groupsOf: ReadonlyArray<readonly number[]>;
  /** Per group, the stream offset of its last keyword start, or -1. */
  readonly #groupLast: Float64Array;
  readonly #inWindow: Int32Array;
  #state = 0;
  /** Stream offset up to which characters have been read; -1 before the first window. */
  #readTo = -1;
  /** Stream offset of the window being read. */
  #base = 0;
  readonly #visit: (pattern: number, start: number) => void;

  constructor(matcher: AhoCorasick, gates: ReadonlyArray<readonly number[]>, ungated: readonly number[], detectorCount: number) {
    this.#matcher = matcher;
    this.#ungated = ungated;
    const groups = new Map<string, number>();
    const groupsOf: number[][] = Array.from({ length: detectorCount }, () => []);
    this.#groupOf = new Int32Array(gates.length);
    gates.forEach((gated, pattern) => {
      const key = gated.join(',');
      let group = groups.get(key);
      if (group === undefined) {
        group = groups.size;
        groups.set(key, group);
        for (const d of gated) groupsOf[d]!.push(group);
      }
      this.#groupOf[pattern] = group;
    });
    this.#groupsOf = groupsOf;
    this.#groupLast = new Float64Array(groups.size).fill(-1);
    this.#inWindow = new Int32Array(detectorCount);
    this.#visit = (pattern, start) => {
      const group = this.#groupOf[pattern]!;
      const at = this.#base + start;
      // Matches come in order of their end; a longer keyword ending later may start earlier.
      if (at > this.#groupLast[group]!) this.#groupLast[group] = at;
    };
  }

  /**
   * Reads the characters of `window` (the stream from `windowStart` on) not
   * read yet, and returns, per detector, the start of its last keyword in
   * the window (window offsets; negative for none; the window's length for
   * a detector without keywords), as `AsciiKeywordIndex.lastKeywordStarts`
   * gives for ASCII text. Valid until the next call.
   */
  lastKeywordStarts(window: string, windowStart: number): Int32Array {
    let at = this.#readTo - windowStart;
    if (this.#readTo < 0 || at < 0 || at > window.length) {
      this.#state = 0;
      this.#groupLast.fill(-1);
      at = 0;
    }
    if (at < window.length) {
      this.#base = windowStart;
      this.#state = this.#matcher.scan(window, this.#visit, at, this.#state);
    }
    this.#readTo = windowStart + window.length;
    const inWindow = this.#inWindow;
    const groupLast = this.#groupLast;
    for (let d = 0; d < inWindow.length; d++) {
      let last = -1;
      for (const group of this.#groupsOf[d]!) if (groupLast[group]! > last) last = groupLast[group]!;
      inWindow[d] = last < windowStart ? -1 : last - windowStart;
    }
    for (const d of this.#ungated) inWindow[d] = window.length;
    return inWindow;
  }
}
