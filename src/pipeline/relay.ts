// Stage: deliver the upstream's answer to the client. Streams are decoded
// into whole frames and re-emitted as whole frames, with backpressure: the
// frames one upstream chunk completed go out in one write, so the gateway
// never holds more than one chunk's frames and can always end a broken
// stream with a well-formed error frame instead of half a frame.
// When output rules apply, each frame passes through the masking transform,
// which holds back only text that could still become part of an entity.
import { GatewayError } from '../http/errors.js';
import { stripOutputBypassParams } from '../mask/bypass-params.js';
import { maskResponseBody } from '../mask/response-body.js';
import { MaskingStreamTransform } from '../mask/stream-transform.js';
import type { SpanRules } from '../mask/types.js';
import { ChunkedBody } from '../http/chunked-body.js';
import { drained, sendJson } from '../http/send.js';
import { NdjsonDecoder, NdjsonLineTooLargeError, type NdjsonLine } from '../protocol/ndjson.js';
import { encodeSseFrame, isDoneFrame, SseDecoder, SseFrameTooLargeError, type SseFrame } from '../protocol/sse.js';
import { encodeStreamError } from '../protocol/stream-error.js';
import { frameCarriesText } from '../protocol/frame-text.js';
import type { StreamFraming } from '../protocol/types.js';
import { isUtf8 } from 'node:buffer';
import { finished, type Readable } from 'node:stream';
import type { UpstreamResponse } from '../proxy/transport.js';
import type { UpstreamBody } from '../proxy/upstream-answer.js';
import type { RequestContext } from './context.js';
import { deliveredAnswer, recordDecisions as recordInSession, recordDelivered, recordDeliveredAnswer } from './record.js';
import { generatedText } from '../audit/content-text.js';
import type { GatewayServices } from './services.js';
import { scrubCredential } from '../proxy/scrub-credential.js';

/** Error bodies from an upstream are small; more than this is not an error message. */
const MAX_UPSTREAM_ERROR_BYTES = 64 * 1024;
/** A non-streamed response is parsed whole to mask it; beyond this it is refused rather than buffered. */
const MAX_MASKED_BODY_BYTES = 32 * 1024 * 1024;

export async function relay(services: GatewayServices, ctx: RequestContext, upstream: UpstreamResponse): Promise<void> {
  ctx.upstreamTarget = upstream.target;
  if (upstream.status < 200 || upstream.status >= 300) return relayUpstreamError(services, ctx, upstream);

  const rules = outputRules(services, ctx);
  const framing = streamFraming(upstream.headers['content-type']);
  if (framing) return relayStream(services, ctx, upstream, framing, rules);
  if (rules) return relayMaskedBody(services, ctx, upstream, rules);

  const headers: Record<string, string> = { 'content-type': headerValue(upstream.headers['content-type']) ?? 'application/json' };
  const length = headerValue(upstream.headers['content-length']);
  if (length) headers['content-length'] = length;
  ctx.res.writeHead(upstream.status, headers);
  try {
    let chunks = 0;
    for await (const chunk of upstream.body as AsyncIterable<Buffer>) {
      chunks++;
      recordDelivered(ctx, chunk.toString('utf8'));
      ctx.usage?.bodyChunk(chunk);
      if (!ctx.res.write(chunk) && !(await drained(ctx.res))) break;
    }
    const parsed = ctx.usage?.body();
    // Its words, from the usage meter's parse: the indexing pass then parses no answer of one chunk again.
    if (parsed && chunks === 1) recordDeliveredAnswer(ctx, parsed);
    ctx.res.end();
  } catch (err) {
    // A JSON body cut in half cannot be repaired; a reset tells the client it is incomplete.
    const cut = gatewayCut(ctx);
    if (cut) ctx.errorCode = cut.code;
    else if (!ctx.clientGone) noteUpstreamFailure(services, ctx, err, 'upstream_stream_interrupted');
    ctx.res.destroy();
  }
}

