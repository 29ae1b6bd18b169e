// Masking a non-streamed response body, and whole values inside streamed
// frames. The walker (walk-output.ts) finds every string; this masks each
// one whole: plain text with maskText, JSON text (tool arguments) through
// the same decoder and encoder a stream uses, so both give the same result.
import type { BodyPath } from '../protocol/body-path.js';
import { isJsonObject } from '../protocol/body-path.js';
import type { Operation } from '../protocol/types.js';
import { DecisionLog } from './decision-log.js';
import { JsonTextMasker } from './json-text.js';
import { maskText } from './mask-text.js';
import { outputShape } from './output-shapes.js';
import type { MaskingSession } from './session.js';
import type { EntityScanner, SpanRules, Termination } from './types.js';
import { walkOutput, type TextKind } from './walk-output.js';

export interface OutputMasking {
  scanner: EntityScanner;
  session: MaskingSession;
  rules: SpanRules;
}

export interface MaskedResponse {
  /** The same object, rewritten in place. */
  body: unknown;
  /** Set when an output rule withholds the response: send an error naming the rule instead of `body`. */
  termination?: Termination;
  decisions: DecisionLog;
}

/**
 * Masks every string a client would receive in a non-streamed response of
 * `operation` (or an upstream error body), in place.
 */
export function maskResponseBody(body: unknown, operation: Operation, masking: OutputMasking): MaskedResponse {
  const masker = new WholeTextMasker(masking);
  if (isJsonObject(body)) walkOutput(body, outputShape(operation), (text, path, kind) => masker.mask(text, path, kind));
  else if (typeof body === 'string') body = masker.mask(body, [], 'text');
  else if (Array.isArray(body)) walkOutput({ items: body }, outputShape(operation), (text, path, kind) => masker.mask(text, path, kind));
  return { body, ...(masker.termination && { termination: masker.termination }), decisions: masker.log };
}

/** Masks whole texts one at a time, recording what it did; stops masking once a rule ends the response. */
export class WholeTextMasker {
  readonly log: DecisionLog;
  termination: Termination | undefined;
  readonly #masking: OutputMasking;

  constructor(masking: OutputMasking, log = new DecisionLog()) {
    this.#masking = masking;
    this.log = log;
  }

  mask(text: string, path: BodyPath, kind: TextKind = 'text'): string {
    if (this.termination) return '';
    if (text === '') return text;
    if (kind === 'json') return this.#maskJson(text, path);
    const masked = maskText(text, this.#masking.scanner.scan(text), this.#masking.session, this.#masking.rules);
    for (const applied of masked.applied) this.log.addApplied(applied, path);
    if (masked.termination) this.termination = masked.termination;
    return masked.text;
  }

  #maskJson(text: string, path: BodyPath): string {
    const masker = new JsonTextMasker({ ...this.#masking, onApplied: (applied) => this.log.addApplied(applied, path) });
    const masked = masker.push(text) + masker.flush();
    if (masker.termination) {
      this.termination = masker.termination;
      return '';
    }
    return masked;
  }
}

/**
 * The object with `mask` applied to its JSON text, or to each string in it
 * if that breaks the JSON. Input masking of Ollama's argument objects uses it.
 */
export function maskJsonObject(
  value: Record<string, unknown>,
  path: BodyPath,
  mask: (text: string, path: BodyPath) => string,
): Record<string, unknown> {
  const json = JSON.stringify(value);
  const masked = mask(json, path);
  if (masked === json) return value;
  try {
    const parsed: unknown = JSON.parse(masked);
    if (isJsonObject(parsed)) return parsed;
  } catch {
    // A span ended inside an escape sequence; fall through to per-string masking.
  }
  return maskStringLeaves(value, path, mask) as Record<string, unknown>;
}

function maskStringLeaves(value: unknown, path: BodyPath, mask: (text: string, path: BodyPath) => string): unknown {
  if (typeof value === 'string') return mask(value, path);
  if (Array.isArray(value)) return value.map((item, i) => maskStringLeaves(item, [...path, i], mask));
  if (isJsonObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, maskStringLeaves(item, [...path, key], mask)]));
  }
  return value;
}
