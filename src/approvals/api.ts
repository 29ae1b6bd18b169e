// The reviews and access-grant HTTP API, mounted by the gateway after it has
// authenticated the caller. The CLI and (later) the web console are built on
// it. A review is visible to its requester, to members of its approver
// groups, and to auditors; only approvers other than the requester decide.
//
//   GET  /v1/reviews?state=&kind=&limit=   reviews the caller may see, newest first
//   GET  /v1/reviews/events                server-sent events: `review` {event, id, state} for
//                                          each change to a review the caller may see
//   GET  /v1/reviews/:id                   one review, with the (masked) prompt
//   POST /v1/reviews/:id/approve           {"comment"}
//   POST /v1/reviews/:id/reject            {"comment"}
//   POST /v1/access/requests               {"connection", "duration": "1h", "reason"}
//   GET  /v1/access/grants                 the caller's running grants
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isAuditor } from '../audit/api.js';
import { parseDuration } from '../config/units.js';
import { badRequest, GatewayError, methodNotAllowed } from '../http/errors.js';
import { jsonObjectBody, optionalString } from '../http/read-json-body.js';
import { sendJson } from '../http/send.js';
import type { Principal } from '../identity/principal.js';
import type { Approvals } from './approvals.js';
import { approvalsOf, REVIEW_ID_PATTERN, sameParty, samePerson, type Review, type ReviewKind, type ReviewState, type VoteRefusal } from './review.js';

const STATES: readonly ReviewState[] = ['pending', 'approved', 'rejected', 'expired', 'cancelled', 'executed'];
const KINDS: readonly ReviewKind[] = ['prompt', 'access'];
const MAX_COMMENT_CHARS = 2_000;
const MAX_REASON_CHARS = 2_000;

export interface ApprovalsApiContext {
  approvals: Approvals;
  principal: Principal;
  auditorGroups: readonly string[];
  /** Connections that exist, for access requests. */
  connections: readonly string[];
  maxBodyBytes: number;
  /** Ends long-lived answers (the event stream) when the gateway shuts down. */
  signal?: AbortSignal;
}

/** A comment line this often keeps proxies from closing an idle event stream. */
const EVENT_STREAM_HEARTBEAT_MS = 15_000;

export function isApprovalsApiPath(path: string): boolean {
  return path === '/v1/reviews' || path.startsWith('/v1/reviews/') || path.startsWith('/v1/access/');
}

/** Handles the request if the path is ours; false otherwise. */
export async function handleApprovalsApi(req: IncomingMessage, res: ServerResponse, path: string, ctx: ApprovalsApiContext): Promise<boolean> {
  try {
    return await routeApprovalsApi(req, res, path, ctx);
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    // Everything else here comes from the review store: an outage the caller can wait out, not a bug of theirs.
    throw new GatewayError('The review store is unreachable right now; retry shortly. If it persists, an operator should check the storage database.', {
      status: 503,
      type: 'service_unavailable',
      code: 'reviews_unavailable',
      headers: { 'retry-after': '5' },
      cause: err,
    });
  }
}