/**
 * Before forwarding: when output rules apply, the request must not ask for
 * token ids or logprobs, which would carry the unmasked text past masking.
 */
export function stripOutputBypass(services: GatewayServices, ctx: RequestContext): void {
  if (!outputRules(services, ctx)) return;
  const { body, stripped } = stripOutputBypassParams(ctx.forwardBody ?? ctx.request!.body);
  if (stripped.length === 0) return;
  ctx.forwardBody = body;
  ctx.log.debug({ stripped }, 'output bypass parameters stripped before forwarding');
}

function outputRules(services: GatewayServices, ctx: RequestContext): SpanRules | undefined {
  // Vectors carry no text to mask.
  const operation = ctx.request!.operation;
  if (operation === 'embedding' || operation === 'ollama_embed') return undefined;
  return services.guardrails.outputRules(ctx.principal!, ctx.route!.connection.name);
}

/** A non-streamed JSON answer, masked whole before any of it is sent. */
async function relayMaskedBody(services: GatewayServices, ctx: RequestContext, upstream: UpstreamResponse, rules: SpanRules): Promise<void> {
  const connection = ctx.route!.connection.name;
  let body: unknown;
  try {
    body = JSON.parse(await readCapped(upstream.body, MAX_MASKED_BODY_BYTES, true));
  } catch (err) {
    noteUpstreamFailure(services, ctx, err, 'upstream_response_uninspectable');
    throw new GatewayError(`The model server for connection "${connection}" sent a response the gateway could not inspect, so it was withheld.`, {
      status: 502,
      type: 'upstream_error',
      code: 'upstream_response_uninspectable',
    });
  }
  ctx.usage?.body(body);
  const masked = maskResponseBody(body, ctx.request!.operation, { scanner: services.guardrails.outputScanner!, session: ctx.masking!, rules });
  recordDecisions(services, ctx, masked.decisions.decisions);
  if (masked.termination) {
    throw new GatewayError(
      `The response was withheld by output rule "${masked.termination.rule}": it contained ${masked.termination.type}.`,
      { status: 403, type: 'permission_error', code: 'output_blocked' },
    );
  }
  recordDelivered(ctx, JSON.stringify(masked.body));
  sendJson(ctx.res, upstream.status, masked.body);
}

function recordDecisions(services: GatewayServices, ctx: RequestContext, decisions: RequestContext['decisions']): void {
  ctx.decisions.push(...decisions);
  recordInSession(ctx, decisions, 'output');
  for (const d of decisions) services.metrics.guardrailDecisions.inc({ rule: d.rule, action: d.action });
}

