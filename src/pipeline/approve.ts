// Stage: a human approves a high-risk prompt. Runs after inspect and before
// anything is forwarded. The request is held open (no response bytes yet,
// only `102 Processing` to keep idle-timeouts away) until the review is
// decided or the wait runs out. The identical request retried after an
// approval passes once. This session records `created` (or `waiting`, when
// it joins the identical request's review) and `executed`; votes, expiry
// and cancellation are recorded in the raising session by whoever makes
// them (approvals/approvals.ts).
import { requestFingerprint } from '../approvals/fingerprint.js';
import type { IncomingHttpHeaders } from 'node:http';
import type { Approvals } from '../approvals/approvals.js';
import type { ApprovalsConfig } from '../approvals/config.js';
import { approvalsOf, newReviewId, type Review } from '../approvals/review.js';
import { GatewayError } from '../http/errors.js';
import { personIssuer } from '../identity/principal.js';
import type { Decision } from '../policy/guardrails-types.js';
import type { RequestContext } from './context.js';
import type { GatewayServices } from './services.js';

/** What inspect found that needs a person. */
export interface ApprovalNeed {
  /** The first `require_approval` decision: its rule picks the approvers. */
  decision: Decision;
  /** Every `require_approval` reason, for the approvers. */
  reasons: string[];
  /** The prompt as approvers see it. */
  reviewBody: unknown;
}

/** Seconds a client is told to wait before retrying an unapproved request. */
const RETRY_AFTER_SECONDS = 30;

export async function holdForApproval(services: GatewayServices, ctx: RequestContext): Promise<void> {
  const need = ctx.approvalNeed;
  if (!need) return;
  const approvals = services.approvals;
  if (!approvals) throw approvalsUnavailable();
  const { principal, route, request } = ctx;
  if (!principal || !route || !request) throw new Error('holdForApproval() runs after inspect');

  const fingerprint = requestFingerprint({
    // The person, not the token: an approval won with the CLI's token passes the browser's retry.
    issuer: personIssuer(principal),
    subject: principal.subject,
    connection: route.connection.name,
    model: route.model,
    operation: request.operation,
    body: request.body,
  });
  try {
    const prior = await approvals.prior(fingerprint, principal);
    if (prior.kind === 'rejected') {
      recordSeen(ctx, prior.review, 'rejected');
      throw rejected(prior.review);
    }
    if (prior.kind === 'approved' && (await passOnce(approvals, ctx, prior.review))) return;

    let review: Review;
    if (prior.kind === 'pending') {
      review = prior.review;
      recordSeen(ctx, review, 'waiting');
    } else {
      // The review points at this session, so the session, and its `created`, are durable first.
      const id = newReviewId();
      const approvers = approversFor(services, need.decision.rule);
      ctx.recording?.approval({ outcome: 'created', review_id: id, rule: need.decision.rule, approver: 'gateway', approvals: 0, required: approvers.required });
      await ctx.recording?.flush();
      if (ctx.recording?.failure) throw ctx.recording.failure;
      review = await approvals.createPromptReview({
        id,
        principal,
        sessionId: ctx.id,
        connection: route.connection.name,
        model: route.model,
        operation: request.operation,
        stream: request.stream,
        fingerprint,
        prompt: need.reviewBody,
        rule: need.decision.rule,
        reason: need.reasons.join('; '),
        approvers,
      });
    }
    ctx.log.info({ review: review.id, rule: review.rule }, 'request held for approval');

    const held = performance.now();
    const holdMs = holdFor(approvals.config, ctx.req.headers);
    services.metrics.heldRequests.inc();
    const outcome = await approvals
      .waitForDecision(review, holdMs, ctx.abort.signal, () => {
        // HTTP/1.0 clients cannot take interim responses (RFC 9110 §15.2).
        const interimOk = ctx.req.httpVersionMajor > 1 || ctx.req.httpVersionMinor >= 1;
        if (interimOk && !ctx.res.headersSent && !ctx.res.destroyed) ctx.res.writeProcessing();
      })
      .finally(() => {
        services.metrics.heldRequests.dec();
        services.metrics.approvalWait.observe((performance.now() - held) / 1000);
      });

    switch (outcome.kind) {
      case 'aborted': {
        // Others may wait on the same review, or this client may retry: never cancel under them.
        approvals.abandon(review.id);
        throw new GatewayError(`The client disconnected while review ${review.id} was pending.`, {
          status: 499 as number,
          type: 'invalid_request_error',
          code: 'client_disconnected',
        });
      }
      case 'timeout':
        throw approvalRequired(approvals, review, need, holdMs);
      case 'draining':
        throw new GatewayError(
          `This gateway instance is shutting down while review ${review.id} is pending. Retry the identical request: it will wait on the same review.`,
          { status: 503, type: 'service_unavailable', code: 'shutting_down', headers: { 'retry-after': '1', 'x-modelgate-review-id': review.id, connection: 'close' }, details: { review_id: review.id } },
        );
      case 'decided': {
        const decided = outcome.review;
        if (decided.state === 'approved' && (await passOnce(approvals, ctx, decided))) return;
        if (decided.state === 'rejected') throw rejected(decided);
        if (decided.state === 'expired') throw expired(decided);
        if (decided.state === 'cancelled') throw cancelledElsewhere(decided);
        // Approved, but the approval was used by another copy of this request.
        throw approvalRequired(approvals, decided, need, holdMs);
      }
    }
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    throw approvalsUnavailable(err);
  }
}