async function routeApprovalsApi(req: IncomingMessage, res: ServerResponse, path: string, ctx: ApprovalsApiContext): Promise<boolean> {
  const method = req.method ?? 'GET';
  const url = new URL(req.url ?? '/', 'http://gateway');
  if (path === '/v1/reviews') {
    allow(method, 'GET');
    return send(res, 200, { object: 'list', data: await listReviews(ctx, url.searchParams) });
  }
  if (path === '/v1/access/requests') {
    allow(method, 'POST');
    return send(res, 201, view(await requestAccess(ctx, await jsonObjectBody(req, ctx.maxBodyBytes)), ctx, true));
  }
  if (path === '/v1/access/grants') {
    allow(method, 'GET');
    const mine = await ctx.approvals.grantsOf(ctx.principal);
    return send(res, 200, { object: 'list', data: mine.map((r) => view(r, ctx, true)) });
  }
  if (path === '/v1/reviews/events') {
    allow(method, 'GET');
    await streamReviewEvents(res, ctx);
    return true;
  }
  const match = /^\/v1\/reviews\/([^/]+)(?:\/(approve|reject))?$/.exec(path);
  if (!match) return false;
  const [, id, action] = match as unknown as [string, string, 'approve' | 'reject' | undefined];
  if (!REVIEW_ID_PATTERN.test(id)) throw notFound(id);
  if (!action) {
    allow(method, 'GET');
    const review = await ctx.approvals.get(id);
    if (!review || !maySee(review, ctx)) throw notFound(id);
    return send(res, 200, view(review, ctx, true));
  }
  allow(method, 'POST');
  const body = await jsonObjectBody(req, ctx.maxBodyBytes);
  const comment = optionalString(body, 'comment')?.trim();
  if (comment !== undefined && comment.length > MAX_COMMENT_CHARS) throw badRequest('invalid_body', `"comment" is longer than ${MAX_COMMENT_CHARS} characters.`, 'comment');
  const result = await ctx.approvals.vote(id, ctx.principal, action, comment || undefined);
  if (!result) throw notFound(id);
  if (!result.ok) {
    if (!maySee(result.review, ctx)) throw notFound(id);
    throw refusal(result.refusal, result.review);
  }
  return send(res, 200, view(result.review, ctx, true));
}

/**
 * Live changes as server-sent events, until the client or the gateway goes
 * away. Only the review's ID and state travel: the page rereads what it
 * shows through the same API, so visibility rules are applied in one place.
 */
async function streamReviewEvents(res: ServerResponse, ctx: ApprovalsApiContext): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
  res.write('retry: 3000\n: reviews\n\n');
  await new Promise<void>((resolve) => {
    const stop = ctx.approvals.watch((event, review) => {
      if (!maySee(review, ctx)) return;
      res.write(`event: review\ndata: ${JSON.stringify({ event, id: review.id, state: review.state, kind: review.kind })}\n\n`);
    });
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), EVENT_STREAM_HEARTBEAT_MS);
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      stop();
      clearInterval(heartbeat);
      ctx.signal?.removeEventListener('abort', end);
      ctx.approvals.releasing.removeEventListener('abort', end);
      res.end();
      resolve();
    };
    res.once('close', end);
    ctx.signal?.addEventListener('abort', end, { once: true });
    // Shutdown: held requests are let go at once, and so are event streams.
    ctx.approvals.releasing.addEventListener('abort', end, { once: true });
  });
}

async function listReviews(ctx: ApprovalsApiContext, params: URLSearchParams): Promise<unknown[]> {
  const state = params.get('state') ?? undefined;
  const kind = params.get('kind') ?? undefined;
  const limit = params.has('limit') ? Number(params.get('limit')) : 100;
  if (state !== undefined && !STATES.includes(state as ReviewState)) throw badRequest('invalid_state', `"state" must be one of ${STATES.join(', ')}.`, 'state');
  if (kind !== undefined && !KINDS.includes(kind as ReviewKind)) throw badRequest('invalid_kind', `"kind" must be one of ${KINDS.join(', ')}.`, 'kind');
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw badRequest('invalid_limit', '"limit" must be a whole number from 1 to 1000.', 'limit');
  // Visibility is decided per review, so read generously and filter.
  const reviews = await ctx.approvals.list({ ...(state && { state: state as ReviewState }), ...(kind && { kind: kind as ReviewKind }), limit: limit * 5 });
  return reviews
    .filter((r) => maySee(r, ctx))
    .slice(0, limit)
    .map((r) => view(r, ctx, false));
}

