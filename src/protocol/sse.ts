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

/** Feed it with push(), finish with end(). After it throws, discard it. */
export class SseDecoder {
  readonly #maxFrameBytes: number;
  readonly #utf8 = new Utf8ChunkDecoder();
  /** Raw text, from earlier chunks, of the complete lines of the frame being assembled. */
  #frameText = '';
  /** The line whose terminator has not arrived yet. Only new text is ever scanned, never this. */
  #partialLine = '';
  /** #partialLine ended in "\r" at a chunk boundary: "\r\n" or a bare "\r" is still undecided. */
  #pendingCr = false;
  /** UTF-8 size of everything buffered for the frame being assembled (#frameText, #partialLine and a pending "\r"), as of the last chunk. */
  #pendingBytes = 0;
  #ended = false;
  // The fields of the frame being assembled, kept on the decoder rather than
  // in an object per frame: a stream is mostly one-line frames.
  /** The first `data` line's value; the rest, when there are more, in #moreData. */
  #data = '';
  #moreData: string[] | undefined;
  #dataLines = 0;
  #event = '';
  #id: string | undefined;
  #retry: number | undefined;
  #comments: string[] | undefined;
  /** Whether a non-blank line was seen, i.e. the next blank line ends a frame. */
  #started = false;

  constructor(opts: { maxFrameBytes?: number } = {}) {
    this.#maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  }

  /** True between frames: nothing of a frame is held (the UTF-8 decoder's own holding aside). */
  get holdsNothing(): boolean {
    return this.#frameText === '' && this.#partialLine === '' && !this.#pendingCr;
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
    if (this.#dataLines > 0) frames.push({ ...this.#toFrame(this.#frameText), incomplete: true });
    return frames;
  }

  /**
   * Splits new text into lines. A frame that starts and ends within `text`
   * is sliced out of it whole; only what runs past a chunk boundary is kept
   * in #frameText and #partialLine (and never scanned again).
   */
  #consume(text: string, frames: SseFrame[]): void {
    if (text === '') return;
    let lineStart = 0;
    if (this.#pendingCr) {
      this.#pendingCr = false;
      lineStart = text.charCodeAt(0) === LF ? 1 : 0;
      this.#completeLine(lineStart === 1 ? '\r\n' : '\r', frames);
    }
    // Where the frame being assembled starts in `text`, or -1 while it began
    // in an earlier chunk (its text so far then in #frameText and #partialLine,
    // and from `carried` on in `text`).
    const carried = lineStart;
    let frameStart = this.#frameText === '' && this.#partialLine === '' ? lineStart : -1;
    let lf = text.indexOf('\n', lineStart);
    let cr = text.indexOf('\r', lineStart);
    while (lf !== -1 || cr !== -1) {
      let lineEnd: number;
      let next: number;
      if (cr !== -1 && (lf === -1 || cr < lf)) {
        lineEnd = cr;
        // A "\r" as the last character may be the first half of "\r\n": wait for
        // the next chunk so the "\n" lands in this frame's raw text, not the next one's.
        if (cr + 1 === text.length) {
          this.#keepTail(text, carried, frameStart, lineStart, cr);
          this.#pendingCr = true;
          this.#checkPending(text, frameStart);
          return;
        }
        next = lf === cr + 1 ? cr + 2 : cr + 1;
      } else {
        lineEnd = lf;
        next = lf + 1;
      }
      if (lf !== -1 && lf < next) lf = text.indexOf('\n', next);
      if (cr !== -1 && cr < next) cr = text.indexOf('\r', next);
      let line: string;
      if (frameStart === -1 && this.#partialLine !== '') {
        line = this.#partialLine + text.slice(lineStart, lineEnd);
        this.#frameText += this.#partialLine;
        this.#partialLine = '';
      } else {
        line = text.slice(lineStart, lineEnd);
      }
      lineStart = next;
      if (line !== '') {
        this.#applyLine(line);
        continue;
      }
      // A blank line that ends nothing stays in the frame's text and becomes
      // part of the next frame's raw text, so the raw texts still add up to the input.
      if (!this.#started) continue;
      if (frameStart === -1) {
        frames.push(this.#dispatch(this.#frameText + text.slice(carried, next)));
        this.#frameText = '';
      } else {
        frames.push(this.#dispatch(text.slice(frameStart, next)));
      }
      frameStart = next;
    }
    this.#keepTail(text, carried, frameStart, lineStart, text.length);
    this.#checkPending(text, frameStart);
  }

  /** Keeps what `text` leaves of the frame being assembled: complete lines from frameStart (or `carried`) to lineStart, then the line begun there, up to lineEnd. */
  #keepTail(text: string, carried: number, frameStart: number, lineStart: number, lineEnd: number): void {
    if (frameStart === -1) {
      if (lineStart > carried) {
        this.#frameText += this.#partialLine + text.slice(carried, lineStart);
        this.#partialLine = '';
      }
    } else {
      this.#frameText = text.slice(frameStart, lineStart);
    }
    this.#partialLine += text.slice(lineStart, lineEnd);
  }

  /**
   * What is held once `text` is consumed: all of it on top of what was held before, while the frame being
   * assembled began earlier (`frameStart` -1: no frame ended in `text`), otherwise `text` from `frameStart`
   * on. Measured so, only the text held is walked for its UTF-8 size (nothing, when the chunk ended with
   * a frame, as it mostly does), not every chunk and every frame once more.
   */
  #checkPending(text: string, frameStart: number): void {
    if (frameStart === -1) this.#pendingBytes += Buffer.byteLength(text);
    else this.#pendingBytes = frameStart === text.length ? 0 : Buffer.byteLength(frameStart === 0 ? text : text.slice(frameStart));
    if (this.#pendingBytes > this.#maxFrameBytes) throw new SseFrameTooLargeError(this.#maxFrameBytes);
  }

  #completeLine(terminator: string, frames: SseFrame[]): void {
    const line = this.#partialLine;
    this.#partialLine = '';
    this.#frameText += line + terminator;
    if (line !== '') this.#applyLine(line);
    else if (this.#started) {
      frames.push(this.#dispatch(this.#frameText));
      this.#frameText = '';
    }
    // A blank line that ends nothing stays in #frameText and becomes part of
    // the next frame's raw text, so the raw texts still add up to the input.
  }

  #dispatch(raw: string): SseFrame {
    // Checked per frame too, so the outcome does not depend on how the stream was chunked. At most three
    // bytes a UTF-16 unit: a frame that short cannot be over the limit, and is not measured.
    if (raw.length * 3 > this.#maxFrameBytes && Buffer.byteLength(raw) > this.#maxFrameBytes) throw new SseFrameTooLargeError(this.#maxFrameBytes);
    const frame = this.#toFrame(raw);
    this.#data = '';
    this.#moreData = undefined;
    this.#dataLines = 0;
    this.#event = '';
    this.#id = undefined;
    this.#retry = undefined;
    this.#comments = undefined;
    this.#started = false;
    return frame;
  }

  #toFrame(raw: string): SseFrame {
    const data = this.#moreData === undefined ? this.#data : [this.#data, ...this.#moreData].join('\n');
    const comments = this.#comments ?? [];
    const hasData = this.#dataLines > 0;
    const event = this.#event;
    const id = this.#id;
    const retry = this.#retry;
    // The common frame, `data:` and nothing else, without spreading.
    if (event === '' && id === undefined && retry === undefined) return { data, comments, hasData, raw };
    return {
      ...(event !== '' && { event }),
      data,
      ...(id !== undefined && { id }),
      ...(retry !== undefined && { retry }),
      comments,
      hasData,
      raw,
    };
  }

  #applyLine(line: string): void {
    this.#started = true;
    if (line.startsWith('data:')) {
      this.#addData(line.charCodeAt(5) === SPACE ? line.slice(6) : line.slice(5));
      return;
    }
    if (line.startsWith(':')) {
      (this.#comments ??= []).push(withoutLeadingSpace(line.slice(1)));
      return;
    }
    const colon = line.indexOf(':');
    const name = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? '' : withoutLeadingSpace(line.slice(colon + 1));
    switch (name) {
      case 'data':
        this.#addData(value);
        break;
      case 'event':
        this.#event = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.#id = value;
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) this.#retry = Number(value);
        break;
      // Any other field name is ignored, as the spec requires.
    }
  }

  #addData(value: string): void {
    if (this.#dataLines++ === 0) this.#data = value;
    else (this.#moreData ??= []).push(value);
  }
}

const LF = 10;
const SPACE = 32;
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

/**
 * How many `data:` lines a frame's text has, or undefined when it has a line
 * that is no field (`data:`, `event:`, `id:`, `retry:`) nor comment: what
 * tells whether the search index reads a recorded frame as a client does
 * (content-text.ts `chunkText` parses each `data:` line alone).
 */
export function sseDataLines(raw: string): number | undefined {
  let data = 0;
  for (let at = 0; at < raw.length; ) {
    let end = raw.indexOf('\n', at);
    if (end < 0) end = raw.length;
    const line = raw.charCodeAt(end - 1) === 13 ? raw.slice(at, end - 1) : raw.slice(at, end);
    if (line.startsWith('data:')) data++;
    else if (line !== '' && !line.startsWith(':') && !line.startsWith('event:') && !line.startsWith('id:') && !line.startsWith('retry:')) return undefined;
    at = end + 1;
  }
  return data;
}