async function relayStream(
  services: GatewayServices,
  ctx: RequestContext,
  upstream: UpstreamResponse,
  framing: StreamFraming,
  rules: SpanRules | undefined,
): Promise<void> {
  const { res } = ctx;
  const masking = rules
    ? new MaskingStreamTransform({
        operation: ctx.request!.operation,
        framing,
        scanner: services.guardrails.outputScanner!,
        session: ctx.masking!,
        rules,
        // The words of what is sent, for the session's search entry, from the objects masking parsed (record.ts).
        ...(ctx.recording && { wordsOf: generatedText }),
      })
    : undefined;
  res.writeHead(upstream.status, {
    'content-type': framing === 'sse' ? 'text/event-stream; charset=utf-8' : 'application/x-ndjson',
    'cache-control': 'no-cache',
    // Tell nginx and similar proxies in front of us not to buffer the stream.
    'x-accel-buffering': 'no',
  });
  // Each chunk of the body in one write to the socket (chunked-body.ts).
  const body = new ChunkedBody(res);
  // The status line and headers go out with the first frame when one came with them (one write, one
  // segment for the client to wake up for, not two); otherwise on their own right after this turn of
  // the event loop, so a client sees the answer start before the model's first token.
  let bodyStarted = false;
  setImmediate(() => {
    if (!bodyStarted && !res.writableEnded && !res.destroyed) res.flushHeaders();
  });

  const decoder = framing === 'sse' ? new SseDecoder() : new NdjsonDecoder();
  // Time to first token is measured at the first frame that carries text, not at an empty opening frame.
  let awaitingText = true;
  const noteFirstText = (outputs: readonly string[]): void => {
    if (!outputs.some((raw) => frameCarriesText(raw, framing))) return;
    awaitingText = false;
    const seconds = (performance.now() - ctx.receivedAt) / 1000;
    services.metrics.timeToFirstToken.observe({ connection: ctx.route!.connection.name, operation: ctx.request!.operation }, seconds);
    ctx.trace?.firstToken();
  };

  /**
   * Sends what one upstream chunk became, in one write (one syscall, one
   * recorded chunk, however many frames it held). True to carry on, false
   * once the client is gone or masking ended the stream, a promise only
   * while the client's socket drains. `answer`: the words it adds, when
   * known (record.ts `deliveredAnswer`). `asSent`: the chunk itself, when
   * its bytes are exactly these frames (see `sentAsIs`), written instead of
   * encoding their text again.
   */
  const deliver = (outputs: readonly string[], answer?: string, asSent?: Buffer): boolean | Promise<boolean> => {
    const text = asSent && !ctx.recording ? undefined : outputs.length === 1 ? outputs[0]! : outputs.join('');
    if (text !== '' && outputs.length > 0) {
      if (awaitingText) noteFirstText(outputs);
      bodyStarted = true;
      const keepsUp = body.write(asSent ?? text!);
      // Recorded as written, with the size its encoding gave (recording stores each chunk's bytes).
      if (text !== undefined) recordDelivered(ctx, text, answer, body.lastDataBytes);
      if (!keepsUp) return drained(res).then((open) => open && !stoppedByMasking());
    }
    return !stoppedByMasking();
  };
  /**
   * After the frame that says the stream is complete, the upstream's end follows within this turn of
   * the event loop: the response is held corked until that turn is over, so the last frame and the
   * chunked body's terminator leave in one write, not two.
   */
  let heldForEnd = false;
  const holdForEnd = (): void => {
    if (heldForEnd) return;
    heldForEnd = true;
    res.cork();
    setImmediate(() => res.uncork());
  };
  const stoppedByMasking = (): boolean => {
    if (!masking?.stopped) return false;
    ctx.errorCode = masking.stopped.code;
    body.end();
    ctx.abort.abort(new Error(masking.stopped.message)); // stop the model generating what nobody will read
    return true;
  };

  try {
    // The meter reads usage from each frame and drops what the gateway's own include_usage added.
    const meter = ctx.usage;
    // An SSE chunk passed on untouched goes out as the upstream's own bytes (see `sentAsIs`).
    const asIs = !masking && decoder instanceof SseDecoder ? sentAsIs(decoder) : undefined;
    const relayChunk = (chunk: Buffer): boolean | Promise<boolean> => {
      // Every frame the chunk completed, masked, goes out together.
      const outputs: string[] = [];
      // Passed on as they came, their words for the session's search entry come from the meter's parse (record.ts).
      let answer = ctx.recording && !masking ? '' : undefined;
      asIs?.before();
      let unchanged = true;
      for (const decoded of decoder.push(chunk)) {
        if (endsStream(decoded)) holdForEnd();
        const frame = meter ? meter.frame(decoded) : decoded;
        if (frame !== decoded) unchanged = false;
        if (!frame) continue;
        if (!masking) {
          outputs.push(frame.raw);
          if (answer !== undefined) answer = addAnswer(answer, deliveredAnswer(frame));
          continue;
        }
        for (const raw of masking.push(frame)) outputs.push(raw);
        if (masking.stopped) break;
      }
      if (masking) answer = masking.takeWords();
      return deliver(outputs, answer, asIs?.after(chunk, unchanged));
    };
    // A direct target's chunks come from undici's dispatch without a Readable (proxy/upstream-answer.ts).
    if (!(await eachChunk(upstream.chunks ?? readableChunks(upstream.body), relayChunk))) return;
    const outputs: string[] = [];
    let cutInsideFrame = false;
    for (const decoded of decoder.end()) {
      const frame = meter ? meter.frame(decoded) : decoded;
      if (!frame) continue;
      if (masking) {
        for (const raw of masking.push(frame)) outputs.push(raw);
        continue;
      }
      const raw = terminate(frame);
      if (raw === undefined) {
        cutInsideFrame = true;
        break;
      }
      outputs.push(raw);
    }
    if (masking) for (const raw of masking.end()) outputs.push(raw);
    let sent = deliver(outputs, masking?.takeWords());
    if (typeof sent !== 'boolean') sent = await sent;
    if (!sent) return;
    if (cutInsideFrame) throw new Error('upstream ended inside a frame');
    body.end();
  } catch (err) {
    if (res.destroyed || ctx.clientGone) return;
    // The gateway itself cut the stream (recording failed, shutdown past its grace): say why, in the stream's own framing.
    const cut = gatewayCut(ctx);
    if (cut) {
      ctx.errorCode = cut.code;
      body.end(encodeStreamError(framing, { message: cut.message, type: cut.type, code: cut.code, retryAfter: cut.headers['retry-after'] }));
      return;
    }
    if (ctx.abort.signal.aborted) return;
    const tooLarge = err instanceof SseFrameTooLargeError || err instanceof NdjsonLineTooLargeError;
    noteUpstreamFailure(services, ctx, err, tooLarge ? 'upstream_frame_too_large' : 'upstream_stream_interrupted');
    const connection = ctx.route!.connection.name;
    body.end(
      encodeStreamError(
        framing,
        tooLarge
          ? {
              message: `The model server for connection "${connection}" sent a stream frame larger than the gateway accepts; the response is incomplete.`,
              type: 'upstream_error',
              code: 'upstream_frame_too_large',
            }
          : {
              message: `The model server for connection "${connection}" failed mid-stream; the response is incomplete. Retry the request.`,
              type: 'upstream_error',
              code: 'upstream_stream_interrupted',
            },
      ),
    );
  } finally {
    if (masking) recordDecisions(services, ctx, masking.decisions.decisions);
  }
}

