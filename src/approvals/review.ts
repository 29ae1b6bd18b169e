// A review: one human decision the gateway waits for. Either a prompt that a
// `require_approval` rule paused, or a request for temporary access to a
// connection. This file is the whole state machine, pure and synchronous, so
// every store applies exactly the same rules under its own row lock:
//
//   pending ──approve × required──▶ approved ──retry or waiter──▶ executed
//      │ ╲──reject (final)──▶ rejected
//      │ ╲──time──▶ expired
//      ╰──client gone──▶ cancelled
import { randomBytes } from 'node:crypto';
import type { Principal } from '../identity/principal.js';

export type ReviewKind = 'prompt' | 'access';
export type ReviewState = 'pending' | 'approved' | 'rejected' | 'expired' | 'cancelled' | 'executed';

export interface ReviewParty {
  issuer: string;
  subject: string;
  /** Where the person signed in, when `issuer` is the gateway itself (browser sign-in). */
  origin?: string;
  email?: string;
  /** The email was verified by an issuer trusted to merge people by email (`trust_email`). */
  emailTrusted?: boolean;
  name?: string;
}

export interface Requester extends ReviewParty {
  groups: string[];
  /** For a service identity (service key): the person who owns it, who is no more an independent approver than the requester. */
  owner?: { issuer: string; subject: string; email?: string };
}

export interface Vote {
  decision: 'approve' | 'reject';
  by: ReviewParty;
  /** Epoch ms. */
  at: number;
  comment?: string;
}

export interface Review {
  id: string;
  kind: ReviewKind;
  state: ReviewState;
  /** Epoch ms. */
  created_at: number;
  updated_at: number;
  /** Pending: when it expires. Approved prompt: when the approval stops being usable. */
  expires_at: number;
  requester: Requester;
  connection: string;
  model?: string;
  operation?: string;
  stream?: boolean;
  /** The session (request ID) that raised the review. */
  session_id?: string;
  /** Hash of the requester and the normalised request: the identical retry matches it. */
  fingerprint?: string;
  /** The prompt as approvers see it: after input masking, with every detected entity masked. */
  prompt?: unknown;
  rule?: string;
  reason: string;
  approvers: { groups: string[]; required: number };
  votes: Vote[];
  decided_at?: number;
  executed_at?: number;
  /** The request that used the approval. */
  executed_session_id?: string;
  /** Set when the requester's content was erased (right to erasure); the decision trail stays. */
  redacted_at?: number;
  /** Access reviews: how long the grant lasts once approved, and until when it does. */
  grant?: { duration_ms: number; expires_at?: number };
}

export const REVIEW_ID_PATTERN = /^rev_[0-9a-z]{26}$/;

export function newReviewId(): string {
  // 130 random bits in base 36: unguessable, URL-safe, fixed length.
  const n = BigInt(`0x${randomBytes(17).toString('hex')}`);
  return `rev_${n.toString(36).padStart(26, '0').slice(-26)}`;
}

export function partyOf(principal: Pick<Principal, 'issuer' | 'subject' | 'origin' | 'email' | 'emailTrusted' | 'name'>): ReviewParty {
  return {
    issuer: principal.issuer,
    subject: principal.subject,
    ...(principal.origin !== undefined && { origin: principal.origin }),
    ...(principal.email !== undefined && { email: principal.email }),
    ...(principal.emailTrusted && { emailTrusted: true }),
    ...(principal.name !== undefined && { name: principal.name }),
  };
}

/**
 * Whether two identities are one person: the same subject at the same
 * identity provider (whether the token came from it or from the gateway
 * after a browser sign-in), or the same verified email. Erring towards
 * "same" only ever refuses a vote, so the email rule is safe.
 */
export function sameParty(a: Pick<ReviewParty, 'issuer' | 'subject' | 'origin' | 'email'>, b: Pick<ReviewParty, 'issuer' | 'subject' | 'origin' | 'email'>): boolean {
  if (a.subject === b.subject && (a.origin ?? a.issuer) === (b.origin ?? b.issuer)) return true;
  return a.email !== undefined && b.email !== undefined && a.email.toLowerCase() === b.email.toLowerCase();
}

