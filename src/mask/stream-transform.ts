// Output masking for streamed responses, one decoded frame at a time.
//
// Every string in a frame goes through one walker (walk-output.ts) driven by
// the protocol's declared shape: metadata passes, token ids and logprobs go,
// and everything else is text. A string that is a delta of a text field
// (output-shapes.ts: deltaLocation) feeds that field's own masker, keyed by
// its full path: each choice's content, reasoning, thinking, refusal, audio
// transcript, each tool call's arguments (as decoded JSON), each Responses
// API delta family. Every other string is masked whole.
//
// A field's held-back suffix is released only when the protocol says that
// field is complete: its choice's `finish_reason`, its `*.done` event or
// output item's end, `[DONE]`, Ollama's `done: true`, or the end of the
// stream. An empty or unrelated sibling never releases it. The tail goes
// into the frame's own text for the field when the frame carries one, or
// into a frame of its own just before. A rule that ends the response sends
// a well-formed error frame instead of the entity, and the transform then
// drops everything after it.
import { isJsonObject, type BodyPath } from '../protocol/body-path.js';
import type { NdjsonLine } from '../protocol/ndjson.js';
import { encodeSseFrame, sseDataLines, takeSseJson, type SseFrame } from '../protocol/sse.js';
import { encodeStreamError } from '../protocol/stream-error.js';
import type { Operation, StreamFraming } from '../protocol/types.js';
import { DecisionLog } from './decision-log.js';
import { JsonTextMasker, type FieldMasker } from './json-text.js';
import { BINARY_DELTA_EVENTS, deltaLocation, isMetadataValue, outputShape, responseField, type DeltaLocation, type OutputShape } from './output-shapes.js';
import { WholeTextMasker, type OutputMasking } from './response-body.js';
import { StreamMasker, type StreamMaskerOptions } from './stream-masker.js';
import type { Termination } from './types.js';
import { walkOutput, type StringSlot, type TextKind } from './walk-output.js';

export interface StreamTransformOptions extends OutputMasking {
  operation: Operation;
  framing: StreamFraming;
  /** Passed to each StreamMasker. */
  leftContext?: number;
  /**
   * The words a frame's payload adds to the answer (the search index's
   * `generatedText`). Given, the transform keeps the words of the frames it
   * returns (`takeWords`) from the objects it masked, so recording need not
   * parse them again.
   */
  wordsOf?: (payload: Record<string, unknown>) => string;
}

/** Why the transform ended the stream early; the error frame has been emitted. */
export interface StreamStop {
  code: 'output_blocked' | 'upstream_frame_uninspectable';
  message: string;
  termination?: Termination;
}

/** One text field of the response, streamed in deltas. */
interface Field {
  location: DeltaLocation;
  masker: FieldMasker;
  /** Output index and content index of a Responses field, which `content_part.done` completes. */
  part?: string;
  /** A frame that carries only `text` for this field, and the payload it carries. */
  synthesize: (text: string) => { frame: string; payload: Record<string, unknown> };
}

/** What handling one upstream frame produces. */
interface FrameWork {
  /** Frames to send before this one: the held-back tails of completed fields. */
  before: string[];
  /** The words `before` adds (only with `wordsOf`). */
  beforeWords: string;
  changed: boolean;
  /**
   * Fields whose text this frame carries, and where, as pairs (field, slot): a tail flushed now is appended
   * there, keeping the order. A frame has one or two; an array is cheaper to make per frame than a Map.
   */
  slots: Array<Field | StringSlot>;
  /** The frame tells the client the response (or a choice) is complete; after an error it must not be sent. */
  terminal: boolean;
}

/** Events that end a Responses stream: anything still held goes out before them. */
const RESPONSE_FINAL_EVENTS = new Set(['response.completed', 'response.incomplete', 'response.failed', 'error']);
/** Responses events repeating text the deltas carried (and recorded) already. */
const isEchoEvent = (type: string): boolean => type.endsWith('.done') || type === 'response.completed' || type === 'response.incomplete';

