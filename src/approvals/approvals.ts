// The approvals service: opens reviews, takes votes, wakes held requests,
// expires what nobody decided, and tells webhooks and metrics about every
// state change. Each change is also recorded, once, in the session of the
// request that raised the review, by whichever instance made it: a vote on
// instance B lands in a session instance A is still writing. The requests
// themselves record `created`, `waiting` and `executed` (pipeline/approve.ts).
import { randomUUID } from 'node:crypto';
import { APPENDED_ORDINAL_BASE, type ApprovalOutcome } from '../audit/events.js';
import type { SessionArchive } from '../audit/sessions.js';
import { GatewayError } from '../http/errors.js';
import type { Principal } from '../identity/principal.js';
import type { Logger } from '../ops/logger.js';
import type { ApprovalsConfig, ReviewEventName } from './config.js';
import {
  applyVote,
  cancel,
  execute,
  expire,
  grantActive,
  newReviewId,
  partyOf,
  sameParty,
  samePerson,
  approvalsOf,
  type Review,
  type ReviewParty,
  type VoteResult,
} from './review.js';
import type { ReviewQuery, ReviewStore } from './review-store.js';
import { WebhookNotifier } from './webhooks.js';

/** How often pending reviews nobody waits for are checked for expiry. */
const SWEEP_INTERVAL_MS = 15_000;
/** While PostgreSQL pushes changes, held requests still poll this many times less often, in case a notification is lost. */
const PUSHED_POLL_FACTOR = 5;

/**
 * A held request's registration in the shared store lasts this long unless
 * renewed, which its instance does every third of it: a request on an
 * instance that died stops counting as a waiter once its lease runs out.
 */
const WAITER_LEASE_MS = 30_000;

/** Ordinals of changes appended to the raising session: a vote's is BASE + its index. */
const APPENDED = { expired: APPENDED_ORDINAL_BASE + 1000, cancelled: APPENDED_ORDINAL_BASE + 1001, executed: APPENDED_ORDINAL_BASE + 1002 } as const;

export interface ApprovalsDeps {
  log: Logger;
  /** The session archive, for recording changes in the raising session; absent when recording is off. */
  archive?: () => SessionArchive | undefined;
  /** Called on every state change, for metrics. */
  onEvent?: (event: ReviewEventName, review: Review) => void;
  onWebhook?: (outcome: 'delivered' | 'failed') => void;
  /** The gateway's base URL, for review links when `review_url` is not set. */
  baseUrl: () => string;
  now?: () => number;
}

export interface NewPromptReview {
  /** Chosen by the caller, so the session can record `created` before the review exists. */
  id: string;
  principal: Principal;
  sessionId: string;
  connection: string;
  model: string;
  operation: string;
  stream: boolean;
  fingerprint: string;
  prompt: unknown;
  rule: string;
  reason: string;
  approvers: { groups: string[]; required: number };
}

/** What the identical request finds when it arrives. */
export type PriorReview =
  | { kind: 'approved'; review: Review }
  | { kind: 'pending'; review: Review }
  | { kind: 'rejected'; review: Review }
  | { kind: 'none' };

export type ReviewWatcher = (event: ReviewEventName | 'changed', review: Review) => void;

export type WaitOutcome = { kind: 'decided'; review: Review } | { kind: 'timeout'; review: Review } | { kind: 'aborted' } | { kind: 'draining'; review: Review };

interface Waiter {
  resolve(review: Review): void;
  /** The gateway is shutting down: stop waiting, leave the review pending. */
  release(): void;
}