type PersonKey = Pick<ReviewParty, 'issuer' | 'subject' | 'origin' | 'email' | 'emailTrusted'>;

/**
 * Whether two identities are one person for what grants something (seeing a review, using its approval):
 * the same subject at the same identity provider, or the same email when both issuers verified it and are
 * trusted to merge by email. Unlike `sameParty`, erring towards "same" here would give things away.
 */
export function samePerson(a: PersonKey, b: PersonKey): boolean {
  if (a.subject === b.subject && (a.origin ?? a.issuer) === (b.origin ?? b.issuer)) return true;
  return a.emailTrusted === true && b.emailTrusted === true && a.email !== undefined && b.email !== undefined && a.email.toLowerCase() === b.email.toLowerCase();
}

/** Why a vote was refused; each maps to a distinct API error. */
export type VoteRefusal =
  | { code: 'self_approval_forbidden' }
  | { code: 'not_an_approver'; groups: string[] }
  | { code: 'review_not_pending'; state: ReviewState }
  | { code: 'already_voted' };

export type VoteResult = { ok: true; review: Review; transition?: 'approved' | 'rejected' } | { ok: false; refusal: VoteRefusal; review: Review };

/**
 * Applies one approver's vote. The requester never approves their own
 * review (even if they are in an approver group); one rejection is final;
 * `required` distinct approvers approve.
 */
export function applyVote(review: Review, vote: Vote, voterGroups: readonly string[], now: number, approvalValidForMs: number): VoteResult {
  if (review.state === 'pending' && review.expires_at <= now) return { ok: false, refusal: { code: 'review_not_pending', state: 'expired' }, review };
  if (review.state !== 'pending') return { ok: false, refusal: { code: 'review_not_pending', state: review.state }, review };
  const { owner } = review.requester;
  if (sameParty(vote.by, review.requester) || (owner && sameParty(vote.by, owner))) return { ok: false, refusal: { code: 'self_approval_forbidden' }, review };
  if (!review.approvers.groups.some((g) => voterGroups.includes(g))) return { ok: false, refusal: { code: 'not_an_approver', groups: review.approvers.groups }, review };
  if (review.votes.some((v) => sameParty(v.by, vote.by))) return { ok: false, refusal: { code: 'already_voted' }, review };

  const next: Review = { ...review, votes: [...review.votes, vote], updated_at: now };
  if (vote.decision === 'reject') return { ok: true, review: { ...next, state: 'rejected', decided_at: now }, transition: 'rejected' };
  if (approvalsOf(next) < next.approvers.required) return { ok: true, review: next };
  next.state = 'approved';
  next.decided_at = now;
  if (next.kind === 'access' && next.grant) next.grant = { ...next.grant, expires_at: now + next.grant.duration_ms };
  else next.expires_at = now + approvalValidForMs;
  return { ok: true, review: next, transition: 'approved' };
}

export const approvalsOf = (review: Review): number => review.votes.filter((v) => v.decision === 'approve').length;

/** pending → expired, once its time is up. */
export function expire(review: Review, now: number): Review | undefined {
  if (review.state !== 'pending' || review.expires_at > now) return undefined;
  return { ...review, state: 'expired', updated_at: now, decided_at: now };
}

/** pending → cancelled: the request waiting for it went away. */
export function cancel(review: Review, now: number): Review | undefined {
  if (review.state !== 'pending') return undefined;
  return { ...review, state: 'cancelled', updated_at: now, decided_at: now };
}

/** approved → executed: the one request the approval lets through. */
export function execute(review: Review, sessionId: string, now: number): Review | undefined {
  if (review.kind !== 'prompt' || review.state !== 'approved' || review.expires_at <= now) return undefined;
  return { ...review, state: 'executed', updated_at: now, executed_at: now, executed_session_id: sessionId };
}

/** An approved access review whose grant is still running. */
export const grantActive = (review: Review, now: number): boolean =>
  review.kind === 'access' && review.state === 'approved' && review.grant?.expires_at !== undefined && review.grant.expires_at > now;
