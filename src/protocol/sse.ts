// Incremental Server-Sent Events decoder (WHATWG HTML, "event stream
// interpretation"). The gateway passes upstream streams through whole frame
// by whole frame, so it can always inject a well-formed frame of its own or
// rewrite one; `raw` lets an untouched frame go out byte for byte.

import { Utf8ChunkDecoder } from './utf8-chunks.js';

export interface SseFrame {
  /** The `event` field; absent when unset or empty (the client then uses "message"). */
  event?: string;
  /** `data` lines joined with "\n". */
  data: string;
  id?: string;
  retry?: number;
  /** Comment lines without their leading ":" and one optional space. */
  comments: string[];
  /** Whether any `data` line was present: a frame without one dispatches no event. */
  hasData: boolean;
  /** The exact text of the frame, including its terminating blank line. */
  raw: string;
  /** Set on the frame `end()` flushes when the stream stopped before its blank line. */
  incomplete?: true;
  /** `sseJson`'s parse of `data`, kept so the meter, masking and recording share one parse. */
  json?: unknown;
}

export class SseFrameTooLargeError extends Error {
  constructor(readonly limitBytes: number) {
    super(`An SSE frame exceeded the ${limitBytes}-byte limit`);
    this.name = 'SseFrameTooLargeError';
  }
}

export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;

interface FrameFields {
  data: string[];
  event: string;
  id: string | undefined;
  retry: number | undefined;
  comments: string[];
  /** Whether a non-blank line was seen, i.e. the next blank line ends a frame. */
  started: boolean;
}

const emptyFields = (): FrameFields => ({ data: [], event: '', id: undefined, retry: undefined, comments: [], started: false });

/** Feed it with push(), finish with end(). After it throws, discard it. */
export class SseDecoder {
  readonly #maxFrameBytes: number;
  readonly #utf8 = new Utf8ChunkDecoder();
  /** Raw text of the complete lines of the frame being assembled. */
  #frameText = '';
  /** The line whose terminator has not arrived yet. Only new text is ever scanned, never this. */
  #partialLine = '';
  /** #partialLine ended in "\r" at a chunk boundary: "\r\n" or a bare "\r" is still undecided. */
  #pendingCr = false;
  /** UTF-8 size of everything buffered for the frame being assembled. */
  #pendingBytes = 0;
  #fields = emptyFields();
  #ended = false;

