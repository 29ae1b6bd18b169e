// Stage: the session record. A session starts once the route is known, so
// refusals by limits and guardrails are recorded too; the request part is made durable
// before anything is forwarded (write-ahead: if storage fails, the caller
// gets 503 and the model gets nothing), and the response is recorded as
// delivered, frame by frame, with its time offsets.
import { generatedText } from '../audit/content-text.js';
import type { EndState } from '../audit/events.js';
import { recordingLost } from '../audit/recorder.js';
import { GatewayError } from '../http/errors.js';
import type { Decision } from '../policy/guardrails-types.js';
import { formatPath } from '../protocol/body-path.js';
import type { NdjsonLine } from '../protocol/ndjson.js';
import { sseDataLines, sseJson, type SseFrame } from '../protocol/sse.js';
import type { RequestContext } from './context.js';
import { forwardedBody } from './forward.js';
import type { GatewayServices } from './services.js';

/** `bodies: false` records metadata only, whatever the connection says (limit refusals: a flood of them stores no prompts). */
export function startRecording(services: GatewayServices, ctx: RequestContext, body: unknown, options: { bodies?: boolean } = {}): void {
  const recorder = services.audit?.recorder;
  if (!recorder || !ctx.principal || !ctx.route || !ctx.request) return;
  const writer = recorder.startSession({
    id: ctx.id,
    receivedAt: Math.round(Date.now() - (performance.now() - ctx.receivedAt)),
    principal: ctx.principal,
    ...(ctx.req.socket.remoteAddress && { clientIp: ctx.req.socket.remoteAddress }),
    ...(ctx.req.headers['user-agent'] && { userAgent: ctx.req.headers['user-agent'] }),
    connection: ctx.route.connection.name,
    model: ctx.route.model,
    operation: ctx.request.operation,
    stream: ctx.request.stream,
    requestBody: body,
    ...(options.bodies === false && { bodiesEnabled: false }),
  });
  ctx.recording = writer;
  if (ctx.accessGrant) {
    const grant = ctx.accessGrant;
    const approver = grant.votes.findLast((v) => v.decision === 'approve')?.by;
    writer.approval({ outcome: 'access_granted', review_id: grant.id, approver: approver?.email ?? approver?.subject ?? 'gateway' });
  }
  // A recording failure mid-stream cuts the response: nothing goes unrecorded.
  writer.onFailure((failure) => ctx.abort.abort(recordingLost(failure)));
}

export function recordDecisions(ctx: RequestContext, decisions: readonly Decision[], direction: 'input' | 'output'): void {
  for (const d of decisions) {
    ctx.recording?.decision({
      direction,
      action: d.action,
      rule: d.rule,
      ...(d.type && { entity: d.type }),
      ...(d.span && { field: formatPath(d.span.path), span: { start: d.span.start, end: d.span.end } }),
      ...(d.confidence !== undefined && { confidence: d.confidence }),
    });
  }
}

/** Resolves once the request as forwarded is durable; throws 503 `recording_unavailable` otherwise. */
export async function makeDurable(ctx: RequestContext): Promise<void> {
  if (!ctx.recording) return;
  await ctx.recording.forwarded(forwardedBody(ctx), ctx.route!.upstreamModel);
}

/** Records what the client was sent, at its offset from the request's arrival (`answer`: its words, when known; `bytes`: its UTF-8 size, when known; see `SessionWriter.chunk`). */
export function recordDelivered(ctx: RequestContext, text: string, answer?: string, bytes?: number): void {
  ctx.recording?.chunk(text, elapsedMs(ctx), answer, bytes);
}

/**
 * The words of a non-streamed answer relayed as it came in one chunk (the
 * whole JSON object), from the usage meter's parse of it once it was all
 * relayed: what the indexing pass would extract from the recorded chunk
 * (`chunkText` parses a chunk that starts with `{` whole), so it need not
 * parse it again.
 */
export function recordDeliveredAnswer(ctx: RequestContext, body: Record<string, unknown>): void {
  ctx.recording?.answered(generatedText(body));
}

/**
 * The words a frame passed on as it came adds to the answer, from the parse
 * the usage meter made of its data (`sseJson`; NDJSON: the decoder's), so
 * recording does not parse it again; `chunkText` of a recorded chunk, however many
 * such frames it joins, is these words joined. Undefined for a frame the
 * index could read otherwise (anything but SSE field lines with at most one
 * `data:` line; an NDJSON line that is not a JSON object): the indexing pass then
 * extracts the chunk's words itself.
 */
export function deliveredAnswer(frame: SseFrame | NdjsonLine): string | undefined {
  if (!('hasData' in frame)) {
    return frame.raw.trimStart().startsWith('{') && typeof frame.value === 'object' && frame.value !== null ? generatedText(frame.value) : undefined;
  }
  const data = sseDataLines(frame.raw);
  if (data === 0) return '';
  if (data !== 1) return undefined;
  const json = frame.data === '[DONE]' ? undefined : sseJson(frame);
  return json === undefined ? '' : generatedText(json);
}

export function endRecording(ctx: RequestContext): void {
  if (!ctx.recording) return;
  const usage = ctx.usageResult;
  void ctx.recording.end({
    state: endState(ctx),
    ...(usage && {
      usage: {
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        total_tokens: usage.total_tokens,
        ...(usage.estimated && { estimated: true }),
      },
    }),
    status: ctx.res.statusCode,
    ...(ctx.errorCode && { errorCode: ctx.errorCode }),
    latencyMs: elapsedMs(ctx),
  });
}

export function endState(ctx: RequestContext): EndState {
  if (ctx.errorCode?.startsWith('upstream_')) return 'upstream_failed';
  // Left while the model (or an approver) was still working on it: not a refusal.
  if (ctx.clientGone) return 'aborted';
  // Cut by the gateway's own shutdown, past its grace: not the client's doing.
  if (ctx.abort.signal.reason instanceof GatewayError && ctx.abort.signal.reason.code === 'shutting_down') return 'shutdown';
  if (!ctx.upstreamTarget) return 'refused';
  if (ctx.abort.signal.aborted) return 'aborted';
  return 'completed';
}

/** Whole milliseconds since the request arrived (the record stores integers). */
function elapsedMs(ctx: RequestContext): number {
  return Math.round(performance.now() - ctx.receivedAt);
}
