// The internal contract between the scanner and each detector family.
// Modelled on gitleaks rules (keywords gate a rule, then a pattern, then
// validation) and Presidio recognizers (context words adjust confidence).
import type { ScanContext } from './context.js';
import type { EntityType, Span } from './types.js';

export type ReportSpan = (span: Span) => void;

export interface Detector {
  /** Rule id prefix used in spans, e.g. `pii.credit_card`; detectors may report finer ids under it. */
  readonly id: string;
  /** Every type this detector can report; the scanner enables it when one of them is wanted. */
  readonly types: readonly EntityType[];
  /**
   * Case-insensitive literals. The detector runs only when one of them occurs
   * in the text (the one-pass prefilter). Each reported span has one of them
   * within `lookbehind` characters before its start or inside it.
   * Empty: the detector runs on every text.
   */
  readonly keywords: readonly string[];
  /** Longest span the detector reports. */
  readonly maxLength: number;
  /** Characters before a span that can change the decision (context words, key names). */
  readonly lookbehind: number;
  /** Characters after a span that can change the decision (boundaries, extensions, context words). */
  readonly lookahead: number;
  /**
   * A one-character class every character of every span belongs to (`\S` for
   * tokens, digits and separators for cards): a span still growing at the end
   * of a text starts inside the trailing run of such characters.
   */
  readonly spanChars?: RegExp;
  /**
   * With `spanChars`: a class every span holds at least one character of
   * (a digit for cards, `@` for emails), so a run of span characters without
   * one, that text appended cannot reach, holds no span.
   */
  readonly spanAnchor?: RegExp;
  /**
   * For detectors that know their shape better than `spanChars` or
   * `maxLength`: the earliest start of a span that could still change or
   * appear when text is appended, given that spans ending by `settled`
   * (text.length minus the detector's own lookahead) are final.
   */
  openFrom?(text: string, settled: number): number;
  detect(text: string, report: ReportSpan, context: ScanContext): void;
}

/** Iterate a global regex over the text without allocating an array of matches. */
export function forEachMatch(pattern: RegExp, text: string, visit: (match: RegExpExecArray) => void): void {
  if (!pattern.global) throw new Error(`pattern ${pattern} needs the g flag`);
  pattern.lastIndex = 0;
  for (let match = pattern.exec(text); match !== null; match = pattern.exec(text)) {
    visit(match);
    if (match[0].length === 0) pattern.lastIndex++;
  }
}

/** For `spanChars`: spans without whitespace (tokens, addresses). */
export const NON_WHITESPACE = /\S/;

export function clampConfidence(value: number): number {
  return Math.max(0, Math.min(1, Math.round(value * 100) / 100));
}
