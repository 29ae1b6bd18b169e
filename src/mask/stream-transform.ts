// Output masking for streamed responses, one decoded frame at a time.
//
// Each text stream (a choice's content, reasoning or refusal, each tool
// call's arguments, each Responses API text part, Ollama's content and
// thinking) gets its own StreamMasker. A frame goes out with its text
// replaced by what the masker releases (possibly ''), so frames stay one to
// one and keep their order, ids, roles, finish reasons and usage. Held text
// is flushed into a frame of its own (or appended to the frame's own text)
// before anything that tells the client the text is complete: another field
// of the same choice starting, `finish_reason`, a `*.done` event, `[DONE]`,
// Ollama's `done: true`, or the end of the stream. A rule that ends the
// response sends a well-formed error frame instead of the entity, and the
// transform then drops everything after it.
import { isJsonObject, type BodyPath } from '../protocol/body-path.js';
import type { NdjsonLine } from '../protocol/ndjson.js';
import { encodeSseFrame, type SseFrame } from '../protocol/sse.js';
import { encodeStreamError } from '../protocol/stream-error.js';
import type { Operation, StreamFraming } from '../protocol/types.js';
import { DecisionLog } from './decision-log.js';
import {
  CHAT_TEXT_KEYS,
  dropLogprobs,
  dropOllamaExtras,
  maskOllamaToolCalls,
  maskResponseItem,
  maskResponseObject,
  maskResponsePart,
  WholeTextMasker,
  type OutputMasking,
} from './response-body.js';
import { StreamMasker } from './stream-masker.js';
import type { Termination } from './types.js';

export interface StreamTransformOptions extends OutputMasking {
  operation: Operation;
  framing: StreamFraming;
  /** Passed to each StreamMasker. */
  leftContext?: number;
}

/** Why the transform ended the stream early; the error frame has been emitted. */
export interface StreamStop {
  code: 'output_blocked' | 'upstream_frame_uninspectable';
  message: string;
  termination?: Termination;
}

/** One text stream inside the response. */
interface Field {
  key: string;
  /** Fields of one group (a choice, an output item) follow each other; a new one completes the previous. */
  group: string;
  path: BodyPath;
  masker: StreamMasker;
  /** A frame that carries only `text` for this field. */
  synthesize: (text: string) => string;
}

/** What handling one upstream frame produces. */
interface FrameWork {
  /** Frames to send before this one: the held-back tails of completed fields. */
  before: string[];
  changed: boolean;
  /** Fields whose text this frame carries: a tail flushed now is appended there, keeping the order. */
  appenders: Map<Field, (text: string) => void>;
  /** The frame tells the client the response (or a choice) is complete; after an error it must not be sent. */
  terminal: boolean;
}

/** Responses API text deltas, the `.done` event that completes each, and where the text lives. */
const RESPONSE_TEXT_EVENTS: ReadonlyMap<string, { done: string; doneKey: string; path: (event: Record<string, unknown>) => BodyPath }> = new Map([
  ['response.output_text.delta', { done: 'response.output_text.done', doneKey: 'text', path: (e) => ['output', num(e.output_index), 'content', num(e.content_index), 'text'] }],
  ['response.refusal.delta', { done: 'response.refusal.done', doneKey: 'refusal', path: (e) => ['output', num(e.output_index), 'content', num(e.content_index), 'refusal'] }],
  ['response.reasoning_text.delta', { done: 'response.reasoning_text.done', doneKey: 'text', path: (e) => ['output', num(e.output_index), 'content', num(e.content_index), 'text'] }],
  ['response.reasoning_summary_text.delta', { done: 'response.reasoning_summary_text.done', doneKey: 'text', path: (e) => ['output', num(e.output_index), 'summary', num(e.summary_index), 'text'] }],
  ['response.function_call_arguments.delta', { done: 'response.function_call_arguments.done', doneKey: 'arguments', path: (e) => ['output', num(e.output_index), 'arguments'] }],
  ['response.mcp_call_arguments.delta', { done: 'response.mcp_call_arguments.done', doneKey: 'arguments', path: (e) => ['output', num(e.output_index), 'arguments'] }],
  ['response.custom_tool_call_input.delta', { done: 'response.custom_tool_call_input.done', doneKey: 'input', path: (e) => ['output', num(e.output_index), 'input'] }],
]);
const RESPONSE_DONE_EVENTS = new Map([...RESPONSE_TEXT_EVENTS].map(([delta, spec]) => [spec.done, { delta, ...spec }]));
/** Events that end the response: anything still held goes out before them. */
const RESPONSE_FINAL_EVENTS = new Set(['response.completed', 'response.incomplete', 'response.failed', 'error']);

