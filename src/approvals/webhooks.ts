// Tells approvers a review needs them (and, if configured, how it ended).
// Two shapes: a Slack incoming-webhook message with a link to the review,
// and a generic JSON event signed like Stripe's: `X-Modelgate-Signature:
// t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, so a receiver can
// check both origin and freshness. Prompts are never sent: only who asked,
// for what, which rule fired and where to decide. Delivery is retried in the
// background and never holds up a request.
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { request } from 'undici';
import type { Logger } from '../ops/logger.js';
import type { ReviewEventName, WebhookConfig } from './config.js';
import { approvalsOf, type Review, type ReviewParty } from './review.js';

export const SIGNATURE_HEADER = 'x-modelgate-signature';
const RETRY_DELAYS_MS = [500, 2_000, 8_000];

export interface ReviewEvent {
  event: ReviewEventName;
  review: Review;
  /** Who caused it (an approver), when a person did. */
  by?: ReviewParty;
  comment?: string;
  reviewUrl: string;
}

export class WebhookNotifier {
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly hooks: readonly WebhookConfig[],
    private readonly log: Logger,
    private readonly onDelivery: (outcome: 'delivered' | 'failed') => void = () => {},
  ) {}

  notify(event: ReviewEvent): void {
    for (const hook of this.hooks) {
      if (!hook.events.includes(event.event)) continue;
      const delivery = this.deliver(hook, event).finally(() => this.inFlight.delete(delivery));
      this.inFlight.add(delivery);
    }
  }

  /** Waits for deliveries under way (shutdown, tests). */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private async deliver(hook: WebhookConfig, event: ReviewEvent): Promise<void> {
    const body = JSON.stringify(hook.format === 'slack' ? slackMessage(event) : jsonEvent(event));
    const deliveryId = randomUUID();
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': 'modelgate-webhooks',
        'x-modelgate-event': `review.${event.event}`,
        'x-modelgate-delivery': deliveryId,
      };
      if (hook.secret !== undefined) headers[SIGNATURE_HEADER] = signPayload(hook.secret, body);
      try {
        const response = await request(hook.url, { method: 'POST', headers, body, headersTimeout: hook.timeout, bodyTimeout: hook.timeout });
        await response.body.dump();
        if (response.statusCode >= 200 && response.statusCode < 300) {
          this.onDelivery('delivered');
          return;
        }
        // A client error other than throttling will not get better by retrying.
        if (response.statusCode < 500 && response.statusCode !== 429) throw new Error(`HTTP ${response.statusCode}`);
        if (attempt >= RETRY_DELAYS_MS.length) throw new Error(`HTTP ${response.statusCode}`);
      } catch (err) {
        if (attempt >= RETRY_DELAYS_MS.length || (err as Error).message.startsWith('HTTP 4')) {
          this.onDelivery('failed');
          this.log.warn({ webhook: new URL(hook.url).origin, review: event.review.id, event: event.event, err: (err as Error).message }, 'review webhook not delivered');
          return;
        }
      }
      await new Promise((r) => setTimeout(r, RETRY_DELAYS_MS[attempt]).unref());
    }
  }
}

/** `t=<unix seconds>,v1=<hex>`; the signed string is `<t>.<body>`. */
export function signPayload(secret: string, body: string, nowSeconds = Math.floor(Date.now() / 1000)): string {
  const mac = createHmac('sha256', secret).update(`${nowSeconds}.${body}`).digest('hex');
  return `t=${nowSeconds},v1=${mac}`;
}

/** What a receiver runs: checks the HMAC in constant time and refuses stale deliveries (replays). */
export function verifySignature(secret: string, body: string, header: string | undefined, toleranceSeconds = 300, nowSeconds = Math.floor(Date.now() / 1000)): boolean {
  if (!header) return false;
  const parts = new Map(header.split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(parts.get('t'));
  const given = parts.get('v1');
  if (!Number.isInteger(t) || !given || Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(`${t}.${body}`).digest('hex'));
  const actual = Buffer.from(given);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** The review as notifications describe it: everything but the prompt. */
function reviewSummary(review: Review) {
  const { prompt: _prompt, fingerprint: _fingerprint, ...rest } = review;
  return rest;
}

function jsonEvent(e: ReviewEvent) {
  return {
    type: `review.${e.event}`,
    created_at: new Date().toISOString(),
    review_url: e.reviewUrl,
    ...(e.by && { by: e.by }),
    ...(e.comment !== undefined && { comment: e.comment }),
    review: reviewSummary(e.review),
  };
}

function slackMessage(e: ReviewEvent) {
  const r = e.review;
  const who = r.requester.email ?? r.requester.subject;
  const what = r.kind === 'access' ? `access to connection *${r.connection}* for ${formatDuration(r.grant?.duration_ms ?? 0)}` : `a prompt to *${r.model ?? r.connection}*`;
  const headline =
    e.event === 'created'
      ? `:raised_hand: ${who} asks for ${what}: approval needed`
      : `Review ${r.id} ${e.event}${e.by ? ` by ${e.by.email ?? e.by.subject}` : ''}`;
  const fields = [
    `*Review:* <${e.reviewUrl}|${r.id}>`,
    `*Requester:* ${who} (${r.requester.groups.join(', ') || 'no groups'})`,
    `*Why:* ${r.rule ? `rule \`${r.rule}\`: ` : ''}${r.reason}`,
    `*Approvals:* ${approvalsOf(r)} of ${r.approvers.required} from ${r.approvers.groups.join(', ')}`,
    ...(e.comment ? [`*Comment:* ${e.comment}`] : []),
  ];
  return {
    text: `${headline}. ${e.reviewUrl}`,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: headline } },
      { type: 'section', text: { type: 'mrkdwn', text: fields.join('\n') } },
      ...(e.event === 'created' ? [{ type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: 'Open review' }, url: e.reviewUrl }] }] : []),
    ],
  };
}

function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 1000)}s`;
}
