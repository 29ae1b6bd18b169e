// Review notifications: a Slack-compatible message with a link, and a
// generic JSON event whose HMAC signature a receiver verifies; both
// delivered for real by the gateway to a local receiver. Deliveries retry
// on 5xx and stop on 4xx.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { signPayload, verifySignature, WebhookNotifier, SIGNATURE_HEADER } from '../../src/approvals/webhooks.js';
import type { Review } from '../../src/approvals/review.js';
import { createLogger } from '../../src/ops/logger.js';
import { postJson, startHarness, type Harness } from '../helpers/harness.js';

const SECRET = 'whsec-test-0123456789abcdef';

interface Delivery {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

async function receiver(status: (path: string, attempt: number) => number = () => 204): Promise<{ url: string; deliveries: Delivery[]; close(): Promise<void> }> {
  const deliveries: Delivery[] = [];
  const attempts = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      const attempt = (attempts.get(path) ?? 0) + 1;
      attempts.set(path, attempt);
      deliveries.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(status(path, attempt)).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    deliveries,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function until<T>(what: string, probe: () => T | undefined): Promise<T> {
  for (let i = 0; i < 400; i++) {
    const value = probe();
    if (value !== undefined) return value;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('review webhooks through the gateway', () => {
  let h: Harness;
  let hooks: Awaited<ReturnType<typeof receiver>>;

  before(async () => {
    hooks = await receiver();
    h = await startHarness({
      configure: (input) => {
        input.approvals = {
          wait: '5s',
          poll_interval: '100ms',
          review_url: 'https://console.example.com/reviews/{id}',
          webhooks: [
            { url: `${hooks.url}/slack`, format: 'slack', events: ['created'] },
            { url: `${hooks.url}/json`, format: 'json', secret: SECRET, events: ['created', 'approved'] },
          ],
        };
      },
    });
  });
  after(async () => {
    await h?.close();
    await hooks?.close();
  });

  test('a held prompt notifies Slack with a link and signs the JSON event; the prompt is never sent', async () => {
    const held = postJson(`${h.url}/v1/chat/completions`, await h.userToken('alice'), { model: 'demo-chat', messages: [{ role: 'user', content: 'nightingale launch date?' }] });
    const slack = await until('the Slack message', () => hooks.deliveries.find((d) => d.path === '/slack'));
    const created = await until('the JSON event', () => hooks.deliveries.find((d) => d.path === '/json'));

    const message = JSON.parse(slack.body) as { text: string; blocks: unknown[] };
    assert.match(message.text, /alice@example\.com asks for a prompt to \*demo-chat\*/);
    const reviewId = /reviews\/(rev_[0-9a-z]+)/.exec(message.text)?.[1];
    assert.ok(reviewId, `the message links to the review: ${message.text}`);
    assert.ok(JSON.stringify(message.blocks).includes(`https://console.example.com/reviews/${reviewId}`), 'a button to the review');

    assert.equal(created.headers['x-modelgate-event'], 'review.created');
    assert.ok(verifySignature(SECRET, created.body, created.headers[SIGNATURE_HEADER] as string), 'the signature verifies with the shared secret');
    assert.equal(verifySignature('another-secret-0123456789', created.body, created.headers[SIGNATURE_HEADER] as string), false, 'and not with another');
    assert.equal(verifySignature(SECRET, created.body.replace('alice', 'mallory'), created.headers[SIGNATURE_HEADER] as string), false, 'a tampered body fails');
    const event = JSON.parse(created.body) as { type: string; review: Review; review_url: string };
    assert.equal(event.type, 'review.created');
    assert.equal(event.review.id, reviewId);
    assert.equal(event.review_url, `https://console.example.com/reviews/${reviewId}`);
    for (const d of [slack, created]) assert.ok(!d.body.includes('launch date'), 'notifications carry no prompt text');

    const carol = await h.userToken('carol');
    assert.equal((await postJson(`${h.url}/v1/reviews/${reviewId}/approve`, carol, { comment: 'go' })).status, 200);
    assert.equal((await held).status, 200);
    const approved = await until('the approved event', () => hooks.deliveries.find((d) => d.headers['x-modelgate-event'] === 'review.approved'));
    const body = JSON.parse(approved.body) as { by: { subject: string }; comment: string };
    assert.equal(body.by.subject, 'carol');
    assert.equal(body.comment, 'go');
    assert.equal(hooks.deliveries.filter((d) => d.path === '/slack').length, 1, 'Slack only subscribed to created');
  });
});

describe('webhook signatures and delivery', () => {
  const review = {
    id: 'rev_00000000000000000000000000',
    kind: 'prompt',
    state: 'pending',
    created_at: 0,
    updated_at: 0,
    expires_at: 1,
    requester: { issuer: 'https://idp', subject: 'alice', groups: [] },
    connection: 'demo',
    reason: 'test',
    approvers: { groups: ['approvers'], required: 1 },
    votes: [],
  } satisfies Review;

  test('stale signatures are refused (replay), malformed headers too', () => {
    const body = '{"a":1}';
    const now = 1_800_000_000;
    assert.equal(verifySignature(SECRET, body, signPayload(SECRET, body, now), 300, now + 60), true);
    assert.equal(verifySignature(SECRET, body, signPayload(SECRET, body, now), 300, now + 301), false, 'older than the tolerance');
    for (const header of [undefined, '', 'v1=abc', 't=abc,v1=00', `t=${now}`, `t=${now},v1=${'0'.repeat(64)}`]) {
      assert.equal(verifySignature(SECRET, body, header, 300, now), false, `header ${String(header)}`);
    }
  });

  test('5xx is retried, 4xx is not', async () => {
    const hooks = await receiver((path, attempt) => (path === '/flaky' ? (attempt < 2 ? 503 : 200) : 400));
    const outcomes: string[] = [];
    const notifier = new WebhookNotifier(
      [
        { url: `${hooks.url}/flaky`, format: 'json', secret: SECRET, events: ['created'], timeout: 2000 },
        { url: `${hooks.url}/gone`, format: 'json', secret: SECRET, events: ['created'], timeout: 2000 },
      ],
      createLogger('silent'),
      (o) => outcomes.push(o),
    );
    notifier.notify({ event: 'created', review, reviewUrl: 'https://x/reviews/1' });
    await notifier.drain();
    await hooks.close();
    assert.deepEqual(hooks.deliveries.map((d) => d.path).sort(), ['/flaky', '/flaky', '/gone']);
    assert.deepEqual(outcomes.sort(), ['delivered', 'failed']);
    const [first, second] = hooks.deliveries.filter((d) => d.path === '/flaky');
    assert.equal(first!.headers['x-modelgate-delivery'], second!.headers['x-modelgate-delivery'], 'a retry keeps its delivery ID, so receivers can deduplicate');
  });
});