/** Uses an approval for this request; false when another request used it first. */
async function passOnce(approvals: Approvals, ctx: RequestContext, review: Review): Promise<boolean> {
  const executed = await approvals.execute(review.id, ctx.id);
  if (!executed) return false;
  recordSeen(ctx, executed, 'executed');
  ctx.log.info({ review: review.id }, 'approved request released');
  return true;
}

/** Records in this session what became of the review for this request. */
function recordSeen(ctx: RequestContext, review: Review, outcome: 'waiting' | 'executed' | 'rejected'): void {
  const decider = outcome === 'rejected' ? review.votes.findLast((v) => v.decision === 'reject')?.by : undefined;
  ctx.recording?.approval({
    outcome,
    review_id: review.id,
    rule: review.rule,
    approver: decider ? (decider.email ?? decider.subject) : 'gateway',
    approvals: approvalsOf(review),
    required: review.approvers.required,
  });
}

/** The rule's approvers, else the defaults. */
function approversFor(services: GatewayServices, ruleName: string): { groups: string[]; required: number } {
  const defaults = services.config.approvals;
  const rule = services.config.guardrails.input.find((r) => r.name === ruleName);
  return { groups: rule?.approvers ?? defaults.approvers, required: rule?.required_approvals ?? defaults.required_approvals };
}

/**
 * How long to hold this request: `approvals.wait`, or less when the client
 * says it gives up sooner, so it reads `approval_required` (which SDKs raise
 * as a permission error, not retry) instead of timing out and retrying.
 */
export function holdFor(config: ApprovalsConfig, headers: IncomingHttpHeaders): number {
  const clientTimeoutMs = clientTimeout(headers);
  if (clientTimeoutMs === undefined) return config.wait;
  // Leave a margin for the answer to travel, but never all of a short timeout.
  const margin = Math.min(config.answer_before_client_timeout, clientTimeoutMs / 5);
  return Math.max(0, Math.min(config.wait, clientTimeoutMs - margin));
}

/** The client's own timeout in ms: the OpenAI SDKs' `X-Stainless-Timeout` (seconds), or RFC 7240 `Prefer: wait=N`. */
function clientTimeout(headers: IncomingHttpHeaders): number | undefined {
  const stainless = Number(headers['x-stainless-timeout']);
  if (Number.isFinite(stainless) && stainless > 0) return stainless * 1000;
  const prefer = /(?:^|[,;\s])wait=(\d+)/i.exec(String(headers.prefer ?? ''));
  if (prefer) return Number(prefer[1]) * 1000;
  return undefined;
}

function approvalRequired(approvals: Approvals, review: Review, need: ApprovalNeed, heldMs: number): GatewayError {
  const url = approvals.reviewUrl(review.id);
  const waited = Math.round(heldMs / 1000);
  const who = `${review.approvers.required} approval${review.approvers.required === 1 ? '' : 's'} from ${review.approvers.groups.join(' or ')}`;
  return new GatewayError(
    `Guardrail rule "${need.decision.rule}" requires a human approval for this prompt (${need.decision.reason}). Review ${review.id} needs ${who} and was not decided within ${waited}s, so the request was not forwarded. A person is deciding: send the identical request again to keep waiting on the same review (no new review opens), and once it is approved it passes once. Review: ${url}`,
    {
      status: 403,
      type: 'permission_error',
      code: 'approval_required',
      headers: { 'retry-after': String(RETRY_AFTER_SECONDS), 'x-modelgate-review-id': review.id },
      details: { review_id: review.id, review_url: url },
    },
  );
}

function lastComment(review: Review, decision: 'approve' | 'reject'): string {
  const vote = review.votes.findLast((v) => v.decision === decision);
  if (!vote) return '';
  return ` by ${vote.by.email ?? vote.by.subject}${vote.comment ? `: "${vote.comment}"` : ' (no comment)'}`;
}

function rejected(review: Review): GatewayError {
  return new GatewayError(
    `Review ${review.id} of this request was rejected${lastComment(review, 'reject')}. The request was not forwarded; a rejection is final for this exact request.`,
    { status: 403, type: 'permission_error', code: 'approval_rejected', headers: { 'x-modelgate-review-id': review.id }, details: { review_id: review.id } },
  );
}

function expired(review: Review): GatewayError {
  return new GatewayError(`Review ${review.id} expired without a decision, so the request was not forwarded. Send it again to open a new review.`, {
    status: 403,
    type: 'permission_error',
    code: 'approval_expired',
    headers: { 'x-modelgate-review-id': review.id },
    details: { review_id: review.id },
  });
}

function cancelledElsewhere(review: Review): GatewayError {
  return new GatewayError(`Review ${review.id} was cancelled (the request that opened it went away). Send the request again to open a new review.`, {
    status: 403,
    type: 'permission_error',
    code: 'approval_cancelled',
    headers: { 'x-modelgate-review-id': review.id },
    details: { review_id: review.id },
  });
}

function approvalsUnavailable(cause?: unknown): GatewayError {
  return new GatewayError(
    'This prompt needs a human approval, but the gateway cannot reach its review store, so the request was not forwarded. Retry shortly; if it persists, an operator should check the storage database.',
    { status: 503, type: 'service_unavailable', code: 'approvals_unavailable', headers: { 'retry-after': '5' }, cause },
  );
}
