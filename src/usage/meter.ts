// Token accounting for one call. The meter reads the usage the upstream
// reports wherever each wire format puts it (a non-streamed body, the last
// chunk of an OpenAI stream, Responses' `response.completed`, Ollama's
// `prompt_eval_count`/`eval_count`) and, when the upstream reports nothing,
// estimates from the text that went by and says so.
//
// When the gateway asked an OpenAI stream for usage on the client's behalf
// (`stream_options.include_usage`), the meter also removes what that added
// (the usage-only chunk and the `usage: null` on every other chunk), so the
// client sees the stream it asked for.
import type { NdjsonLine } from '../protocol/ndjson.js';
import { encodeSseFrame, sseJson, type SseFrame } from '../protocol/sse.js';
import type { ModelRequest, Operation } from '../protocol/types.js';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** True when some of the numbers were estimated from text, not reported by the model server. */
  estimated: boolean;
}

/** A rough, model-independent estimate: English text averages about four characters per token. */
const CHARS_PER_TOKEN = 4;
/** Per-message framing tokens (role markers) most chat templates add. */
const TOKENS_PER_MESSAGE = 4;

export function estimateTokens(chars: number): number {
  return Math.ceil(chars / CHARS_PER_TOKEN);
}

/** The prompt's size in tokens, estimated from every text the request carries. */
export function estimatePromptTokens(request: ModelRequest): number {
  let chars = 0;
  for (const field of request.fields) chars += field.text.length;
  return estimateTokens(chars) + TOKENS_PER_MESSAGE * request.messages.length;
}

/** The most the request asked the model to generate, in whichever parameter its dialect uses. */
export function requestedMaxTokens(request: ModelRequest): number | undefined {
  const p = request.params;
  const options = isObject(p.options) ? p.options : {};
  for (const value of [p.max_completion_tokens, p.max_tokens, p.max_output_tokens, options.num_predict]) {
    if (typeof value === 'number' && Number.isFinite(value) && value > 0) return Math.floor(value);
  }
  return undefined;
}

/** Whether the gateway must ask this call's upstream for usage the client did not ask for. */
export function needsUsageRequested(request: ModelRequest): boolean {
  if (!request.stream || request.dialect !== 'openai') return false;
  if (request.operation !== 'chat' && request.operation !== 'completion') return false;
  const options = request.body.stream_options;
  return !(isObject(options) && options.include_usage === true);
}

/** The body to forward with usage requested, keeping the client's other stream options. */
export function withUsageRequested(body: Record<string, unknown>): Record<string, unknown> {
  const options = isObject(body.stream_options) ? body.stream_options : {};
  return { ...body, stream_options: { ...options, include_usage: true } };
}

interface ReportedUsage {
  prompt?: number;
  completion?: number;
  total?: number;
}

/** Bounded copy of a passed-through JSON body, to read its usage once it has all gone by. */
const MAX_METERED_BODY_BYTES = 32 * 1024 * 1024;

export class UsageMeter {
  readonly #operation: Operation;
  readonly #promptEstimate: number;
  /** Strip what the gateway's own `include_usage` added before the client sees it. */
  readonly #stripUsage: boolean;
  #reported: ReportedUsage | undefined;
  #outputChars = 0;
  #bodyChunks: Buffer[] = [];
  #bodyBytes = 0;

  constructor(request: ModelRequest, options: { stripUsage: boolean }) {
    this.#operation = request.operation;
    this.#promptEstimate = estimatePromptTokens(request);
    this.#stripUsage = options.stripUsage;
  }

  /** The gateway asks the upstream for usage the client did not ask for, and removes it again. */
  get stripsUsage(): boolean {
    return this.#stripUsage;
  }

  get promptEstimate(): number {
    return this.#promptEstimate;
  }

  /**
   * Reads one upstream stream frame. Returns the frame to pass on (the same
   * one, or a rewrite without the usage the client did not ask for), or
   * undefined to drop it.
   */
  frame<F extends SseFrame | NdjsonLine>(frame: F): F | undefined {
    if ('hasData' in frame) return this.#sseFrame(frame) as F | undefined;
    if (isObject(frame.value)) this.#ollama(frame.value);
    return frame;
  }