/**
 * Whether a chunk can be written as the upstream sent it rather than as the
 * text of its frames: when the decoder held nothing of a frame before the
 * chunk nor after it, every frame it completed was passed on unchanged, and
 * its bytes and the previous chunk's are valid UTF-8 (so the decoder's text
 * is exactly their decoding: nothing replaced, no byte carried between
 * chunks, no byte-order mark dropped). Then those bytes and the frames' raw text,
 * encoded, are the same; writing the bytes saves encoding the text again.
 * Every frame is still decoded whole and metered before anything is sent.
 */
function sentAsIs(decoder: SseDecoder): { before(): void; after(chunk: Buffer, unchanged: boolean): Buffer | undefined } {
  // The previous chunk was valid UTF-8 whole, so the UTF-8 decoder holds none of its bytes.
  let previousValid = true;
  let atStart = true;
  let fromBoundary = false;
  return {
    before() {
      fromBoundary = previousValid && decoder.holdsNothing;
    },
    after(chunk, unchanged) {
      const valid = isUtf8(chunk) && !(atStart && chunk[0] === 0xef);
      atStart &&= chunk.length === 0;
      previousValid = valid;
      return fromBoundary && valid && unchanged && decoder.holdsNothing ? chunk : undefined;
    },
  };
}

/** A body read by one reader, chunk by chunk: a direct target's (`UpstreamBody`), or a Readable's (`readableChunks`). */
type ChunkSource = Pick<UpstreamBody, 'read' | 'pause' | 'resume' | 'destroy'>;