const num = (value: unknown): number => (typeof value === 'number' ? value : 0);

export class MaskingStreamTransform {
  readonly decisions = new DecisionLog();
  readonly #options: StreamTransformOptions;
  /** For whole texts inside events (`*.done`, `response.completed`), whose entities the deltas already recorded. */
  readonly #wholeTexts: WholeTextMasker;
  /** For Ollama tool calls, which arrive whole and are recorded here. */
  readonly #toolCalls: WholeTextMasker;
  readonly #fields = new Map<string, Field>();
  readonly #activeField = new Map<string, Field>();
  /** Characters of a field key already masked by an earlier, completed segment, so offsets stay absolute. */
  readonly #segmentOffsets = new Map<string, number>();
  #termination: Termination | undefined;
  #stopped: StreamStop | undefined;
  /** The chunk envelope (id, model, created...) synthesized chat and completion frames copy. */
  #envelope: Record<string, unknown> = {};
  /** Ollama's `model` and `created_at`, likewise. */
  #ollamaEnvelope: Record<string, unknown> = {};
  /** Responses events inserted so far: later events' sequence numbers move up by this much. */
  #sequenceShift = 0;
  #currentSequence: number | undefined;

  constructor(options: StreamTransformOptions) {
    this.#options = options;
    this.#wholeTexts = new WholeTextMasker(options, new DecisionLog());
    this.#toolCalls = new WholeTextMasker(options, this.decisions);
  }

  /** Set once the transform ended the stream; the caller should end the response and cancel the upstream. */
  get stopped(): StreamStop | undefined {
    return this.#stopped;
  }