  /** A chunk of a passed-through, non-streamed body. */
  bodyChunk(chunk: Buffer): void {
    this.#bodyBytes += chunk.length;
    if (this.#bodyBytes <= MAX_METERED_BODY_BYTES) this.#bodyChunks.push(chunk);
    else this.#bodyChunks = [];
  }

  /**
   * A whole non-streamed body, parsed (by the caller, or here from bodyChunk's copy). Returns the body parsed
   * here, if it is a JSON object, so recording can take its words without parsing it again (pipeline/record.ts).
   */
  body(parsed?: unknown): Record<string, unknown> | undefined {
    let own = false;
    if (parsed === undefined) {
      if (this.#bodyChunks.length === 0) return undefined;
      try {
        parsed = JSON.parse(Buffer.concat(this.#bodyChunks).toString('utf8'));
        own = true;
      } catch {
        return undefined;
      } finally {
        this.#bodyChunks = [];
      }
    }
    if (!isObject(parsed)) return undefined;
    if (this.#operation.startsWith('ollama_')) this.#ollama(parsed);
    else this.#openAiBody(parsed);
    return own ? parsed : undefined;
  }

  #openAiBody(parsed: Record<string, unknown>): void {
    this.#openAiUsage(parsed.usage);
    for (const choice of arrayOf(parsed.choices)) {
      if (!isObject(choice)) continue;
      this.#countText(choice.text);
      if (isObject(choice.message)) this.#countMessage(choice.message);
    }
    for (const item of arrayOf(parsed.output)) {
      if (!isObject(item)) continue;
      for (const part of arrayOf(item.content)) if (isObject(part)) this.#countText(part.text);
      this.#countText(item.arguments);
    }
  }

  /** What the call used: reported numbers where the upstream gave them, estimates otherwise. */
  result(): Usage {
    const r = this.#reported ?? {};
    const prompt = r.prompt ?? (r.total !== undefined && r.completion !== undefined ? r.total - r.completion : undefined);
    const completion = r.completion ?? (r.total !== undefined && prompt !== undefined ? r.total - prompt : undefined);
    const promptTokens = prompt ?? this.#promptEstimate;
    const completionTokens = completion ?? (generatesText(this.#operation) ? estimateTokens(this.#outputChars) : 0);
    return {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      estimated: prompt === undefined || (completion === undefined && generatesText(this.#operation)),
    };
  }

  /** Whether the upstream reported usage itself. */
  get reported(): boolean {
    return this.#reported !== undefined;
  }

  #sseFrame(frame: SseFrame): SseFrame | undefined {
    if (!frame.hasData || frame.data === '[DONE]') return frame;
    // Parsed once for every stage that reads the frame (sseJson).
    const event = sseJson(frame);
    if (!isObject(event)) return frame;
    if (this.#operation === 'response') {
      this.#responseEvent(event);
      return frame;
    }
    const hasUsage = isObject(event.usage);
    if (hasUsage) this.#openAiUsage(event.usage);
    for (const choice of arrayOf(event.choices)) {
      if (!isObject(choice)) continue;
      this.#countText(choice.text);
      if (isObject(choice.delta)) this.#countMessage(choice.delta);
    }
    if (!this.#stripUsage || !('usage' in event)) return frame;
    // The chunk that exists only because the gateway asked for usage.
    if (hasUsage && arrayOf(event.choices).length === 0) return undefined;
    const { usage: _added, ...rest } = event;
    const data = JSON.stringify(rest);
    return { ...frame, data, json: rest, raw: encodeSseFrame({ ...(frame.event !== undefined && { event: frame.event }), ...(frame.id !== undefined && { id: frame.id }), data }) };
  }

  #responseEvent(event: Record<string, unknown>): void {
    if (typeof event.delta === 'string' && typeof event.type === 'string' && event.type.endsWith('.delta')) this.#outputChars += event.delta.length;
    if (isObject(event.response) && isObject(event.response.usage)) this.#openAiUsage(event.response.usage);
  }

  #ollama(value: Record<string, unknown>): void {
    this.#countText(value.response);
    if (isObject(value.message)) this.#countMessage(value.message);
    const prompt = count(value.prompt_eval_count);
    const completion = count(value.eval_count);
    if (prompt !== undefined || completion !== undefined) this.#reported = { prompt, completion };
  }

  /** OpenAI (`prompt_tokens`/`completion_tokens`) and Responses (`input_tokens`/`output_tokens`) spellings. */
  #openAiUsage(usage: unknown): void {
    if (!isObject(usage)) return;
    const reported: ReportedUsage = {
      prompt: count(usage.prompt_tokens) ?? count(usage.input_tokens),
      completion: count(usage.completion_tokens) ?? count(usage.output_tokens),
      total: count(usage.total_tokens),
    };
    if (reported.prompt !== undefined || reported.completion !== undefined || reported.total !== undefined) this.#reported = reported;
  }

  #countMessage(message: Record<string, unknown>): void {
    this.#countText(message.content);
    this.#countText(message.reasoning_content);
    this.#countText(message.reasoning);
    this.#countText(message.thinking);
    for (const call of arrayOf(message.tool_calls)) {
      if (isObject(call) && isObject(call.function)) {
        this.#countText(call.function.arguments);
        this.#countText(call.function.name);
      }
    }
  }

  #countText(value: unknown): void {
    if (typeof value === 'string') this.#outputChars += value.length;
    else if (isObject(value)) this.#outputChars += JSON.stringify(value).length; // Ollama tool-call arguments are objects
  }
}

/** Embeddings generate nothing: their completion tokens are 0, not unknown. */
export function generatesText(operation: Operation): boolean {
  return operation !== 'embedding' && operation !== 'ollama_embed';
}

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function arrayOf(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