  constructor(opts: { maxFrameBytes?: number } = {}) {
    this.#maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  }

  push(chunk: Uint8Array | string): SseFrame[] {
    if (this.#ended) throw new Error('SseDecoder.push() called after end()');
    const frames: SseFrame[] = [];
    this.#consume(this.#utf8.decode(chunk), frames);
    return frames;
  }

  /** Flushes the stream; an unterminated final frame is returned only if it carried data. */
  end(): SseFrame[] {
    if (this.#ended) return [];
    this.#ended = true;
    const frames: SseFrame[] = [];
    this.#consume(this.#utf8.end(), frames);
    if (this.#pendingCr) this.#completeLine('\r', frames);
    if (this.#partialLine !== '') {
      this.#applyLine(this.#partialLine);
      this.#frameText += this.#partialLine;
    }
    if (this.#fields.data.length > 0) frames.push({ ...this.#toFrame(this.#frameText), incomplete: true });
    return frames;
  }

  #consume(text: string, frames: SseFrame[]): void {
    if (text === '') return;
    this.#pendingBytes += Buffer.byteLength(text);
    let lineStart = 0;
    if (this.#pendingCr) {
      this.#pendingCr = false;
      lineStart = text.startsWith('\n') ? 1 : 0;
      this.#completeLine(lineStart === 1 ? '\r\n' : '\r', frames);
    }
    const lineBreak = /\r\n?|\n/g;
    lineBreak.lastIndex = lineStart;
    for (let match = lineBreak.exec(text); match; match = lineBreak.exec(text)) {
      this.#partialLine += text.slice(lineStart, match.index);
      lineStart = match.index + match[0].length;
      // A "\r" as the last character may be the first half of "\r\n": wait for
      // the next chunk so the "\n" lands in this frame's raw text, not the next one's.
      if (match[0] === '\r' && lineStart === text.length) {
        this.#pendingCr = true;
        break;
      }
      this.#completeLine(match[0], frames);
    }
    this.#partialLine += text.slice(lineStart);
    if (this.#pendingBytes > this.#maxFrameBytes) throw new SseFrameTooLargeError(this.#maxFrameBytes);
  }

  #completeLine(terminator: string, frames: SseFrame[]): void {
    const line = this.#partialLine;
    this.#partialLine = '';
    this.#frameText += line + terminator;
    if (line !== '') this.#applyLine(line);
    else if (this.#fields.started) frames.push(this.#dispatch(this.#frameText));
    // A blank line that ends nothing stays in #frameText and becomes part of
    // the next frame's raw text, so the raw texts still add up to the input.
  }

  #dispatch(raw: string): SseFrame {
    const rawBytes = Buffer.byteLength(raw);
    // Checked per frame too, so the outcome does not depend on how the stream was chunked.
    if (rawBytes > this.#maxFrameBytes) throw new SseFrameTooLargeError(this.#maxFrameBytes);
    this.#pendingBytes -= rawBytes;
    const frame = this.#toFrame(raw);
    this.#fields = emptyFields();
    this.#frameText = '';
    return frame;
  }

  #toFrame(raw: string): SseFrame {
    const { data, event, id, retry, comments } = this.#fields;
    return {
      ...(event !== '' && { event }),
      data: data.join('\n'),
      ...(id !== undefined && { id }),
      ...(retry !== undefined && { retry }),
      comments,
      hasData: data.length > 0,
      raw,
    };
  }

  #applyLine(line: string): void {
    const fields = this.#fields;
    fields.started = true;
    if (line.startsWith(':')) {
      fields.comments.push(withoutLeadingSpace(line.slice(1)));
      return;
    }
    const colon = line.indexOf(':');
    const name = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? '' : withoutLeadingSpace(line.slice(colon + 1));
    switch (name) {
      case 'data':
        fields.data.push(value);
        break;
      case 'event':
        fields.event = value;
        break;
      case 'id':
        if (!value.includes('\0')) fields.id = value;
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) fields.retry = Number(value);
        break;
      // Any other field name is ignored, as the spec requires.
    }
  }
}

const withoutLeadingSpace = (value: string): string => (value.startsWith(' ') ? value.slice(1) : value);

/** Serialises one frame; every line of `data` becomes its own `data:` line. */
export function encodeSseFrame(frame: { event?: string; data: string; id?: string }): string {
  let text = '';
  if (frame.event !== undefined) text += `event: ${singleLine('event', frame.event)}\n`;
  if (frame.id !== undefined) text += `id: ${singleLine('id', frame.id)}\n`;
  const { data } = frame;
  // Most data is one line (JSON never holds a raw line break): no split.
  if (data.indexOf('\n') === -1 && data.indexOf('\r') === -1) return `${text}data: ${data}\n\n`;
  for (const line of data.split(/\r\n|\r|\n/)) text += `data: ${line}\n`;
  return `${text}\n`;
}

function singleLine(field: string, value: string): string {
  // A line break here would end the field early and let the rest be read as other fields.
  if (/[\r\n]/.test(value)) throw new TypeError(`SSE ${field} must not contain a line break`);
  return value;
}

const NOT_JSON = Symbol('not JSON');

/**
 * The frame's data as JSON (undefined when it is not JSON), parsed once
 * however many stages read it. The value is shared: a stage that rewrites it
 * in place takes it instead (`takeSseJson`).
 */
export function sseJson(frame: SseFrame): unknown {
  if (frame.json === undefined) {
    try {
      frame.json = JSON.parse(frame.data);
    } catch {
      frame.json = NOT_JSON;
    }
  }
  return frame.json === NOT_JSON ? undefined : frame.json;
}

/** `sseJson`, for a caller that rewrites the value: the frame forgets it, so its data is parsed afresh if read again. */
export function takeSseJson(frame: SseFrame): unknown {
  const json = sseJson(frame);
  frame.json = undefined;
  return json;
}

/** OpenAI's end-of-stream sentinel, `data: [DONE]`. */
export const isDoneFrame = (frame: SseFrame): boolean => frame.hasData && frame.data === '[DONE]';