export class Approvals {
  readonly webhooks: WebhookNotifier;
  private readonly now: () => number;
  private readonly waiters = new Map<string, Set<Waiter>>();
  /** Live listeners (the reviews event stream); told of every change this instance makes or the store pushes. */
  private readonly watchers = new Set<ReviewWatcher>();
  private readonly release = new AbortController();
  private pollTimer: NodeJS.Timeout | undefined;
  /** Reviews whose client went away, and when to cancel them if still nobody waits. */
  private readonly abandoned = new Map<string, NodeJS.Timeout>();
  /** Waiter registrations being dropped from the store, by review: an abandoned review is judged after they land. */
  private readonly leaving = new Map<string, Promise<void>>();
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly store: ReviewStore,
    readonly config: ApprovalsConfig,
    private readonly deps: ApprovalsDeps,
  ) {
    this.now = deps.now ?? Date.now;
    this.webhooks = new WebhookNotifier(config.webhooks, deps.log, deps.onWebhook);
  }

  async start(): Promise<void> {
    await this.store.subscribe((id) => {
      void this.changed(id);
      void this.pushedToWatchers(id);
    });
    this.sweepTimer = setInterval(() => void this.sweep(), SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  async close(): Promise<void> {
    for (const timer of this.abandoned.values()) clearTimeout(timer);
    this.abandoned.clear();
    clearInterval(this.sweepTimer);
    clearTimeout(this.pollTimer);
    await this.webhooks.drain();
    await Promise.all(this.leaving.values());
    await this.store.close();
  }

  reviewUrl(id: string): string {
    return (this.config.review_url ?? `${this.deps.baseUrl()}/ui/reviews/{id}`).replaceAll('{id}', id);
  }

  /** Aborts when the gateway starts shutting down (releaseHeld): long-lived answers end then. */
  get releasing(): AbortSignal {
    return this.release.signal;
  }

  /** Calls `watcher` on every review change until the returned function is called. */
  watch(watcher: ReviewWatcher): () => void {
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }

  /** A change another instance made (pushed by the store): watchers reread it. */
  private async pushedToWatchers(id: string): Promise<void> {
    if (this.watchers.size === 0) return;
    const review = await this.store.get(id).catch(() => undefined);
    if (review) for (const w of [...this.watchers]) w('changed', review);
  }

  /** A review as it stands now: one whose time ran out reads as expired, without waiting for the sweep. */
  async get(id: string): Promise<Review | undefined> {
    const review = await this.store.get(id);
    if (review?.state === 'pending' && review.expires_at <= this.now()) return (await this.expire(id)) ?? this.store.get(id);
    return review;
  }

  list(query: ReviewQuery): Promise<Review[]> {
    return this.store.list(query);
  }

  /** The newest review of the identical request that still matters to it. */
  async prior(fingerprint: string, principal: Principal): Promise<PriorReview> {
    const now = this.now();
    for (const review of await this.store.byFingerprint(fingerprint)) {
      if (!samePerson(review.requester, principal)) continue;
      if (review.state === 'approved' && review.expires_at > now) return { kind: 'approved', review };
      if (review.state === 'pending' && review.expires_at > now) return { kind: 'pending', review };
      // A rejection is final for the identical request, until the review itself would have expired.
      if (review.state === 'rejected' && review.created_at + this.config.expires_after > now) return { kind: 'rejected', review };
    }
    return { kind: 'none' };
  }

  async createPromptReview(input: NewPromptReview): Promise<Review> {
    await this.checkPendingLimit(input.principal);
    const now = this.now();
    const review: Review = {
      id: input.id,
      kind: 'prompt',
      state: 'pending',
      created_at: now,
      updated_at: now,
      expires_at: now + this.config.expires_after,
      requester: { ...partyOf(input.principal), groups: input.principal.groups, ...(input.principal.owner && { owner: input.principal.owner }) },
      connection: input.connection,
      model: input.model,
      operation: input.operation,
      stream: input.stream,
      session_id: input.sessionId,
      fingerprint: input.fingerprint,
      prompt: input.prompt,
      rule: input.rule,
      reason: input.reason,
      approvers: input.approvers,
      votes: [],
    };
    await this.store.insert(review);
    this.announce('created', review);
    return review;
  }

  async requestAccess(principal: Principal, connection: string, durationMs: number, reason: string): Promise<Review> {
    await this.checkPendingLimit(principal);
    const now = this.now();
    const settings = this.config.access_requests;
    const review: Review = {
      id: newReviewId(),
      kind: 'access',
      state: 'pending',
      created_at: now,
      updated_at: now,
      expires_at: now + this.config.expires_after,
      requester: { ...partyOf(principal), groups: principal.groups, ...(principal.owner && { owner: principal.owner }) },
      connection,
      reason,
      approvers: { groups: settings.approvers, required: settings.required_approvals },
      votes: [],
      grant: { duration_ms: durationMs },
    };
    await this.store.insert(review);
    this.announce('created', review);
    return review;
  }

  /** An approver's decision. Undefined when no such review exists. */
  async vote(id: string, voter: Principal, decision: 'approve' | 'reject', comment?: string): Promise<VoteResult | undefined> {
    const now = this.now();
    const vote = { decision, by: partyOf(voter), at: now, ...(comment ? { comment } : {}) };
    const result = await this.store.update(id, (current) => {
      const r = applyVote(current, vote, voter.groups, now, this.config.approval_valid_for);
      return { ...(r.ok && { next: r.review }), result: r };
    });
    if (!result?.ok) return result;
    const review = result.review;
    const outcome: ApprovalOutcome = decision === 'reject' ? 'rejected' : (result.transition ?? 'voted');
    await this.recordInRaisingSession(review, outcome, APPENDED_ORDINAL_BASE + review.votes.length - 1, vote.by.email ?? vote.by.subject, comment);
    if (result.transition) this.announce(result.transition, review, vote.by, comment);
    // A vote that does not decide yet (one of two) changes what every approver's inbox shows.
    else for (const w of [...this.watchers]) w('changed', review);
    this.changed(id);
    return result;
  }

  /** Uses an approval: true when this request is the one it lets through. */
  async execute(id: string, sessionId: string): Promise<Review | undefined> {
    const now = this.now();
    const executed = await this.store.update(id, (current) => {
      const next = execute(current, sessionId, now);
      return { ...(next && { next }), result: next };
    });
    if (executed && executed.session_id !== sessionId) await this.recordInRaisingSession(executed, 'executed', APPENDED.executed, 'gateway');
    if (executed) this.announce('executed', executed);
    return executed;
  }

  async cancel(id: string): Promise<Review | undefined> {
    return this.transition(id, 'cancelled', (r) => cancel(r, this.now()));
  }

  async expire(id: string): Promise<Review | undefined> {
    return this.transition(id, 'expired', (r) => expire(r, this.now()));
  }

  /** Refuses a new review while the requester already has `max_pending_per_requester` waiting. */
  private async checkPendingLimit(principal: Principal): Promise<void> {
    const max = this.config.max_pending_per_requester;
    const now = this.now();
    // By subject, then by person: the token's issuer is the gateway's for every browser sign-in.
    const pending = await this.store.list({ state: 'pending', requester: { subject: principal.subject }, limit: Number.MAX_SAFE_INTEGER });
    const open = pending.filter((r) => samePerson(r.requester, principal) && r.expires_at > now);
    if (open.length >= max) {
      const retryAfter = Math.max(1, Math.ceil((Math.min(...open.map((r) => r.expires_at)) - now) / 1000));
      throw new GatewayError(
        `You already have ${max} reviews waiting for approvers (${open.map((r) => r.id).join(', ')}); wait for them to be decided or to expire before asking for more.`,
        { status: 429, type: 'rate_limit_error', code: 'too_many_pending_reviews', headers: { 'retry-after': String(retryAfter) } },
      );
    }
  }

  /** An approved access grant this person holds for the connection, if any, whichever of their tokens asked for it. */
  async grantFor(principal: Principal, connection: string): Promise<Review | undefined> {
    const now = this.now();
    const grants = await this.store.activeGrants(principal.subject, connection, now);
    return grants.find((g) => samePerson(g.requester, principal) && grantActive(g, now));
  }

  /** Every running access grant of this person. */
  async grantsOf(principal: Principal): Promise<Review[]> {
    const now = this.now();
    const approved = await this.store.list({ kind: 'access', state: 'approved', requester: { subject: principal.subject }, limit: Number.MAX_SAFE_INTEGER });
    return approved.filter((g) => samePerson(g.requester, principal) && grantActive(g, now));
  }

  /**
   * Holds until the review is decided, the wait runs out, or `signal` fires.
   * `keepalive` runs every `keepalive_interval` meanwhile.
   */
  async waitForDecision(review: Review, waitMs: number, signal: AbortSignal, keepalive?: () => void): Promise<WaitOutcome> {
    if (signal.aborted) return { kind: 'aborted' };
    return new Promise<WaitOutcome>((resolve) => {
      const timers: NodeJS.Timeout[] = [];
      const waiter: Waiter = { resolve: (decided) => done({ kind: 'decided', review: decided }), release: () => done({ kind: 'draining', review }) };
      const onAbort = () => done({ kind: 'aborted' });
      const waiterId = randomUUID();
      /** The registration and its renewals, in order; the drop comes after them. */
      let lease = Promise.resolve();
      const done = (outcome: WaitOutcome) => {
        for (const t of timers) clearTimeout(t);
        signal.removeEventListener('abort', onAbort);
        const set = this.waiters.get(review.id);
        set?.delete(waiter);
        if (set?.size === 0) this.waiters.delete(review.id);
        this.dropWaiter(review.id, waiterId, lease);
        resolve(outcome);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      let set = this.waiters.get(review.id);
      if (!set) this.waiters.set(review.id, (set = new Set()));
      set.add(waiter);
      // Someone came back for an abandoned review: it is no longer to be cancelled.
      clearTimeout(this.abandoned.get(review.id));
      this.abandoned.delete(review.id);
      // Registered in the shared store too, so an instance whose client left does not cancel the review under this one.
      const holdLease = () => {
        lease = lease
          .then(() => this.store.holdWaiter(review.id, waiterId, this.now() + WAITER_LEASE_MS))
          .catch((err: unknown) => this.deps.log.warn({ err: (err as Error).message, review: review.id }, 'could not register a held request in the review store'));
        timers.push(setTimeout(holdLease, WAITER_LEASE_MS / 3));
      };
      holdLease();
      timers.push(setTimeout(() => done({ kind: 'timeout', review }), waitMs));
      // The review may run out before the wait does.
      const untilExpiry = review.expires_at - this.now();
      if (untilExpiry < waitMs) {
        const expireNow = () =>
          this.expire(review.id).then(
            () => this.changed(review.id),
            // The store is down: the poll or the sweep expires it later; the wait still ends on time.
            (err: unknown) => this.deps.log.warn({ err: (err as Error).message, review: review.id }, 'could not expire a review'),
          );
        // A timer may fire a millisecond before Date.now() says the time is up: +1 so the first try counts.
        timers.push(setTimeout(() => void expireNow(), Math.max(0, untilExpiry) + 1));
      }
      if (keepalive && this.config.keepalive_interval > 0) {
        const beat = () => {
          keepalive();
          timers.push(setTimeout(beat, this.config.keepalive_interval));
        };
        timers.push(setTimeout(beat, this.config.keepalive_interval));
      }
      this.schedulePoll();
      // A decision that landed between reading the review and starting to wait.
      void this.changed(review.id);
    });
  }

  /** Held requests on this instance waiting on the review. */
  waitingOn(id: string): number {
    return this.waiters.get(id)?.size ?? 0;
  }

  /**
   * The client that held this review went away. Another held request may
   * still be waiting on it, here or on another instance, or the same client
   * may be about to retry: the review is cancelled only if, after
   * `cancel_abandoned_after`, no request on any instance waits on it.
   */
  abandon(id: string): void {
    if (this.waitingOn(id) > 0 || this.abandoned.has(id)) return;
    const timer = setTimeout(() => void this.cancelIfNobodyWaits(id), this.config.cancel_abandoned_after);
    timer.unref();
    this.abandoned.set(id, timer);
  }

  private async cancelIfNobodyWaits(id: string): Promise<void> {
    this.abandoned.delete(id);
    if (this.waitingOn(id) > 0) return;
    try {
      await this.leaving.get(id);
      const elsewhere = await this.store.liveWaiters(id, this.now());
      if (elsewhere > 0 || this.waitingOn(id) > 0) {
        this.deps.log.info({ review: id, waiters: elsewhere }, 'abandoned review still has a held request waiting on it; not cancelled');
        return;
      }
      if (await this.cancel(id)) this.deps.log.info({ review: id }, 'abandoned review cancelled: no request waits on it');
    } catch (err) {
      // Unsure whether someone waits: never cancel under them. The review expires instead.
      this.deps.log.warn({ err: (err as Error).message, review: id }, 'could not judge or cancel an abandoned review; it expires instead');
    }
  }

  /** Drops a finished wait's registration; an abandoned review is judged once every drop under way has landed. */
  private dropWaiter(reviewId: string, waiterId: string, lease: Promise<void>): void {
    const previous = this.leaving.get(reviewId) ?? Promise.resolve();
    const dropped = Promise.all([previous, lease])
      .then(() => this.store.dropWaiter(waiterId))
      .catch((err: unknown) => this.deps.log.warn({ err: (err as Error).message, review: reviewId }, 'could not drop a held request from the review store; its lease runs out instead'))
      .finally(() => {
        if (this.leaving.get(reviewId) === dropped) this.leaving.delete(reviewId);
      });
    this.leaving.set(reviewId, dropped);
  }

  /**
   * Lets every held request go (shutdown): their reviews stay pending, so
   * the client's retry, on any instance, waits on the same review.
   */
  releaseHeld(): void {
    this.release.abort();
    for (const set of [...this.waiters.values()]) for (const w of [...set]) w.release();
  }

  /** Rereads a review someone may be waiting for and wakes them if it was decided. */
  private async changed(id: string): Promise<void> {
    if (!this.waiters.has(id)) return;
    let review: Review | undefined;
    try {
      review = await this.store.get(id);
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message, review: id }, 'could not reread a review; polling continues');
      return;
    }
    if (review && review.state !== 'pending') for (const w of [...(this.waiters.get(id) ?? [])]) w.resolve(review);
  }

  /** The fallback for lost notifications and for stores that cannot push. */
  private schedulePoll(): void {
    if (this.pollTimer || this.waiters.size === 0) return;
    const interval = this.store.pushing ? this.config.poll_interval * PUSHED_POLL_FACTOR : this.config.poll_interval;
    this.pollTimer = setTimeout(async () => {
      try {
        const reviews = await this.store.getMany([...this.waiters.keys()]);
        for (const read of reviews) {
          // One whose time ran out is expired here too: the expiry timer's own attempt can fail (store down) or come a millisecond early.
          const review = read.state === 'pending' && read.expires_at <= this.now() ? ((await this.expire(read.id)) ?? read) : read;
          if (review.state !== 'pending') for (const w of [...(this.waiters.get(review.id) ?? [])]) w.resolve(review);
        }
      } catch (err) {
        this.deps.log.warn({ err: (err as Error).message }, 'could not poll held reviews');
      } finally {
        this.pollTimer = undefined;
        this.schedulePoll();
      }
    }, interval);
  }

  /**
   * Expires pending reviews nobody is waiting for (any instance may, exactly
   * one does), and deletes decided reviews past `retention`, a batch a time.
   */
  async sweep(): Promise<{ expired: number; deleted: number }> {
    const result = { expired: 0, deleted: 0 };
    try {
      for (const id of await this.store.duePending(this.now(), 100)) if (await this.expire(id)) result.expired++;
      await this.store.dropExpiredWaiters(this.now());
      if (this.config.retention !== null) result.deleted = await this.store.deleteDecidedBefore(this.now() - this.config.retention, 500);
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'review sweep failed; retrying later');
    }
    return result;
  }

  private async transition(id: string, event: 'cancelled' | 'expired', change: (r: Review) => Review | undefined): Promise<Review | undefined> {
    const next = await this.store.update(id, (current) => {
      const n = change(current);
      return { ...(n && { next: n }), result: n };
    });
    if (next) {
      await this.recordInRaisingSession(next, event, APPENDED[event], 'gateway');
      this.announce(event, next);
    }
    return next;
  }

  /** Appends the change to the session that raised the review; a failure is logged, the change stands. */
  private async recordInRaisingSession(review: Review, outcome: ApprovalOutcome, n: number, by: string, comment?: string): Promise<void> {
    const archive = this.deps.archive?.();
    if (!archive || !review.session_id) return;
    const meta = { outcome, review_id: review.id, ...(review.rule !== undefined && { rule: review.rule }), approver: by, approvals: approvalsOf(review), required: review.approvers.required };
    try {
      await archive.appendApproval(review.session_id, n, meta, comment);
    } catch (err) {
      this.deps.log.error({ err, review: review.id, outcome }, 'could not record a review change in its session');
    }
  }

  /** Counts a state change and notifies webhooks. */
  private announce(event: ReviewEventName, review: Review, by?: ReviewParty, comment?: string): void {
    this.deps.onEvent?.(event, review);
    for (const w of [...this.watchers]) w(event, review);
    this.webhooks.notify({ event, review, ...(by && { by }), ...(comment !== undefined && { comment }), reviewUrl: this.reviewUrl(review.id) });
  }
}
