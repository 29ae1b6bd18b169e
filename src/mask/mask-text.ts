// Masking a whole text. The stream masker releases exactly what this
// function returns for the concatenated stream, so this is the reference
// both non-streamed responses and prompts are masked with.
import type { Span } from '../detect/types.js';
import type { MaskingSession } from './session.js';
import type { SpanAction, SpanRules, Termination } from './types.js';

export interface AppliedSpan {
  span: Span;
  action: SpanAction;
}

export interface MaskedText {
  text: string;
  /** Set when a span's rule ends the response; `text` is then only what precedes that span. */
  termination?: Termination;
  /** The spans acted on, in text order (the ending span last). */
  applied: AppliedSpan[];
}

export function maskText(text: string, spans: readonly Span[], session: MaskingSession, rules: SpanRules): MaskedText {
  return maskRange(text, spans, 0, text.length, session, rules);
}

/**
 * Masks `text.slice(from, to)` given the spans of `text` that start in that
 * range (others are skipped). A span must not end after `to`: the caller
 * only releases ranges no span crosses.
 */
export function maskRange(
  text: string,
  spans: readonly Span[],
  from: number,
  to: number,
  session: MaskingSession,
  rules: SpanRules,
): MaskedText {
  let out = '';
  let pos = from;
  const applied: AppliedSpan[] = [];
  for (const span of spans) {
    if (span.start < from || span.start >= to) continue;
    const action = rules(span);
    if (action === undefined) continue;
    // Spans are promised not to overlap; if one does anyway, its uncovered rest is still masked.
    const start = Math.max(span.start, pos);
    if (span.end <= start) continue;
    if (action.action === 'end_stream') {
      applied.push({ span, action });
      return { text: out + text.slice(pos, start), termination: { rule: action.rule, type: span.type }, applied };
    }
    out += text.slice(pos, start) + session.replacement(span.type, text.slice(start, span.end), action.strategy);
    pos = span.end;
    applied.push({ span, action });
  }
  return { text: out + text.slice(pos, to), applied };
}