  /** The text to write for one decoded upstream frame (SSE frame or NDJSON line), in order. */
  push(frame: SseFrame | NdjsonLine): string[] {
    if (this.#stopped) return [];
    return 'hasData' in frame ? this.#sseFrame(frame) : this.#ndjsonLine(frame);
  }

  /** The upstream ended: everything still held, as frames. */
  end(): string[] {
    if (this.#stopped) return [];
    // Events inserted now come after the last one sent.
    if (this.#currentSequence !== undefined) this.#currentSequence += 1;
    const work = newWork();
    this.#flushAll(work);
    return this.#finish(work, []);
  }

  #sseFrame(frame: SseFrame): string[] {
    if (!frame.hasData) return frame.incomplete ? [] : [frame.raw];
    const work = newWork();
    if (frame.data === '[DONE]') {
      work.terminal = true;
      this.#flushAll(work);
      return this.#finish(work, [passSse(frame)]);
    }
    let event: unknown;
    try {
      event = JSON.parse(frame.data);
    } catch {
      return this.#uninspectable();
    }
    if (!isJsonObject(event)) return this.#uninspectable();
    if (event.error !== undefined && event.error !== null) {
      // The upstream's own error: what was held is legitimate text and goes first.
      work.terminal = true;
      this.#flushAll(work);
      return this.#finish(work, [passSse(frame)]);
    }
    switch (this.#options.operation) {
      case 'chat':
        this.#chatChunk(event, work);
        break;
      case 'completion':
        this.#completionChunk(event, work);
        break;
      case 'response':
        this.#responseEvent(event, work);
        break;
      default:
        // An Ollama operation never streams SSE, and embeddings do not stream.
        return this.#uninspectable();
    }
    return this.#finish(work, [work.changed ? encodeSse(frame, event) : passSse(frame)]);
  }

  #ndjsonLine(line: NdjsonLine): string[] {
    const value = line.value;
    if (!isJsonObject(value)) return this.#uninspectable();
    const work = newWork();
    if (value.error !== undefined && value.error !== null) {
      work.terminal = true;
      this.#flushAll(work);
      return this.#finish(work, [passLine(line)]);
    }
    if (this.#options.operation !== 'ollama_chat' && this.#options.operation !== 'ollama_generate') return this.#uninspectable();
    this.#ollamaLine(value, work);
    return this.#finish(work, [work.changed ? `${JSON.stringify(value)}\n` : passLine(line)]);
  }

  #finish(work: FrameWork, frames: string[]): string[] {
    const termination = this.#termination ?? this.#wholeTexts.termination ?? this.#toolCalls.termination;
    // A frame saying "complete" must not precede the error: clients stop reading at [DONE] or done:true.
    const out = termination && work.terminal ? [...work.before] : [...work.before, ...frames];
    if (termination) {
      this.#stopped = {
        code: 'output_blocked',
        message: `The response was ended by output rule "${termination.rule}": it contained a ${termination.type} entity.`,
        termination,
      };
      out.push(encodeStreamError(this.#options.framing, { message: this.#stopped.message, type: 'permission_error', code: this.#stopped.code }));
    }
    return out;
  }

  #uninspectable(): string[] {
    // Fail closed: a frame the gateway cannot read may hold text it has not checked.
    this.#stopped = {
      code: 'upstream_frame_uninspectable',
      message: 'The model server sent a stream frame the gateway could not inspect, so the response was ended rather than passed on unchecked.',
    };
    return [encodeStreamError(this.#options.framing, { message: this.#stopped.message, type: 'upstream_error', code: this.#stopped.code })];
  }

  // ---- fields ------------------------------------------------------------

  /** Masks `holder[key]` (a delta of the field `fieldKey`) in place. */
  #maskDelta(work: FrameWork, holder: Record<string, unknown>, key: string, group: string, fieldKey: string, path: BodyPath, synthesize: (text: string) => string): void {
    const delta = holder[key];
    if (typeof delta !== 'string') return;
    let field = this.#fields.get(fieldKey);
    const active = this.#activeField.get(group);
    if (active !== undefined && active !== field) this.#flushField(active, work);
    if (field === undefined) {
      field = this.#newField(fieldKey, group, path, synthesize);
      this.#fields.set(fieldKey, field);
    }
    this.#activeField.set(group, field);
    const released = this.#termination ? '' : field.masker.push(delta);
    if (field.masker.termination) this.#termination ??= field.masker.termination;
    holder[key] = released;
    if (released !== delta) work.changed = true;
    work.appenders.set(field, (tail) => {
      holder[key] = (holder[key] as string) + tail;
      work.changed = true;
    });
  }

  #newField(key: string, group: string, path: BodyPath, synthesize: (text: string) => string): Field {
    const offset = this.#segmentOffsets.get(key) ?? 0;
    const masker = new StreamMasker({
      scanner: this.#options.scanner,
      session: this.#options.session,
      rules: this.#options.rules,
      ...(this.#options.leftContext !== undefined && { leftContext: this.#options.leftContext }),
      onApplied: (applied) => {
        const span = { ...applied.span, start: applied.span.start + offset, end: applied.span.end + offset };
        this.decisions.addApplied({ span, action: applied.action }, path);
      },
    });
    return { key, group, path, masker, synthesize };
  }

  #flushField(field: Field, work: FrameWork): void {
    this.#fields.delete(field.key);
    // A field that resumes later is a new segment; its offsets continue from here.
    this.#segmentOffsets.set(field.key, (this.#segmentOffsets.get(field.key) ?? 0) + field.masker.receivedLength);
    if (this.#activeField.get(field.group) === field) this.#activeField.delete(field.group);
    if (this.#termination) return;
    const tail = field.masker.flush();
    if (field.masker.termination) this.#termination = field.masker.termination;
    if (tail === '') return;
    const append = work.appenders.get(field);
    if (append) append(tail);
    else work.before.push(field.synthesize(tail));
  }

  #flushGroup(group: string, work: FrameWork): void {
    for (const field of [...this.#fields.values()]) if (field.group === group) this.#flushField(field, work);
  }

  #flushAll(work: FrameWork): void {
    for (const field of [...this.#fields.values()]) this.#flushField(field, work);
  }

  // ---- OpenAI chat completions -------------------------------------------

  #chatChunk(chunk: Record<string, unknown>, work: FrameWork): void {
    this.#envelope = pickKeys(chunk, ['id', 'object', 'created', 'model', 'system_fingerprint', 'service_tier']);
    forEachChoice(chunk, (choice, i) => {
      if (dropLogprobs(choice)) work.changed = true;
      const group = `choice:${i}`;
      const delta = choice.delta;
      const message: BodyPath = ['choices', i, 'message'];
      if (isJsonObject(delta)) {
        for (const key of CHAT_TEXT_KEYS) {
          this.#maskDelta(work, delta, key, group, `${group}:${key}`, [...message, key], (text) => this.#chatFrame(i, { [key]: text }));
        }
        if (Array.isArray(delta.tool_calls)) {
          delta.tool_calls.forEach((call, position) => {
            if (!isJsonObject(call) || !isJsonObject(call.function)) return;
            const k = typeof call.index === 'number' ? call.index : position;
            this.#maskDelta(work, call.function, 'arguments', group, `${group}:tool:${k}`, [...message, 'tool_calls', k, 'function', 'arguments'], (text) =>
              this.#chatFrame(i, { tool_calls: [{ index: k, function: { arguments: text } }] }),
            );
          });
        }
        if (isJsonObject(delta.function_call)) {
          this.#maskDelta(work, delta.function_call, 'arguments', group, `${group}:function_call`, [...message, 'function_call', 'arguments'], (text) =>
            this.#chatFrame(i, { function_call: { arguments: text } }),
          );
        }
      }
      if (choice.finish_reason !== undefined && choice.finish_reason !== null) {
        work.terminal = true;
        this.#flushGroup(group, work);
      }
    });
  }

  #chatFrame(index: number, delta: Record<string, unknown>): string {
    return encodeSseFrame({ data: JSON.stringify({ ...this.#envelope, choices: [{ index, delta, logprobs: null, finish_reason: null }] }) });
  }

  // ---- OpenAI completions -------------------------------------------------

  #completionChunk(chunk: Record<string, unknown>, work: FrameWork): void {
    this.#envelope = pickKeys(chunk, ['id', 'object', 'created', 'model', 'system_fingerprint']);
    forEachChoice(chunk, (choice, i) => {
      if (dropLogprobs(choice)) work.changed = true;
      const group = `choice:${i}`;
      this.#maskDelta(work, choice, 'text', group, `${group}:text`, ['choices', i, 'text'], (text) =>
        encodeSseFrame({ data: JSON.stringify({ ...this.#envelope, choices: [{ index: i, text, logprobs: null, finish_reason: null }] }) }),
      );
      if (choice.finish_reason !== undefined && choice.finish_reason !== null) {
        work.terminal = true;
        this.#flushGroup(group, work);
      }
    });
  }

  // ---- OpenAI Responses API ----------------------------------------------

  #responseEvent(event: Record<string, unknown>, work: FrameWork): void {
    const type = typeof event.type === 'string' ? event.type : '';
    this.#currentSequence = typeof event.sequence_number === 'number' ? event.sequence_number : undefined;
    const textEvent = RESPONSE_TEXT_EVENTS.get(type);
    const doneEvent = RESPONSE_DONE_EVENTS.get(type);
    if (textEvent) {
      const fieldKey = responseFieldKey(type, event);
      const identity = pickKeys(event, ['item_id', 'output_index', 'content_index', 'summary_index']);
      this.#maskDelta(work, event, 'delta', `item:${num(event.output_index)}`, fieldKey, textEvent.path(event), (text) =>
        encodeSseFrame({
          event: type,
          data: JSON.stringify({ type, ...identity, delta: text, ...(type === 'response.output_text.delta' && { logprobs: [] }), ...this.#syntheticSequence() }),
        }),
      );
      if (Array.isArray(event.logprobs) && event.logprobs.length > 0) {
        event.logprobs = [];
        work.changed = true;
      }
    } else if (doneEvent) {
      const field = this.#fields.get(responseFieldKey(doneEvent.delta, event));
      if (field) this.#flushField(field, work);
      this.#wholeTexts.maskAt(event, doneEvent.doneKey, doneEvent.path(event));
      work.changed = true;
    } else if (type === 'response.content_part.added' || type === 'response.content_part.done') {
      if (isJsonObject(event.part)) maskResponsePart(event.part, ['output', num(event.output_index), 'content', num(event.content_index)], this.#wholeTexts);
      work.changed = true;
    } else if (type === 'response.output_item.added' || type === 'response.output_item.done') {
      if (isJsonObject(event.item)) maskResponseItem(event.item, ['output', num(event.output_index)], this.#wholeTexts);
      work.changed = true;
    } else if (isJsonObject(event.response)) {
      if (RESPONSE_FINAL_EVENTS.has(type)) {
        work.terminal = true;
        this.#flushAll(work);
      }
      maskResponseObject(event.response, [], this.#wholeTexts);
      work.changed = true;
    } else if (RESPONSE_FINAL_EVENTS.has(type)) {
      work.terminal = true;
      this.#flushAll(work);
    }
    if (this.#currentSequence !== undefined && this.#sequenceShift > 0) {
      event.sequence_number = this.#currentSequence + this.#sequenceShift;
      work.changed = true;
    }
  }

  /** Sequence number for an event inserted before the current one; later events shift up by one. */
  #syntheticSequence(): { sequence_number?: number } {
    if (this.#currentSequence === undefined) return {};
    return { sequence_number: this.#currentSequence + this.#sequenceShift++ };
  }

  // ---- Ollama --------------------------------------------------------------

  #ollamaLine(line: Record<string, unknown>, work: FrameWork): void {
    this.#ollamaEnvelope = pickKeys(line, ['model', 'created_at']);
    if (dropOllamaExtras(line)) work.changed = true;
    if (this.#options.operation === 'ollama_generate') {
      for (const key of ['thinking', 'response']) {
        this.#maskDelta(work, line, key, 'response', `response:${key}`, [key], (text) =>
          `${JSON.stringify({ ...this.#ollamaEnvelope, response: key === 'response' ? text : '', ...(key === 'thinking' && { thinking: text }), done: false })}\n`,
        );
      }
    } else if (isJsonObject(line.message)) {
      const message = line.message;
      for (const key of ['thinking', 'content']) {
        this.#maskDelta(work, message, key, 'message', `message:${key}`, ['message', key], (text) =>
          `${JSON.stringify({ ...this.#ollamaEnvelope, message: { role: 'assistant', content: key === 'content' ? text : '', ...(key === 'thinking' && { thinking: text }) }, done: false })}\n`,
        );
      }
      if (Array.isArray(message.tool_calls)) {
        // Ollama sends each tool call whole, arguments as an object, in one line.
        maskOllamaToolCalls(message, this.#toolCalls);
        work.changed = true;
      }
    }
    if (line.done === true) {
      work.terminal = true;
      this.#flushAll(work);
    }
  }
}

function newWork(): FrameWork {
  return { before: [], changed: false, appenders: new Map(), terminal: false };
}

function forEachChoice(chunk: Record<string, unknown>, visit: (choice: Record<string, unknown>, index: number) => void): void {
  if (!Array.isArray(chunk.choices)) return;
  chunk.choices.forEach((choice, position) => {
    if (isJsonObject(choice)) visit(choice, typeof choice.index === 'number' ? choice.index : position);
  });
}

function responseFieldKey(deltaType: string, event: Record<string, unknown>): string {
  return `${deltaType}:${num(event.output_index)}:${num(event.content_index)}:${num(event.summary_index)}`;
}

function pickKeys(source: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const picked: Record<string, unknown> = {};
  for (const key of keys) if (source[key] !== undefined) picked[key] = source[key];
  return picked;
}

/** A frame re-serialised with new data, keeping its event, id and comments. */
function encodeSse(frame: SseFrame, data: unknown): string {
  const comments = frame.comments.map((comment) => `: ${comment.replace(/[\r\n]/g, ' ')}\n`).join('');
  return comments + encodeSseFrame({ ...(frame.event !== undefined && { event: frame.event }), ...(frame.id !== undefined && { id: frame.id }), data: JSON.stringify(data) });
}

/** An untouched frame, re-terminated if the upstream stopped before its blank line. */
function passSse(frame: SseFrame): string {
  return frame.incomplete ? encodeSseFrame({ ...(frame.event !== undefined && { event: frame.event }), ...(frame.id !== undefined && { id: frame.id }), data: frame.data }) : frame.raw;
}

function passLine(line: NdjsonLine): string {
  return line.incomplete ? `${line.raw}\n` : line.raw;
}