export class MaskingStreamTransform {
  readonly decisions = new DecisionLog();
  readonly #options: StreamTransformOptions;
  readonly #shape: OutputShape;
  /** Whole values inside frames (a tool's name, annotations, items, error messages). */
  readonly #wholeValues: WholeTextMasker;
  /** Whole texts the deltas already recorded (`*.done`, `response.completed`): masked again, not recorded twice. */
  readonly #echoes: WholeTextMasker;
  readonly #fields = new Map<string, Field>();
  /** Characters of a field key already masked by an earlier, completed segment, so offsets stay absolute. */
  readonly #segmentOffsets = new Map<string, number>();
  #termination: Termination | undefined;
  #stopped: StreamStop | undefined;
  /**
   * The envelope of the last frame sent, masked (the values of ENVELOPE_KEYS): synthesized frames copy it.
   * Its values only, not the frame, which would otherwise stay alive until the next one (and so outlive the
   * young generation, to be collected by a full GC).
   */
  readonly #lastEnvelope: unknown[] = ENVELOPE_KEYS.map(() => undefined);
  /** Responses events inserted so far: later events' sequence numbers move up by this much. */
  #sequenceShift = 0;
  #currentSequence: number | undefined;
  /** Paths seen in frames and their delta locations (`#deltaAt`), the first few only. */
  readonly #knownDeltas: Array<{ path: BodyPath; location: DeltaLocation | undefined }> = [];
  /** The words of the frames returned since `takeWords`; undefined once a frame's are not known without parsing it. */
  #words: string | undefined = '';

  constructor(options: StreamTransformOptions) {
    this.#options = options;
    this.#shape = outputShape(options.operation);
    this.#wholeValues = new WholeTextMasker(options, this.decisions);
    this.#echoes = new WholeTextMasker(options, new DecisionLog());
  }

  /** Set once the transform ended the stream; the caller should end the response and cancel the upstream. */
  get stopped(): StreamStop | undefined {
    return this.#stopped;
  }

  /** Characters received but not yet released, over all fields (what masking holds in memory). */
  get heldLength(): number {
    let held = 0;
    for (const field of this.#fields.values()) held += field.masker instanceof StreamMasker ? field.masker.heldLength : 0;
    return held;
  }

  /**
   * The words of the frames returned since the last call, exactly as the
   * search index reads them from the frames' text (`chunkText` of them
   * joined); undefined without `wordsOf`, or when a frame's words are not
   * known without parsing it again (the index then extracts them itself).
   */
  takeWords(): string | undefined {
    const words = this.#words;
    this.#words = '';
    return this.#options.wordsOf ? words : undefined;
  }

  /** Adds the words of one more frame returned (undefined: not known). */
  #noteWords(words: string | undefined): void {
    this.#words = this.#words === undefined || words === undefined ? undefined : this.#words + words;
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
    this.#flushWhere(() => true, work);
    return this.#finish(work, [], '');
  }