/**
 * Hands each chunk of `body` to `relayChunk` as it arrives: no async
 * iterator, promise and microtask per chunk, as `for await` costs. While a
 * returned promise is pending (the client's socket draining) the body is
 * paused, so the upstream is held back as the client is. Resolves true at
 * the body's end; false once `relayChunk` says stop, the body then destroyed
 * (cancelling the upstream request), as leaving a `for await` early does.
 * Rejects as `for await` would: on the body's error or its close before its
 * end.
 */
function eachChunk(body: ChunkSource, relayChunk: (chunk: Buffer) => boolean | Promise<boolean>): Promise<boolean> {
  return new Promise<boolean>((resolve, reject) => {
    let settled = false;
    const settle = (err: unknown, carryOn: boolean): void => {
      if (settled) return;
      settled = true;
      if (err !== undefined) {
        body.destroy();
        reject(err);
        return;
      }
      if (!carryOn) body.destroy();
      resolve(carryOn);
    };
    body.read({
      data: (chunk) => {
        if (settled) return;
        let sent: boolean | Promise<boolean>;
        try {
          sent = relayChunk(chunk);
        } catch (err) {
          settle(err, false);
          return;
        }
        if (sent === true) return;
        if (sent === false) {
          settle(undefined, false);
          return;
        }
        body.pause();
        sent.then(
          (open) => {
            if (!open) settle(undefined, false);
            else if (!settled) body.resume();
          },
          (err: unknown) => settle(err, false),
        );
      },
      end: () => settle(undefined, true),
      error: (err) => settle(err, false),
    });
  });
}

/** A Readable (an agent tunnel's stream) as a ChunkSource: its 'data' events, and its end, error or early close. */
function readableChunks(body: Readable): ChunkSource {
  let stopWatching: (() => void) | undefined;
  let onData: ((chunk: Buffer) => void) | undefined;
  const detach = (): void => {
    if (!stopWatching) return;
    body.off('data', onData!);
    stopWatching();
    stopWatching = undefined;
    // The outcome is decided: a late error (an abort racing the end) must not go unhandled.
    body.on('error', ignore);
  };
  return {
    read(reader) {
      onData = reader.data;
      stopWatching = finished(body, { writable: false }, (err) => {
        detach();
        if (err) reader.error(err);
        else reader.end();
      });
      body.on('data', onData);
    },
    pause: () => body.pause(),
    resume: () => body.resume(),
    destroy: () => {
      detach();
      body.destroy();
    },
  };
}

const ignore = (): void => {};

/** OpenAI's `data: [DONE]`, or an Ollama line with `done: true`: the frame that says the stream is complete. */
function endsStream(frame: SseFrame | NdjsonLine): boolean {
  if ('hasData' in frame) return isDoneFrame(frame);
  const value: unknown = frame.value;
  return typeof value === 'object' && value !== null && (value as { done?: unknown }).done === true;
}

/** The words of a chunk so far and of one more frame: unknown once any frame's are. */
function addAnswer(answer: string, frame: string | undefined): string | undefined {
  return frame === undefined ? undefined : answer + frame;
}

/**
 * The last frame of a stream that ended without its terminator. A complete
 * SSE event is re-terminated so clients do not drop it; an NDJSON line that
 * does not parse was cut off, and is reported instead of passed on.
 */
function terminate(frame: SseFrame | NdjsonLine): string | undefined {
  if (!frame.incomplete) return frame.raw;
  if ('hasData' in frame) return frame.hasData ? encodeSseFrame(frame) : '';
  return frame.error === undefined ? `${frame.raw}\n` : undefined;
}

