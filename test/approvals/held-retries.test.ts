// Held prompts and clients that give up: an SDK with a short timeout reads
// `approval_required` before its timeout instead of retrying into new
// reviews; a client that times out silently comes back to the same review;
// and one client leaving never cancels a review another request waits on.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import { errorOf, postJson, startHarness, type Harness } from '../helpers/harness.js';

interface ReviewView {
  id: string;
  state: string;
  prompt?: unknown;
}

describe('held prompts and short client timeouts', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      configure: (input) => {
        // Held far longer than any client here waits: only what the client says shortens the hold.
        input.approvals = { wait: '60s', keepalive_interval: '200ms', poll_interval: '100ms', cancel_abandoned_after: '2500ms' };
      },
    });
  });
  after(() => h?.close());

  async function reviewsMentioning(marker: string): Promise<ReviewView[]> {
    const carol = await h.userToken('carol');
    const list = (await (await fetch(`${h.url}/v1/reviews?limit=100`, { headers: { authorization: `Bearer ${carol}` } })).json()) as { data: ReviewView[] };
    const full = await Promise.all(list.data.map(async (r) => (await (await fetch(`${h.url}/v1/reviews/${r.id}`, { headers: { authorization: `Bearer ${carol}` } })).json()) as ReviewView));
    return full.filter((r) => JSON.stringify(r.prompt).includes(marker));
  }

  async function waitForReview(marker: string): Promise<ReviewView> {
    for (let i = 0; i < 200; i++) {
      const [review] = await reviewsMentioning(marker);
      if (review) return review;
      await sleep(25);
    }
    throw new Error(`no review mentions ${marker}`);
  }

  const approve = async (id: string) => postJson(`${h.url}/v1/reviews/${id}/approve`, await h.userToken('carol'), { comment: 'fine' });

  /** Sends the held prompt three times; returns the errors the SDK raised and the reviews opened. */
  async function threeAttempts(client: OpenAI, marker: string, options: OpenAI.RequestOptions = {}): Promise<{ errors: unknown[]; reviews: ReviewView[] }> {
    const body = { model: 'demo-chat', messages: [{ role: 'user' as const, content: `nightingale ${marker}` }] };
    const errors: unknown[] = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      errors.push(await client.chat.completions.create(body, options).then(() => assert.fail('an unapproved prompt passed'), (e: unknown) => e));
    }
    return { errors, reviews: await reviewsMentioning(marker) };
  }

  function assertApprovalRequired(errors: unknown[]): string {
    const reviewIds = new Set<string>();
    for (const err of errors) {
      // A timeout would surface as APIConnectionTimeoutError after the SDK's own retries.
      assert.ok(err instanceof OpenAI.PermissionDeniedError, `answered before the client's timeout, not ${String(err)}`);
      assert.equal(err.code, 'approval_required');
      assert.equal(err.headers.get('retry-after'), '30');
      assert.match(err.message, /A person is deciding: send the identical request again to keep waiting on the same review/);
      reviewIds.add((err.error as { review_id: string }).review_id);
    }
    assert.equal(reviewIds.size, 1, 'every retry found the same review');
    return [...reviewIds][0]!;
  }

  test('the official SDK with a 3 s request timeout (X-Stainless-Timeout): approval_required before it, one review however many retries', async () => {
    // maxRetries 2: had the SDK timed out, it would have retried twice on its own.
    const client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: await h.userToken('alice'), maxRetries: 2 });
    const marker = `short-timeout-${Date.now()}`;
    const { errors, reviews } = await threeAttempts(client, marker, { timeout: 3_000 });
    const reviewId = assertApprovalRequired(errors);
    assert.deepEqual(reviews.map((r) => r.state), ['pending'], 'one review, still pending');

    assert.equal((await approve(reviewId)).status, 200);
    const passed = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: `nightingale ${marker}` }] });
    assert.ok(passed.choices[0]?.message.content, 'the identical request passes once approved');
  });

  test('a client-wide SDK timeout (which the SDK does not announce) with `Prefer: wait=N` as a default header', async () => {
    const client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: await h.userToken('alice'), timeout: 3_000, maxRetries: 2, defaultHeaders: { prefer: 'wait=3' } });
    const { errors, reviews } = await threeAttempts(client, `prefer-wait-${Date.now()}`);
    assertApprovalRequired(errors);
    assert.equal(reviews.length, 1);
  });

  test('an SDK that times out without saying so retries on its own into the same review', async () => {
    const client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: await h.userToken('alice'), timeout: 400, maxRetries: 2 });
    const { errors, reviews } = await threeAttempts(client, `sdk-silent-${Date.now()}`);
    for (const err of errors) assert.ok(err instanceof OpenAI.APIConnectionTimeoutError, String(err));
    // Three calls, each tried three times by the SDK: nine held requests, one review.
    assert.deepEqual(reviews.map((r) => r.state), ['pending']);
  });

  test('Prefer: wait=N shortens the hold for clients without an SDK header', async () => {
    const marker = `prefer-wait-${Date.now()}`;
    // The client gives up after 10 s; the gateway holds for 60 s unless it honours `wait=1`.
    const response = await fetch(`${h.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await h.userToken('alice')}`, 'content-type': 'application/json', prefer: 'wait=1' },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: `nightingale ${marker}` }] }),
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(response.status, 403);
    assert.equal((await errorOf(response)).code, 'approval_required');
  });

  test('a client that times out silently retries into the same review, which stays pending', async () => {
    const token = await h.userToken('alice');
    const marker = `silent-timeout-${Date.now()}`;
    const body = { model: 'demo-chat', messages: [{ role: 'user', content: `nightingale ${marker}` }] };
    for (let attempt = 0; attempt < 3; attempt++) {
      const gaveUp = await fetch(`${h.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(400),
      }).then(
        () => false,
        () => true,
      );
      assert.ok(gaveUp, 'the client timed out while held');
    }
    const reviews = await reviewsMentioning(marker);
    assert.equal(reviews.length, 1, 'one review for all three attempts');
    await sleep(3_000);
    assert.equal((await reviewsMentioning(marker))[0]?.state, 'cancelled', 'cancelled once nobody came back within cancel_abandoned_after');
  });

  test("one client's disconnect does not cancel another's wait for the same review", async () => {
    const token = await h.userToken('alice');
    const marker = `two-waiters-${Date.now()}`;
    const body = JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: `nightingale ${marker}` }] });
    const leaving = new AbortController();
    const first = fetch(`${h.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body, signal: leaving.signal }).catch(() => undefined);
    const review = await waitForReview(marker);
    const second = postJson(`${h.url}/v1/chat/completions`, token, body);
    // The second request joins the review before the first leaves.
    for (let i = 0; i < 200 && h.gateway.services.approvals!.waitingOn(review.id) < 2; i++) await sleep(25);
    assert.equal(h.gateway.services.approvals!.waitingOn(review.id), 2, 'both requests wait on one review');
    leaving.abort();
    await first;
    // Longer than cancel_abandoned_after: a cancellation would have happened by now.
    await sleep(3_000);
    assert.equal((await reviewsMentioning(marker))[0]?.state, 'pending', 'the review still stands for the request waiting on it');
    assert.equal((await approve(review.id)).status, 200);
    const response = await second;
    assert.equal(response.status, 200, 'the remaining client gets its answer');
  });
});
