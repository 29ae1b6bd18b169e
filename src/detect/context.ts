// Per-scan facts several detectors need, computed at most once per text.

/**
 * Digits joined by at most two separators ("4111 1111 1111 1111",
 * "(415) 555-0132", "123.456.789-09") or by one capital letter ("131052A308T",
 * "2A 123"), the raw material of every digit-led identifier.
 */
export interface DigitRun {
  start: number;
  end: number;
  digits: number;
}

/** Runs shorter than this are never an identifier worth a checksum (cards, SSNs, phones, national ids). */
export const MIN_RUN_DIGITS = 7;
// The lookbehind right after the first digit makes each number start one attempt, not one per digit.
const LONG_DIGIT_RUN = new RegExp(`\\d(?<!\\d\\d)(?:[ \\-.\\/()\\u00a0+]{0,2}\\d|[A-Z] ?\\d){${MIN_RUN_DIGITS - 1},}`, 'g');

export class ScanContext {
  private runs: DigitRun[] | undefined;
  private utf8: Buffer | undefined;

  constructor(readonly text: string) {}

  /** Maximal digit runs with at least MIN_RUN_DIGITS digits, in order. */
  digitRuns(): readonly DigitRun[] {
    if (this.runs === undefined) {
      const runs: DigitRun[] = [];
      const text = this.text;
      LONG_DIGIT_RUN.lastIndex = 0;
      for (let m = LONG_DIGIT_RUN.exec(text); m !== null; m = LONG_DIGIT_RUN.exec(text)) {
        let digits = 0;
        const end = m.index + m[0].length;
        for (let i = m.index; i < end; i++) {
          const c = text.charCodeAt(i);
          if (c >= 48 && c <= 57) digits++;
        }
        runs.push({ start: m.index, end, digits });
      }
      this.runs = runs;
    }
    return this.runs;
  }

  /** The text as UTF-8, for RE2. ASCII text is converted as Latin-1: the same bytes, several times faster. */
  utf8Bytes(): Buffer {
    this.utf8 ??= Buffer.byteLength(this.text, 'utf8') === this.text.length ? Buffer.from(this.text, 'latin1') : Buffer.from(this.text, 'utf8');
    return this.utf8;
  }
}

/**
 * Positions inside a run where a candidate can start: the run's start and
 * every digit that follows a separator or letter. With `prefix` (an anchored
 * regex), also up to `prefixLength` characters before such a position when
 * they match it ('+' or '(' before a phone number, 'X' before a Spanish NIE,
 * the six letters of an Italian fiscal code).
 */
export function candidateStarts(text: string, run: DigitRun, prefix?: RegExp, prefixLength = 2): number[] {
  const starts: number[] = [];
  for (let i = run.start; i < run.end; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) continue;
    const prev = text.charCodeAt(i - 1);
    if (i > run.start && prev >= 48 && prev <= 57) continue;
    if (prefix !== undefined) {
      for (let back = prefixLength; back >= 1; back--) {
        if (i - back >= 0 && prefix.test(text.slice(i - back, i))) starts.push(i - back);
      }
    }
    starts.push(i);
  }
  return starts;
}

/**
 * Runs a sticky regex at each position. `visit` returns true when it kept
 * the match; later positions inside a kept match are then skipped, as a
 * global search would.
 */
export function forEachMatchAt(pattern: RegExp, text: string, starts: readonly number[], visit: (match: RegExpExecArray) => boolean): void {
  if (!pattern.sticky) throw new Error(`pattern ${pattern} needs the y flag`);
  let after = -1;
  for (const at of starts) {
    if (at < after) continue;
    pattern.lastIndex = at;
    const m = pattern.exec(text);
    if (m !== null && visit(m)) after = at + m[0].length;
  }
}