async function relayUpstreamError(services: GatewayServices, ctx: RequestContext, upstream: UpstreamResponse): Promise<void> {
  const connection = ctx.route!.connection.name;
  services.metrics.upstreamErrors.inc({ connection, reason: `status_${upstream.status}` });
  // The credential goes first: no later step (parse, mask, relay, log) ever sees it.
  const text = scrubCredential(await readCapped(upstream.body, MAX_UPSTREAM_ERROR_BYTES), ctx.route!.connection);

  if (upstream.status === 401 || upstream.status === 403 || upstream.status === 407) {
    // The upstream refused the gateway's own credential: an operator problem, not the caller's.
    throw new GatewayError(`The model server for connection "${connection}" rejected the gateway's credential. Ask an operator to check the connection's credential.`, {
      status: 502,
      type: 'upstream_error',
      code: 'upstream_auth_failed',
    });
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!isOpenAiError(body)) {
    body = {
      error: {
        message: `The model server for connection "${connection}" answered HTTP ${upstream.status}: ${text.slice(0, 500) || '(empty body)'}`,
        type: upstream.status >= 500 ? 'upstream_error' : 'invalid_request_error',
        param: null,
        code: `upstream_http_${upstream.status}`,
      },
    };
  }
  ctx.errorCode = `upstream_http_${upstream.status}`;
  const rules = outputRules(services, ctx);
  if (rules) body = maskErrorBody(services, ctx, body, rules, upstream.status);
  const retryAfter = headerValue(upstream.headers['retry-after']);
  sendJson(ctx.res, upstream.status, body, retryAfter ? { 'retry-after': retryAfter } : {});
}

/** An upstream's error body is model-server output like any other: masked, or withheld if a rule ends responses. */
function maskErrorBody(services: GatewayServices, ctx: RequestContext, body: unknown, rules: SpanRules, status: number): unknown {
  const masked = maskResponseBody(body, ctx.request!.operation, { scanner: services.guardrails.outputScanner!, session: ctx.masking!, rules });
  recordDecisions(services, ctx, masked.decisions.decisions);
  if (!masked.termination) return masked.body;
  return {
    error: {
      message: `The model server's error message was withheld by output rule "${masked.termination.rule}": it contained ${masked.termination.type}.`,
      type: 'upstream_error',
      param: null,
      code: `upstream_http_${status}`,
    },
  };
}

/** Why the gateway aborted this request itself, when it did (not the client leaving, not masking ending it). */
function gatewayCut(ctx: RequestContext): GatewayError | undefined {
  const reason: unknown = ctx.abort.signal.reason;
  return ctx.abort.signal.aborted && reason instanceof GatewayError ? reason : undefined;
}

function noteUpstreamFailure(services: GatewayServices, ctx: RequestContext, err: unknown, code: string): void {
  ctx.errorCode = code;
  services.metrics.upstreamErrors.inc({ connection: ctx.route!.connection.name, reason: code.replace(/^upstream_/, '') });
  ctx.log.warn({ err: (err as Error)?.message }, 'upstream failed mid-response');
}

function streamFraming(contentType: string | string[] | undefined): StreamFraming | undefined {
  const type = headerValue(contentType)?.toLowerCase() ?? '';
  if (type.startsWith('text/event-stream')) return 'sse';
  if (type.startsWith('application/x-ndjson') || type.startsWith('application/jsonl')) return 'ndjson';
  return undefined;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function isOpenAiError(body: unknown): boolean {
  const error = (body as { error?: unknown } | undefined)?.error;
  return typeof error === 'object' && error !== null && typeof (error as { message?: unknown }).message === 'string';
}

/** Reads a body up to `maxBytes`. Lenient mode returns what it got; strict mode throws past the cap or on a read error. */
async function readCapped(body: AsyncIterable<Buffer>, maxBytes: number, strict = false): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      size += chunk.length;
      if (size > maxBytes) {
        if (strict) throw new Error(`response body larger than ${maxBytes} bytes`);
        chunks.push(chunk.subarray(0, chunk.length - (size - maxBytes)));
        break;
      }
      chunks.push(chunk);
    }
  } catch (err) {
    if (strict) throw err;
    // A broken error body still leaves the status to report.
  }
  return Buffer.concat(chunks).toString('utf8');
}
