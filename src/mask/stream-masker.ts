// Masks one stream of text deltas (one field of one choice) as it arrives.
//
// Only the suffix that could still become part of an entity is held back;
// everything before it is released at once. The scanner sees a bounded
// window: already-released text kept as left context, then the unreleased
// text. A span that starts before the "decided" point cannot change any
// more, so the release point may move up to it, and past it through a span
// that crosses it, but never into a span. That makes the concatenated
// output equal `maskText` of the concatenated input (given the locality the
// EntityScanner contract promises), whatever the chunking.
//
// Because of that, no span ever crosses the release point and everything
// before it is final: a scanner with `scanFrom` is asked only for spans
// from there on, and the left context shrinks from `maxEntityLength` (16K
// characters with private keys) to about `lookbehindLength`, so each frame
// costs what its own text and the held tail cost, not the answer so far.
import type { Span } from '../detect/types.js';
import { maskRange, type AppliedSpan } from './mask-text.js';
import type { MaskingSession } from './session.js';
import type { EntityScanner, SpanRules, Termination, WindowScanner } from './types.js';

export interface StreamMaskerOptions {
  scanner: EntityScanner;
  session: MaskingSession;
  rules: SpanRules;
  /**
   * Released text kept for the scanner to see left of the unreleased part.
   * With `scanFrom` the default is twice `lookbehindLength` and a little
   * (spans starting in unreleased text have their left context, with room
   * for characters normalisation removes); without it, `maxEntityLength +
   * lookbehindLength`, enough that a match the cut-off window invents at
   * its left edge cannot reach unreleased text.
   */
  leftContext?: number;
  /** Called for each span masked or ending the stream; `span` offsets are into the whole stream. */
  onApplied?: (applied: AppliedSpan) => void;
}

/** Characters of left context beyond the lookbehind, for what normalisation may remove or join at the window's edge. */
const NORMALISATION_SLACK = 16;

const isHighSurrogate = (code: number): boolean => code >= 0xd800 && code <= 0xdbff;
const isLowSurrogate = (code: number): boolean => code >= 0xdc00 && code <= 0xdfff;

export class StreamMasker {
  readonly #scanner: EntityScanner;
  /** The scanner's own state for this stream's windows, when it keeps one (`openStream`). */
  readonly #windows: WindowScanner | undefined;
  readonly #session: MaskingSession;
  readonly #rules: SpanRules;
  readonly #leftContext: number;
  readonly #onApplied: ((applied: AppliedSpan) => void) | undefined;
  /** Stream text from #windowStart on: left context, then everything not yet released. */
  #window = '';
  #windowStart = 0;
  /** Stream offset up to which text has been released. */
  #released = 0;
  #received = 0;
  #termination: Termination | undefined;
  #flushed = false;

  constructor(options: StreamMaskerOptions) {
    this.#scanner = options.scanner;
    this.#windows = options.scanner.scanFrom ? options.scanner.openStream?.() : undefined;
    this.#session = options.session;
    this.#rules = options.rules;
    const { maxEntityLength, contextLength, lookbehindLength } = options.scanner;
    const lookbehind = lookbehindLength ?? contextLength;
    this.#leftContext = options.leftContext ?? (options.scanner.scanFrom ? 2 * lookbehind + NORMALISATION_SLACK : maxEntityLength + lookbehind);
    this.#onApplied = options.onApplied;
  }

  /** Set once a span's rule ended the stream; from then on nothing more is released. */
  get termination(): Termination | undefined {
    return this.#termination;
  }

  /** Characters pushed so far. */
  get receivedLength(): number {
    return this.#received;
  }

  /** Characters received but not released yet. */
  get heldLength(): number {
    return this.#termination ? 0 : this.#windowStart + this.#window.length - this.#released;
  }

  /** Adds a delta; returns the text that can be released now (possibly ''). */
  push(delta: string): string {
    if (this.#flushed) throw new Error('StreamMasker.push() called after flush()');
    this.#received += delta.length;
    if (this.#termination) return '';
    this.#window += delta;
    return this.#release(false);
  }

  /** Ends the stream: releases everything still held. */
  flush(): string {
    if (this.#flushed) return '';
    this.#flushed = true;
    if (this.#termination) return '';
    const text = this.#release(true);
    this.#window = '';
    this.#windowStart = this.#released;
    return text;
  }

  #release(final: boolean): string {
    const window = this.#window;
    const heldFrom = this.#released - this.#windowStart;
    const decided = final ? window.length : this.#decidedBefore(window, heldFrom);
    if (decided <= heldFrom) return '';

    const scanner = this.#scanner;
    const spans = this.#windows
      ? this.#windows.scanFrom(window, heldFrom, this.#windowStart)
      : scanner.scanFrom ? scanner.scanFrom(window, heldFrom) : scanner.scan(window).map((span) => clipToUnreleased(span, heldFrom));
    let cut = decided;
    // A span crossing the decided point starts before it, so it is final: release all of it.
    for (const span of spans) if (span.start < cut && span.end > cut) cut = span.end;
    const splitsPair = cut === window.length || isLowSurrogate(window.charCodeAt(cut));
    if (!final && cut > heldFrom && splitsPair && isHighSurrogate(window.charCodeAt(cut - 1))) {
      // Its low half may be in the next delta; never send half a pair.
      cut -= 1;
      for (const span of spans) if (span.start < cut && span.end > cut) cut = span.start;
    }
    if (cut <= heldFrom) return '';

    const masked = maskRange(window, spans, heldFrom, cut, this.#session, this.#rules);
    if (this.#onApplied) {
      for (const { span, action } of masked.applied) {
        this.#onApplied({ span: { ...span, start: span.start + this.#windowStart, end: span.end + this.#windowStart }, action });
      }
    }
    if (masked.termination) {
      this.#termination = masked.termination;
      this.#window = '';
      return masked.text;
    }
    this.#released = this.#windowStart + cut;
    this.#trimWindow(cut);
    return masked.text;
  }

  /** Window index before which every span is final. */
  #decidedBefore(window: string, heldFrom: number): number {
    const { maxEntityLength, contextLength } = this.#scanner;
    // A span starting this far back has all of itself and its right context in view.
    const byLength = window.length - maxEntityLength - contextLength;
    const byScanner = this.#windows
      ? this.#windows.undecidedFrom(window, heldFrom, this.#windowStart)
      : this.#scanner.scanFrom ? this.#scanner.undecidedFrom?.(window, heldFrom) : this.#scanner.undecidedFrom?.(window);
    return byScanner === undefined ? byLength : Math.max(byLength, byScanner);
  }

  #trimWindow(cut: number): void {
    let keepFrom = Math.max(0, cut - this.#leftContext);
    // Keep a pair whole, so the scanner never sees a lone low surrogate at the edge.
    if (keepFrom > 0 && isLowSurrogate(this.#window.charCodeAt(keepFrom))) keepFrom -= 1;
    if (keepFrom === 0) return;
    this.#window = this.#window.slice(keepFrom);
    this.#windowStart += keepFrom;
  }
}

/**
 * A span starting in released text but reaching unreleased text means the
 * scanner broke its locality promise (or the window's edge fooled it). Its
 * released part is gone; the rest is still masked rather than leaked.
 */
function clipToUnreleased(span: Span, heldFrom: number): Span {
  return span.start < heldFrom && span.end > heldFrom ? { ...span, start: heldFrom } : span;
}
