// The `approvals:` configuration section: who approves, how long a request
// is held, how long a review lives, and where notifications go. Reviews are
// stored in the `storage:` database, which every gateway instance shares.
import { z } from 'zod';
import { duration, httpUrl } from '../config/fields.js';

const groups = z.array(z.string().min(1)).min(1);

export const REVIEW_EVENTS = ['created', 'approved', 'rejected', 'expired', 'cancelled', 'executed'] as const;

const webhook = z
  .object({
    url: httpUrl,
    /** `slack`: a Slack incoming-webhook message with a link; `json`: the review event, signed. */
    format: z.enum(['slack', 'json']).default('json'),
    /** HMAC-SHA256 key for the `X-Modelgate-Signature` header, e.g. "${MODELGATE_WEBHOOK_SECRET}". */
    secret: z.string().min(16, 'use at least 16 characters (e.g. `openssl rand -hex 32`)').optional(),
    events: z.array(z.enum(REVIEW_EVENTS)).min(1).default(['created']),
    timeout: duration.prefault('5s'),
  })
  .strict()
  .superRefine((hook, ctx) => {
    if (hook.format === 'json' && hook.secret === undefined) {
      ctx.addIssue({ code: 'custom', path: ['secret'], message: 'a `json` webhook must be signed: set `secret`' });
    }
  });

export const approvalsSchema = z
  .object({
    /** Groups whose members may approve a rule's reviews, unless the rule names its own `approvers`. */
    approvers: groups.default(['approvers']),
    /** Distinct approvers needed, unless the rule says otherwise. */
    required_approvals: z.number().int().min(1).max(10).default(1),
    /**
     * How long the gateway holds a request open waiting for a decision, at most. A client that says how long it
     * waits (`X-Stainless-Timeout`, sent by the OpenAI SDKs, or `Prefer: wait=N`) is answered before that instead.
     */
    wait: duration.prefault('60s'),
    /** A held request answers `approval_required` this long before the client's own timeout, so the client reads it. */
    answer_before_client_timeout: duration.prefault('1s'),
    /**
     * A review whose client went away is cancelled after this if no identical request has come back to wait on it,
     * so a client's retry after its own timeout joins the same review rather than opening a new one.
     */
    cancel_abandoned_after: duration.prefault('30s'),
    /** While a request is held, an HTTP `102 Processing` is sent this often so idle-timeouts do not cut it; 0 turns it off. */
    keepalive_interval: duration.prefault('15s'),
    /** A pending review no one decided expires after this. */
    expires_after: duration.prefault('1h'),
    /** After approval, the identical request must be retried within this (once) if the original stopped waiting. */
    approval_valid_for: duration.prefault('15m'),
    /** Link in errors and notifications; `{id}` is replaced. Default: the console review page, <server.public_url>/ui/reviews/{id}. */
    review_url: z.string().includes('{id}', { message: 'must contain {id}' }).optional(),
    /** Pending reviews one requester may have open at once; more are refused (429), so no one can flood approvers. */
    max_pending_per_requester: z.number().int().min(1).max(1000).default(10),
    /** How often held requests re-read their reviews when PostgreSQL notifications are unavailable (and as a safety net). */
    poll_interval: duration.prefault('1s'),
    access_requests: z
      .object({
        approvers: groups.default(['approvers']),
        required_approvals: z.number().int().min(1).max(10).default(1),
        /** Longest grant anyone may ask for. */
        max_duration: duration.prefault('8h'),
        /** Connections that may be asked for, or "*". */
        connections: z.array(z.string().min(1)).min(1).default(['*']),
      })
      .strict()
      .prefault({}),
    webhooks: z.array(webhook).default([]),
    /** Decided reviews are deleted this long after their last change, or kept `forever`. */
    retention: z.union([z.literal('forever').transform(() => null), duration]).prefault('90d'),
  })
  .strict()
  .superRefine((a, ctx) => {
    if (a.approval_valid_for <= 0) ctx.addIssue({ code: 'custom', path: ['approval_valid_for'], message: 'must be longer than 0' });
    if (a.poll_interval < 50) ctx.addIssue({ code: 'custom', path: ['poll_interval'], message: 'use at least 50ms' });
  })
  .prefault({});

export type ApprovalsConfig = z.output<typeof approvalsSchema>;
export type WebhookConfig = ApprovalsConfig['webhooks'][number];
export type ReviewEventName = (typeof REVIEW_EVENTS)[number];