  #sseFrame(upstreamFrame: SseFrame): string[] {
    // Comments, event names and ids reach a raw client too.
    const frame = this.#maskSseEnvelope(upstreamFrame);
    const wordsOf = this.#options.wordsOf;
    if (!frame.hasData) {
      if (frame.incomplete) return [];
      // Comments and fields only: no words, unless the upstream's own text has a line the index reads otherwise.
      if (wordsOf) this.#noteWords(frame !== upstreamFrame || sseDataLines(frame.raw) === 0 ? '' : undefined);
      return [frame === upstreamFrame ? frame.raw : encodeSse(frame, undefined)];
    }
    const work = newWork();
    if (frame.data === '[DONE]') {
      work.terminal = true;
      this.#flushWhere(() => true, work);
      // Its comments, event name or id masked: written again around the same data.
      if (frame !== upstreamFrame) return this.#finish(work, [encodeSse(frame, frame.data)], '');
      return this.#finish(work, [passSse(frame)], frame.incomplete || sseDataLines(frame.raw) === 1 ? '' : undefined);
    }
    const op = this.#options.operation;
    if (op !== 'chat' && op !== 'completion' && op !== 'response') return this.#uninspectable();
    // The meter's parse, when it read the frame first; masked in place from here on, so taken from the frame.
    const event = takeSseJson(frame);
    upstreamFrame.json = undefined;
    if (!isJsonObject(event)) return this.#uninspectable();
    this.#maskFrame(event, work);
    if (work.changed || frame !== upstreamFrame) return this.#finish(work, [encodeSse(frame, JSON.stringify(event))], wordsOf?.(event));
    // Passed as it came: its words are the event's if the index reads its one `data:` line as the client does.
    return this.#finish(work, [passSse(frame)], wordsOf && !frame.incomplete && sseDataLines(frame.raw) === 1 ? wordsOf(event) : undefined);
  }

  /** The frame with its comments, event name and id masked (the same object when nothing changed). */
  #maskSseEnvelope(frame: SseFrame): SseFrame {
    if (frame.comments.length === 0 && frame.event === undefined && frame.id === undefined) return frame;
    const masked = (value: string, key: string): string => (isMetadataValue(value) ? value : this.#wholeValues.mask(value, [`sse:${key}`]));
    const comments = frame.comments.map((comment) => (comment === '' ? comment : this.#wholeValues.mask(comment, ['sse:comment'])));
    const event = frame.event === undefined ? undefined : masked(frame.event, 'event');
    const id = frame.id === undefined ? undefined : masked(frame.id, 'id');
    if (event === frame.event && id === frame.id && comments.every((c, i) => c === frame.comments[i])) return frame;
    return { ...frame, comments, ...(event !== undefined && { event }), ...(id !== undefined && { id }) };
  }

  #ndjsonLine(line: NdjsonLine): string[] {
    const value = line.value;
    const op = this.#options.operation;
    if (!isJsonObject(value) || (op !== 'ollama_chat' && op !== 'ollama_generate')) return this.#uninspectable();
    const work = newWork();
    this.#maskFrame(value, work);
    // A line that is one JSON object is read by the index as that object, whether passed as it came or written again.
    return this.#finish(work, [work.changed ? `${JSON.stringify(value)}\n` : passLine(line)], this.#options.wordsOf?.(value));
  }

  /** Masks one frame in place: deltas into their fields, every other string whole; then completes what the frame completes. */
  #maskFrame(frame: Record<string, unknown>, work: FrameWork): void {
    const op = this.#options.operation;
    const type = typeof frame.type === 'string' ? frame.type : '';
    const upstreamError = frame.error !== undefined && frame.error !== null;
    if (upstreamError) {
      // The upstream's own error: what was held is legitimate text and goes first.
      work.terminal = true;
      this.#flushWhere(() => true, work);
    }
    if (op === 'response') {
      this.#currentSequence = typeof frame.sequence_number === 'number' ? frame.sequence_number : undefined;
      if (BINARY_DELTA_EVENTS.has(type) && typeof frame.delta === 'string' && frame.delta !== '') {
        frame.delta = '';
        work.changed = true;
      }
    }
    const whole = op === 'response' && isEchoEvent(type) ? this.#echoes : this.#wholeValues;
    // Fields are named by the upstream's ids, read before the walk masks them.
    const responseLocation = op === 'response' ? responseField(type.replace(/\.(delta|done)$/, ''), frame) : undefined;
    const named = responseLocation?.key;
    const changed = walkOutput(frame, this.#shape, (value, path, kind, slot) => {
      const location = upstreamError ? undefined : op === 'response' ? (deltaLocation(op, frame, path) && responseLocation) : this.#deltaAt(op, frame, path);
      if (location && slot) return this.#pushDelta(work, frame, location, path, value, kind, slot);
      return whole.mask(value, path, kind);
    });
    if (changed) work.changed = true;
    if (!upstreamError) {
      // Synthesized frames copy the envelope as it went out, masked.
      if (op !== 'response') for (let i = 0; i < ENVELOPE_KEYS.length; i++) this.#lastEnvelope[i] = frame[ENVELOPE_KEYS[i]!];
      this.#complete(frame, type, named, work);
    }
    if (op === 'response' && this.#currentSequence !== undefined && this.#sequenceShift > 0) {
      frame.sequence_number = this.#currentSequence + this.#sequenceShift;
      work.changed = true;
    }
  }

  /**
   * `deltaLocation` outside the Responses API, where it depends on the path alone: the location
   * found for the same path in an earlier frame (every frame of a field has the same path).
   */
  #deltaAt(op: Operation, frame: Record<string, unknown>, path: BodyPath): DeltaLocation | undefined {
    for (const known of this.#knownDeltas) if (samePath(known.path, path)) return known.location;
    const location = deltaLocation(op, frame, path);
    if (this.#knownDeltas.length < KNOWN_DELTA_PATHS) this.#knownDeltas.push({ path, location });
    return location;
  }

  /** Releases the fields this frame says are complete. */
  #complete(frame: Record<string, unknown>, type: string, named: string | undefined, work: FrameWork): void {
    switch (this.#options.operation) {
      case 'chat':
      case 'completion':
        if (!Array.isArray(frame.choices)) return;
        frame.choices.forEach((choice, position) => {
          if (!isJsonObject(choice) || choice.finish_reason === undefined || choice.finish_reason === null) return;
          const group = `choice:${typeof choice.index === 'number' ? choice.index : position}`;
          work.terminal = true;
          this.#flushWhere((field) => field.location.group === group, work);
        });
        return;
      case 'response':
        if (RESPONSE_FINAL_EVENTS.has(type)) {
          work.terminal = true;
          this.#flushWhere(() => true, work);
        } else if (type === 'response.output_item.done') {
          const group = `item:${String(frame.output_index ?? '')}`;
          this.#flushWhere((field) => field.location.group === group, work);
        } else if (type === 'response.content_part.done') {
          const part = `${String(frame.output_index)}|${String(frame.content_index)}`;
          this.#flushWhere((field) => field.part === part, work);
        } else if (type.endsWith('.done')) {
          this.#flushWhere((field) => field.location.key === named, work);
        }
        return;
      case 'ollama_chat':
      case 'ollama_generate':
        if (frame.done === true) {
          work.terminal = true;
          this.#flushWhere(() => true, work);
        }
        return;
      case 'embedding':
      case 'ollama_embed':
        return;
    }
  }

  #uninspectable(): string[] {
    this.#noteWords(undefined);
    // Fail closed: a frame the gateway cannot read may hold text it has not checked.
    this.#stopped = {
      code: 'upstream_frame_uninspectable',
      message: 'The model server sent a stream frame the gateway could not inspect, so the response was ended rather than passed on unchecked.',
    };
    return [encodeStreamError(this.#options.framing, { message: this.#stopped.message, type: 'upstream_error', code: this.#stopped.code })];
  }

  /** What to send for one frame: the tails completed before it, then `frames` (whose words are `words`). */
  #finish(work: FrameWork, frames: string[], words?: string): string[] {
    const termination = this.#termination ?? this.#wholeValues.termination ?? this.#echoes.termination;
    // A frame saying "complete" must not precede the error: clients stop reading at [DONE] or done:true.
    const out = termination && work.terminal ? [...work.before] : work.before.length === 0 ? frames : [...work.before, ...frames];
    if (this.#options.wordsOf) this.#noteWords(termination ? undefined : words === undefined ? undefined : work.beforeWords + words);
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

  // ---- fields ------------------------------------------------------------

  /** Feeds one delta to its field's masker; returns what may be released now. */
  #pushDelta(work: FrameWork, frame: Record<string, unknown>, location: DeltaLocation, path: BodyPath, delta: string, kind: TextKind, slot: StringSlot): string {
    let field = this.#fields.get(location.key);
    if (field === undefined) {
      field = this.#newField(location, frame, path, kind === 'json' || location.json === true);
      this.#fields.set(location.key, field);
    }
    const released = this.#termination ? '' : field.masker.push(delta);
    if (field.masker.termination) this.#termination ??= field.masker.termination;
    work.slots.push(field, slot);
    return released;
  }

  #newField(location: DeltaLocation, frame: Record<string, unknown>, path: BodyPath, json: boolean): Field {
    const offset = this.#segmentOffsets.get(location.key) ?? 0;
    const options: StreamMaskerOptions = {
      scanner: this.#options.scanner,
      session: this.#options.session,
      rules: this.#options.rules,
      ...(this.#options.leftContext !== undefined && { leftContext: this.#options.leftContext }),
      onApplied: (applied) => {
        const span = { ...applied.span, start: applied.span.start + offset, end: applied.span.end + offset };
        this.decisions.addApplied({ span, action: applied.action }, location.recordPath);
      },
    };
    const masker = json ? new JsonTextMasker(options) : new StreamMasker(options);
    const part = this.#options.operation === 'response' ? `${String(frame.output_index)}|${String(frame.content_index)}` : undefined;
    return { location, masker, ...(part !== undefined && { part }), synthesize: this.#synthesizer(frame, path) };
  }

  /** How to write a frame carrying only a tail of the field at `path` of `frame` (and the payload it carries). */
  #synthesizer(frame: Record<string, unknown>, path: BodyPath): Field['synthesize'] {
    const op = this.#options.operation;
    switch (op) {
      case 'chat':
      case 'completion': {
        const index = path[1];
        const rest = path.slice(op === 'chat' ? 3 : 2);
        return (text) => {
          const choice = op === 'chat' ? { index, delta: build(rest, text) } : { index, text: '', ...(build(rest, text) as object) };
          const payload = { ...this.#envelope(), choices: [{ ...choice, logprobs: null, finish_reason: null }] };
          return { frame: encodeSseFrame({ data: JSON.stringify(payload) }), payload };
        };
      }
      case 'response': {
        const type = frame.type as string;
        // Read when first needed: by then the walk has masked the frame's other strings.
        let template: Record<string, unknown> | undefined;
        return (text) => {
          template ??= Object.fromEntries(
            Object.entries(frame)
              .filter(([key]) => key !== 'delta' && key !== 'obfuscation' && key !== 'sequence_number')
              .map(([key, value]) => [key, key === 'logprobs' ? [] : value]),
          );
          const payload = { ...template, delta: text, ...this.#syntheticSequence() };
          return { frame: encodeSseFrame({ event: type, data: JSON.stringify(payload) }), payload };
        };
      }
      case 'ollama_chat':
        return (text) => ndjsonFrame({ ...this.#envelope(), message: { role: 'assistant', content: '', ...(build(path.slice(1), text) as object) }, done: false });
      case 'ollama_generate':
        return (text) => ndjsonFrame({ ...this.#envelope(), response: '', ...(build(path, text) as object), done: false });
      case 'embedding':
      case 'ollama_embed':
        return () => ({ frame: '', payload: {} });
    }
  }

  /** Releases the held tails of the fields `which` selects, in the order the fields started. */
  #flushWhere(which: (field: Field) => boolean, work: FrameWork): void {
    for (const [key, field] of [...this.#fields]) {
      if (!which(field)) continue;
      this.#fields.delete(key);
      // A field that resumes later is a new segment; its offsets continue from here.
      this.#segmentOffsets.set(key, (this.#segmentOffsets.get(key) ?? 0) + field.masker.receivedLength);
      if (this.#termination) continue;
      const tail = field.masker.flush();
      if (field.masker.termination) this.#termination = field.masker.termination;
      if (tail === '') continue;
      const slot = slotOf(work, field);
      if (slot === undefined) {
        const { frame, payload } = field.synthesize(tail);
        work.before.push(frame);
        if (this.#options.wordsOf) work.beforeWords += this.#options.wordsOf(payload);
        continue;
      }
      const holder = slot.holder as Record<string | number, unknown>;
      holder[slot.key] = (holder[slot.key] as string) + tail;
      work.changed = true;
    }
  }

  /** The envelope of the last frame sent, as an object (built when a frame is synthesized, not for every frame). */
  #envelope(): Record<string, unknown> {
    const envelope: Record<string, unknown> = {};
    ENVELOPE_KEYS.forEach((key, i) => this.#lastEnvelope[i] !== undefined && (envelope[key] = this.#lastEnvelope[i]));
    return envelope;
  }

  /** Sequence number for an event inserted before the current one; later events shift up by one. */
  #syntheticSequence(): { sequence_number?: number } {
    if (this.#currentSequence === undefined) return {};
    return { sequence_number: this.#currentSequence + this.#sequenceShift++ };
  }
}

/** The members of a frame a synthesized frame copies from the last one sent. */
const ENVELOPE_KEYS = ['id', 'object', 'created', 'model', 'system_fingerprint', 'service_tier', 'created_at'] as const;

/** How many paths `#deltaAt` remembers per stream: a chat frame has one or two text fields per choice. */
const KNOWN_DELTA_PATHS = 8;

function samePath(a: BodyPath, b: BodyPath): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function ndjsonFrame(payload: Record<string, unknown>): { frame: string; payload: Record<string, unknown> } {
  return { frame: `${JSON.stringify(payload)}\n`, payload };
}

function newWork(): FrameWork {
  return { before: [], beforeWords: '', changed: false, slots: [], terminal: false };
}

/** Where this frame carries `field`'s text (its last delta there), if it does. */
function slotOf(work: FrameWork, field: Field): StringSlot | undefined {
  for (let i = work.slots.length - 2; i >= 0; i -= 2) if (work.slots[i] === field) return work.slots[i + 1] as StringSlot;
  return undefined;
}

/** `value` placed at `path`; an array step becomes `[{ index, ... }]`, as streamed tool calls are addressed. */
function build(path: BodyPath, value: string): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  const inner = build(rest, value);
  if (typeof head === 'number') return [isJsonObject(inner) ? { index: head, ...inner } : inner];
  return { [head!]: inner };
}

/** A frame written again with `data` (none for a comment-only frame), keeping its event, id and comments. */
function encodeSse(frame: SseFrame, data: string | undefined): string {
  const comments = frame.comments.length === 0 ? '' : frame.comments.map((comment) => `: ${comment.replace(/[\r\n]/g, ' ')}\n`).join('');
  if (data === undefined) return `${comments}\n`;
  return comments + encodeSseFrame({ ...(frame.event !== undefined && { event: frame.event }), ...(frame.id !== undefined && { id: frame.id }), data });
}

/** An untouched frame, re-terminated if the upstream stopped before its blank line. */
function passSse(frame: SseFrame): string {
  return frame.incomplete ? encodeSseFrame({ ...(frame.event !== undefined && { event: frame.event }), ...(frame.id !== undefined && { id: frame.id }), data: frame.data }) : frame.raw;
}

function passLine(line: NdjsonLine): string {
  return line.incomplete ? `${line.raw}\n` : line.raw;
}
