// Where reviews live: the `storage:` database every gateway instance shares.
// A review is one JSON document plus the columns it is looked up by; its
// prompt, which can be megabytes, is a column of its own that only `get`
// and `update` read. All
// changes go through `update`, a read-modify-write under the row's lock, so
// the pure state machine in review.ts decides and the store only serialises.
import type { StorageConfig } from '../audit/config.js';
import type { Review, ReviewKind, ReviewState } from './review.js';

export interface ReviewQuery {
  state?: ReviewState;
  kind?: ReviewKind;
  /** Reviews requested by this subject (at this issuer, when given). */
  requester?: { issuer?: string; subject: string };
  /** Newest first; default 100. */
  limit?: number;
}

/** Every method but `get` and `update` leaves `prompt` out. */
export interface ReviewStore {
  insert(review: Review): Promise<void>;
  get(id: string): Promise<Review | undefined>;
  getMany(ids: readonly string[]): Promise<Review[]>;
  list(query: ReviewQuery): Promise<Review[]>;
  /** Reviews raised by the identical request, newest first. */
  byFingerprint(fingerprint: string): Promise<Review[]>;
  /**
   * Approved access reviews for this connection whose grant has not run out, of every requester with
   * this subject: the caller decides which of them is the same person (`samePerson`), since a
   * gateway-issued token's issuer is shared by the people of every IdP that signs in through the browser.
   */
  activeGrants(subject: string, connection: string, now: number): Promise<Review[]>;
  /** Deletes up to `limit` decided reviews last changed before `cutoff`; returns how many. */
  deleteDecidedBefore(cutoff: number, limit: number): Promise<number>;
  /** Pending reviews whose time is up. */
  duePending(now: number, limit: number): Promise<string[]>;
  /**
   * Reads the review under its row lock, lets `change` decide, and writes
   * what it returns as `next` in the same transaction. Other instances are
   * told about the change. Undefined when the review does not exist.
   */
  update<T>(id: string, change: (current: Review) => { next?: Review; result: T }): Promise<T | undefined>;
  /**
   * Registers, or renews, a held request waiting on a review until `leaseUntil`
   * (epoch ms): how an instance knows a request on another instance still waits.
   */
  holdWaiter(reviewId: string, waiterId: string, leaseUntil: number): Promise<void>;
  dropWaiter(waiterId: string): Promise<void>;
  /** Held requests, on any instance, whose lease on the review has not run out. */
  liveWaiters(reviewId: string, now: number): Promise<number>;
  /** Forgets leases that ran out (their instance died without dropping them). */
  dropExpiredWaiters(now: number): Promise<void>;
  /** Calls `listener` with the ID of every review changed by any instance; false when this store cannot push (poll instead). */
  subscribe(listener: (id: string) => void): Promise<boolean>;
  /** True while pushed changes are known to arrive; held requests poll faster otherwise. */
  readonly pushing: boolean;
  close(): Promise<void>;
}

const REDACTED = '[redacted]';

/**
 * Right to erasure for reviews: what the requester and their approvers
 * wrote (the masked prompt, an access request's reason, comments) is
 * replaced; who, when, which rule and the outcome stay. Returns the IDs.
 */
export async function redactRequesterReviews(store: ReviewStore, subject: string, issuer: string | undefined, now = Date.now()): Promise<string[]> {
  const redacted: string[] = [];
  // By subject, then by the IdP that vouched for the requester: a review raised through a browser sign-in carries the gateway's issuer.
  const reviews = await store.list({ requester: { subject }, limit: Number.MAX_SAFE_INTEGER });
  for (const review of reviews) {
    if (review.redacted_at !== undefined) continue;
    if (issuer !== undefined && (review.requester.origin ?? review.requester.issuer) !== issuer) continue;
    await store.update(review.id, (current) => ({
      next: {
        ...current,
        ...(current.prompt !== undefined && { prompt: REDACTED }),
        ...(current.kind === 'access' && { reason: REDACTED }),
        votes: current.votes.map((v) => (v.comment === undefined ? v : { ...v, comment: REDACTED })),
        redacted_at: now,
      },
      result: undefined,
    }));
    redacted.push(review.id);
  }
  return redacted;
}

export class ReviewStoreUnavailableError extends Error {
  override name = 'ReviewStoreUnavailableError';
}

export async function openReviewStore(storage: StorageConfig): Promise<ReviewStore> {
  if (storage.driver === 'postgres') {
    const { PostgresReviewStore } = await import('./postgres-review-store.js');
    return PostgresReviewStore.open(storage.postgres!);
  }
  const { SqliteReviewStore } = await import('./sqlite-review-store.js');
  return SqliteReviewStore.open(storage.sqlite);
}

/** The columns a review is found by, from its document. */
export function reviewColumns(review: Review) {
  return {
    id: review.id,
    kind: review.kind,
    state: review.state,
    requester_issuer: review.requester.issuer,
    requester_subject: review.requester.subject,
    connection: review.connection,
    fingerprint: review.fingerprint ?? null,
    created_at: review.created_at,
    updated_at: review.updated_at,
    expires_at: review.expires_at,
    grant_expires_at: review.grant?.expires_at ?? null,
    doc: JSON.stringify({ ...review, prompt: undefined }),
    prompt: review.prompt === undefined ? null : JSON.stringify(review.prompt),
  };
}

/** A review from its row; `prompt` only when the row was read with it. */
export function reviewFromRow(row: { doc: string; prompt?: string | null }): Review {
  const review = JSON.parse(row.doc) as Review;
  if (row.prompt != null) review.prompt = JSON.parse(row.prompt);
  return review;
}
