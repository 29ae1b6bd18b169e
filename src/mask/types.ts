// The contracts output masking is built on: what a scanner must promise for
// incremental masking to equal whole-text masking, and what a policy tells
// the masker to do with each detected span.
import type { EntityType, Span } from '../detect/types.js';

/**
 * What the masker needs from the detectors (createScanner() fits it). `scan`
 * must be local: whether a span exists at `start`, and where it ends,
 * depends only on the text in
 * `[start - lookbehindLength, start + maxEntityLength + contextLength)`.
 * That is what lets a stream be scanned through a bounded window and still
 * give the spans a scan of the whole text gives.
 */
export interface EntityScanner {
  /** Non-overlapping spans, sorted by start. */
  scan(text: string): Span[];
  /** No span is longer than this. */
  readonly maxEntityLength: number;
  /** Characters after a span that can change whether or how it is reported. */
  readonly contextLength: number;
  /** Characters before a span that can change it (context words, key names); `contextLength` when absent. */
  readonly lookbehindLength?: number;
  /**
   * Optional, and what makes streaming prompt: the smallest index at which a
   * span could start that is not already final in `scan(text)`, whatever text
   * follows (`text.length` when the end of `text` cannot be part of any
   * entity). Formally: for every continuation `x`, the spans of
   * `scan(text + x)` starting before the returned index are exactly the spans
   * of `scan(text)` starting there. Without it the masker holds back
   * `maxEntityLength + contextLength` characters.
   */
  undecidedFrom?(text: string, from?: number): number;
  /**
   * Optional, and what keeps long answers cheap: the spans of `scan` of the
   * whole stream that start at or after `from`, where `text` is the end of
   * the stream holding at least `lookbehindLength` characters before `from`,
   * everything before `from` is final, and no span crosses it. With it the
   * masker keeps only about `lookbehindLength` of released text instead of
   * `maxEntityLength` (16K characters for a private key) and no released
   * text is searched for entities again; `undecidedFrom` is then asked with
   * the same `from` and judges only spans starting there or later.
   */
  scanFrom?(text: string, from: number): Span[];
  /**
   * Optional, with `scanFrom`: `scanFrom` and `undecidedFrom` for the windows
   * of one stream, each the stream's text from `windowStart` on. The same
   * answers, but what earlier windows showed is remembered, so each
   * character is read once rather than once per frame it stays in view.
   */
  openStream?(): WindowScanner;
}

/** `EntityScanner.scanFrom` and `undecidedFrom` for one stream's windows (`windowStart`: the window's offset in the stream). */
export interface WindowScanner {
  scanFrom(window: string, from: number, windowStart: number): Span[];
  undecidedFrom(window: string, from: number, windowStart: number): number;
}

export type MaskStrategy =
  /** `[EMAIL_1]`: numbered per type, the same number for the same value within a session. */
  | { kind: 'placeholder' }
  /** `****1234`: the last `keepLast` letters or digits, only when the value has at least twice as many. */
  | { kind: 'partial'; keepLast: number }
  /** `[EMAIL:3f2a9c1b]`: HMAC-SHA256 under the session's key, truncated to `length` hex digits. */
  | { kind: 'hash'; length: number };

/** What the output (or input) policy wants done with one span. */
export type SpanAction =
  | { action: 'mask'; rule: string; strategy: MaskStrategy }
  /** End the response before any of the entity is sent. */
  | { action: 'end_stream'; rule: string };

/** Undefined: the span is left as it is. */
export type SpanRules = (span: Span) => SpanAction | undefined;

/** Why a response was ended, for the error frame and the session record. */
export interface Termination {
  rule: string;
  type: EntityType;
}
