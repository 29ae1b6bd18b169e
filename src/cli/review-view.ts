// Reviews as the gateway's API shows them, and the words and colours the
// `reviews` and `access` commands print them with.
import type { Review, ReviewParty, ReviewState } from '../approvals/review.js';
import { paint } from './paint.js';
import { printable } from './terminal-text.js';

/** GET /v1/reviews/:id (lists leave `prompt` out). */
export type ReviewView = Omit<Review, 'fingerprint'> & {
  object: 'review';
  approvals: number;
  url: string;
  can_decide: boolean;
};

export interface ReviewList {
  object: 'list';
  data: ReviewView[];
}

export const REVIEW_STATES: readonly ReviewState[] = ['pending', 'approved', 'rejected', 'expired', 'cancelled', 'executed'];

export const reviewPath = (id: string): string => `/v1/reviews/${encodeURIComponent(id)}`;

export const who = (p: ReviewParty): string => p.email ?? p.subject;

export function stateLabel(state: ReviewState): string {
  if (state === 'approved' || state === 'executed') return paint.green(state);
  if (state === 'pending') return paint.cyan(state);
  return paint.red(state);
}

/** "2 of 2" */
export const tally = (r: ReviewView): string => `${r.approvals} of ${r.approvers.required}`;

/** A vote as one line: "approve by carol@example.com at <time>: "comment"". */
export function voteLine(v: Review['votes'][number]): string {
  const decision = v.decision === 'approve' ? paint.green('approve') : paint.red('reject ');
  return `${decision} by ${who(v.by)} at ${isoTime(v.at)}${v.comment ? `: ${printable(JSON.stringify(v.comment))}` : ''}`;
}

/** The rejecting vote, worded for the requester: "rejected by erin@example.com: "not now"". */
export function rejection(r: ReviewView): string {
  const vote = r.votes.find((v) => v.decision === 'reject');
  return vote ? `rejected by ${who(vote.by)}${vote.comment ? `: ${printable(JSON.stringify(vote.comment))}` : ''}` : 'rejected';
}

export const isoTime = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** A span of time in its largest whole unit: 45s, 12m, 3h, 2d. */
export function span(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** Rows of cells as aligned columns, the header dim; cells may carry colour. */
export function printTable(header: string[], rows: string[][]): void {
  const visible = (cell: string) => cell.replace(/\x1b\[\d+m/g, '').length;
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => visible(r[i] ?? ''))));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(widths[i]! - visible(c))))
      .join('  ')
      .trimEnd();
  console.log(paint.dim(line(header)));
  for (const row of rows) console.log(line(row));
}