async function requestAccess(ctx: ApprovalsApiContext, body: Record<string, unknown>): Promise<Review> {
  const settings = ctx.approvals.config.access_requests;
  const connection = optionalString(body, 'connection');
  const reason = optionalString(body, 'reason')?.trim();
  const duration = body.duration;
  if (!connection) throw badRequest('invalid_body', '"connection" is required: the connection you need access to.', 'connection');
  if (!ctx.connections.includes(connection)) throw new GatewayError(`No connection "${connection}" exists on this gateway.`, { status: 404, type: 'not_found_error', code: 'connection_not_found', param: 'connection' });
  if (!settings.connections.includes('*') && !settings.connections.includes(connection)) {
    throw new GatewayError(`Temporary access to connection "${connection}" cannot be requested on this gateway; ask an administrator.`, {
      status: 403,
      type: 'permission_error',
      code: 'access_request_not_allowed',
      param: 'connection',
    });
  }
  if (!reason) throw badRequest('invalid_body', '"reason" is required: approvers decide on it.', 'reason');
  if (reason.length > MAX_REASON_CHARS) throw badRequest('invalid_body', `"reason" is longer than ${MAX_REASON_CHARS} characters.`, 'reason');
  const ms = typeof duration === 'string' || typeof duration === 'number' ? parseDuration(duration) : undefined;
  if (ms === undefined || ms < 1000) throw badRequest('invalid_duration', '"duration" must be a duration of at least 1s, e.g. "30m" or "1h".', 'duration');
  if (ms > settings.max_duration) throw badRequest('invalid_duration', `"duration" may be at most ${Math.round(settings.max_duration / 60_000)} minutes on this gateway.`, 'duration');
  return ctx.approvals.requestAccess(ctx.principal, connection, ms, reason);
}

function maySee(review: Review, ctx: ApprovalsApiContext): boolean {
  return samePerson(review.requester, ctx.principal) || isApprover(review, ctx.principal) || isAuditor(ctx.principal, ctx.auditorGroups);
}

const isApprover = (review: Review, principal: Principal): boolean => review.approvers.groups.some((g) => principal.groups.includes(g));

/** The review as the API shows it; lists leave the prompt out. */
function view(review: Review, ctx: ApprovalsApiContext, withPrompt: boolean) {
  const { fingerprint: _fingerprint, prompt, ...rest } = review;
  return {
    object: 'review',
    ...rest,
    approvals: approvalsOf(review),
    url: ctx.approvals.reviewUrl(review.id),
    can_decide: review.state === 'pending' && isApprover(review, ctx.principal) && !sameParty(review.requester, ctx.principal) && !review.votes.some((v) => sameParty(v.by, ctx.principal)),
    ...(withPrompt && prompt !== undefined && { prompt }),
  };
}

function refusal(r: VoteRefusal, review: Review): GatewayError {
  switch (r.code) {
    case 'self_approval_forbidden':
      return new GatewayError(`You requested review ${review.id}, so you cannot decide it; another approver must.`, { status: 403, type: 'permission_error', code: r.code });
    case 'not_an_approver':
      return new GatewayError(`Review ${review.id} can only be decided by members of ${r.groups.join(' or ')}.`, { status: 403, type: 'permission_error', code: r.code });
    case 'already_voted':
      return new GatewayError(`You already voted on review ${review.id}; it needs ${review.approvers.required} different approvers.`, { status: 409, type: 'invalid_request_error', code: r.code });
    case 'review_not_pending':
      return new GatewayError(`Review ${review.id} is ${r.state}, so it can no longer be decided.`, { status: 409, type: 'invalid_request_error', code: r.code });
  }
}

const notFound = (id: string): GatewayError =>
  new GatewayError(`No review "${id}" exists, or you may not see it.`, { status: 404, type: 'not_found_error', code: 'review_not_found' });

function allow(method: string, allowed: string): void {
  if (method !== allowed) throw methodNotAllowed(allowed);
}

function send(res: ServerResponse, status: number, body: unknown): true {
  sendJson(res, status, body);
  return true;
}
