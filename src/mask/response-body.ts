// Masking a non-streamed response body, and the pieces of it the stream
// transform reuses for events that carry whole texts (Responses API
// `*.done` events, `response.completed`). Every text a client would show is
// masked; token-level logprobs, which spell the raw text out again, and
// Ollama's `context` token array are dropped.
import { isJsonObject, type BodyPath } from '../protocol/body-path.js';
import type { Operation } from '../protocol/types.js';
import { DecisionLog } from './decision-log.js';
import { maskText } from './mask-text.js';
import type { MaskingSession } from './session.js';
import type { EntityScanner, SpanRules, Termination } from './types.js';

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

/** Masks every client-visible text of a non-streamed response of `operation`, in place. */
export function maskResponseBody(body: unknown, operation: Operation, masking: OutputMasking): MaskedResponse {
  const masker = new WholeTextMasker(masking);
  if (isJsonObject(body)) {
    switch (operation) {
      case 'chat':
        forEachChoice(body, (choice, at) => maskChatMessage(choice, at, masker));
        break;
      case 'completion':
        forEachChoice(body, (choice, at) => {
          masker.maskAt(choice, 'text', [...at, 'text']);
          dropLogprobs(choice);
        });
        break;
      case 'response':
        maskResponseObject(body, [], masker);
        break;
      case 'ollama_chat':
      case 'ollama_generate':
        maskOllamaMessage(body, masker);
        break;
      case 'embedding':
        break;
    }
  }
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

  mask(text: string, path: BodyPath): string {
    if (this.termination) return '';
    const masked = maskText(text, this.#masking.scanner.scan(text), this.#masking.session, this.#masking.rules);
    for (const applied of masked.applied) this.log.addApplied(applied, path);
    if (masked.termination) this.termination = masked.termination;
    return masked.text;
  }

  /** Masks `holder[key]` if it is a string. */
  maskAt(holder: Record<string, unknown>, key: string, path: BodyPath): void {
    const value = holder[key];
    if (typeof value === 'string' && value !== '') holder[key] = this.mask(value, path);
  }

  /**
   * Ollama tool-call arguments are an object. Its JSON text is masked as one
   * text (entities may span keys and values just as in OpenAI's string form);
   * if the masked text no longer parses, each string value is masked alone.
   */
  maskArgumentsObject(holder: Record<string, unknown>, key: string, path: BodyPath): void {
    const args = holder[key];
    if (!isJsonObject(args)) return;
    holder[key] = maskJsonObject(args, path, (text, at) => this.mask(text, at));
  }
}

/** The object with `mask` applied to its JSON text, or to each string in it if that breaks the JSON. */
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

function forEachChoice(body: Record<string, unknown>, visit: (choice: Record<string, unknown>, at: BodyPath) => void): void {
  const choices = body.choices;
  if (!Array.isArray(choices)) return;
  choices.forEach((choice, i) => {
    if (isJsonObject(choice)) visit(choice, ['choices', i]);
  });
}

/** Text keys of a chat message (or delta) in the order a client shows them. */
export const CHAT_TEXT_KEYS = ['reasoning_content', 'reasoning', 'content', 'refusal'] as const;

function maskChatMessage(choice: Record<string, unknown>, at: BodyPath, masker: WholeTextMasker): void {
  dropLogprobs(choice);
  const message = choice.message;
  if (!isJsonObject(message)) return;
  const messagePath = [...at, 'message'];
  for (const key of CHAT_TEXT_KEYS) masker.maskAt(message, key, [...messagePath, key]);
  if (Array.isArray(message.tool_calls)) {
    message.tool_calls.forEach((call, k) => {
      if (isJsonObject(call) && isJsonObject(call.function)) {
        masker.maskAt(call.function, 'arguments', [...messagePath, 'tool_calls', k, 'function', 'arguments']);
      }
    });
  }
  if (isJsonObject(message.function_call)) masker.maskAt(message.function_call, 'arguments', [...messagePath, 'function_call', 'arguments']);
}

/** Token logprobs repeat the text token by token; masked text cannot keep them. */
export function dropLogprobs(holder: Record<string, unknown>): boolean {
  if (holder.logprobs === undefined || holder.logprobs === null) return false;
  holder.logprobs = null;
  return true;
}

/** A Responses API `response` object: its output items and the `output_text` convenience field. */
export function maskResponseObject(response: Record<string, unknown>, at: BodyPath, masker: WholeTextMasker): void {
  if (Array.isArray(response.output)) {
    response.output.forEach((item, i) => {
      if (isJsonObject(item)) maskResponseItem(item, [...at, 'output', i], masker);
    });
  }
  masker.maskAt(response, 'output_text', [...at, 'output_text']);
}

export function maskResponseItem(item: Record<string, unknown>, at: BodyPath, masker: WholeTextMasker): void {
  switch (item.type) {
    case 'message':
    case 'reasoning':
      maskResponseParts(item, 'content', at, masker);
      maskResponseParts(item, 'summary', at, masker);
      break;
    case 'function_call':
    case 'mcp_call':
      masker.maskAt(item, 'arguments', [...at, 'arguments']);
      break;
    case 'custom_tool_call':
      masker.maskAt(item, 'input', [...at, 'input']);
      break;
  }
}

function maskResponseParts(item: Record<string, unknown>, key: string, at: BodyPath, masker: WholeTextMasker): void {
  const parts = item[key];
  if (!Array.isArray(parts)) return;
  parts.forEach((part, i) => {
    if (isJsonObject(part)) maskResponsePart(part, [...at, key, i], masker);
  });
}

/** A content part: `output_text`, `refusal`, `reasoning_text`, `summary_text`. */
export function maskResponsePart(part: Record<string, unknown>, at: BodyPath, masker: WholeTextMasker): void {
  masker.maskAt(part, 'text', [...at, 'text']);
  masker.maskAt(part, 'refusal', [...at, 'refusal']);
  if (Array.isArray(part.logprobs) && part.logprobs.length > 0) part.logprobs = [];
}

/** Ollama /api/chat and /api/generate bodies (and stream lines). */
function maskOllamaMessage(body: Record<string, unknown>, masker: WholeTextMasker): void {
  dropOllamaExtras(body);
  masker.maskAt(body, 'response', ['response']);
  masker.maskAt(body, 'thinking', ['thinking']);
  const message = body.message;
  if (!isJsonObject(message)) return;
  masker.maskAt(message, 'content', ['message', 'content']);
  masker.maskAt(message, 'thinking', ['message', 'thinking']);
  maskOllamaToolCalls(message, masker);
}

export function maskOllamaToolCalls(message: Record<string, unknown>, masker: WholeTextMasker): void {
  if (!Array.isArray(message.tool_calls)) return;
  message.tool_calls.forEach((call, k) => {
    if (isJsonObject(call) && isJsonObject(call.function)) {
      masker.maskArgumentsObject(call.function, 'arguments', ['message', 'tool_calls', k, 'function', 'arguments']);
    }
  });
}

/** `context` encodes the raw conversation as token IDs, `logprobs` token by token: both would undo the mask. */
export function dropOllamaExtras(body: Record<string, unknown>): boolean {
  let dropped = false;
  for (const key of ['context', 'logprobs']) {
    if (key in body) {
      delete body[key];
      dropped = true;
    }
  }
  return dropped;
}
