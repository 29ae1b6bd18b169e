// Just-in-time approval end to end, on SQLite and on PostgreSQL: the
// official SDK's request is held while a real approver (a dev IdP identity)
// decides through the reviews API, and the SDK gets either the model's
// answer or a clear refusal.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import { postJson, startHarness, errorOf, type Harness } from '../helpers/harness.js';
import { verify } from '../../src/audit/verify.js';
import { STORE_FIXTURES, type StoreFixture } from '../audit/fixtures.js';
import { withTwoPersonRule } from '../helpers/approvals.js';

const WAIT = '3s';

/** The SDK's error for a refused request. */
async function refusalOf(call: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const err = await call.then(
    () => assert.fail('the request should have been refused'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof OpenAI.APIError, `an API error, not ${String(err)}`);
  return err;
}

interface ReviewView {
  id: string;
  session_id?: string;
  executed_session_id?: string;
  state: string;
  kind: string;
  prompt?: unknown;
  reason: string;
  rule?: string;
  approvals: number;
  votes: Array<{ decision: string; by: { subject: string }; comment?: string }>;
  requester: { subject: string };
}

for (const factory of STORE_FIXTURES) {
  describe(`approvals through the gateway on ${factory.driver}`, () => {
    let fx: StoreFixture;
    let h: Harness;
    const sdk = async (user: string) => new OpenAI({ baseURL: `${h.url}/v1`, apiKey: await h.userToken(user), maxRetries: 0 });

    before(async () => {
      fx = await factory.create();
      h = await startHarness({
        configure: (input) => {
          input.storage = fx.storage as typeof input.storage;
          input.approvals = { wait: WAIT, keepalive_interval: '200ms', poll_interval: '100ms', approval_valid_for: '1m', cancel_abandoned_after: '300ms' };
          input.access = [...(input.access ?? []), { groups: ['approvers'], connections: ['demo'] }];
          input.guardrails = withTwoPersonRule(input.guardrails);
        },
      });
    });
    after(async () => {
      await h?.close();
      await fx?.cleanup();
    });

    async function api(user: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Response> {
      const token = await h.userToken(user);
      if (method === 'GET') return fetch(`${h.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
      return postJson(`${h.url}${path}`, token, body ?? {});
    }

    /** The pending review whose prompt mentions `marker`, as an approver sees it. */
    async function pendingReview(marker: string): Promise<ReviewView> {
      for (let i = 0; i < 200; i++) {
        const list = (await (await api('carol', 'GET', '/v1/reviews?state=pending')).json()) as { data: ReviewView[] };
        for (const r of list.data) {
          const full = (await (await api('carol', 'GET', `/v1/reviews/${r.id}`)).json()) as ReviewView;
          if (JSON.stringify(full.prompt).includes(marker)) return full;
        }
        await sleep(25);
      }
      throw new Error(`no pending review mentions ${marker}`);
    }

    /** Every review (any state) whose prompt mentions `marker` (an erased review has no prompt). */
    async function reviewsMentioning(marker: string): Promise<ReviewView[]> {
      const list = (await (await api('carol', 'GET', '/v1/reviews')).json()) as { data: ReviewView[] };
      const full = await Promise.all(list.data.map(async (r) => (await (await api('carol', 'GET', `/v1/reviews/${r.id}`)).json()) as ReviewView));
      return full.filter((r) => JSON.stringify(r.prompt ?? null).includes(marker));
    }

    async function decide(user: string, id: string, action: 'approve' | 'reject', comment?: string): Promise<Response> {
      return api(user, 'POST', `/v1/reviews/${id}/${action}`, comment === undefined ? {} : { comment });
    }

    test('non-streaming: approved while waiting, the SDK gets the answer and the session records who approved', async () => {
      const client = await sdk('alice');
      const marker = `ns-${Date.now()}`;
      const pending = client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: `nightingale status ${marker}` }] });
      const review = await pendingReview(marker);
      assert.equal(review.rule, 'codename-review');
      assert.equal(review.requester.subject, 'alice');
      assert.match(review.reason, /codename-review/);
      const decided = await decide('carol', review.id, 'approve', 'fine for the weekly report');
      assert.equal(decided.status, 200, 'carol may approve');
      const completion = await pending;
      assert.ok(completion.choices[0]?.message.content, 'a completion came back');

      const after = (await (await api('alice', 'GET', `/v1/reviews/${review.id}`)).json()) as ReviewView;
      assert.equal(after.state, 'executed');
      const session = await h.gateway.services.audit!.archive.show(after.executed_session_id!);
      const outcomes = session!.approvals.map((a) => `${a.outcome}:${a.approver}`);
      assert.deepEqual(outcomes, ['created:gateway', 'approved:carol@example.com', 'executed:gateway']);
      assert.equal(session!.approvals[1]!.comment_text, 'fine for the weekly report');
      assert.equal(session!.session.approved, true);
    });

    test('streaming: held with 102 keep-alives, approved, and the SDK parses the stream', async () => {
      const client = await sdk('alice');
      const marker = `st-${Date.now()}`;
      const stream = client.chat.completions.create({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: `nightingale ${marker}` }] });
      const review = await pendingReview(marker);
      await sleep(700); // several keep-alives go out before the decision
      assert.equal((await decide('carol', review.id, 'approve')).status, 200);
      let text = '';
      for await (const chunk of await stream) text += chunk.choices[0]?.delta?.content ?? '';
      assert.ok(text.length > 0, 'streamed text arrived');
    });

    test('Ollama clients are held the same way: approved, the NDJSON stream follows', async () => {
      const marker = `ollama-${Date.now()}`;
      const held = postJson(`${h.url}/api/chat`, await h.userToken('alice'), { model: 'demo-chat', messages: [{ role: 'user', content: `nightingale ${marker}` }] });
      const review = await pendingReview(marker);
      assert.equal((await decide('carol', review.id, 'approve')).status, 200);
      const response = await held;
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /application\/x-ndjson/);
      const lines = (await response.text()).trim().split('\n').map((l) => JSON.parse(l) as { done: boolean });
      assert.equal(lines.at(-1)?.done, true, 'a complete NDJSON stream');
    });

    test('approved after the wait ran out: the identical retry passes once, a second is held again', async () => {
      const client = await sdk('alice');
      const marker = `late-${Date.now()}`;
      const body = { model: 'demo-chat', messages: [{ role: 'user' as const, content: `nightingale ${marker}` }] };
      const first = await client.chat.completions.create(body).then(
        () => assert.fail('should not pass unapproved'),
        (err: unknown) => err,
      );
      assert.ok(first instanceof OpenAI.PermissionDeniedError, `a 403 (${String(first)})`);
      assert.equal(first.code, 'approval_required');
      const errorBody = first.error as { review_id: string; review_url: string };
      assert.match(errorBody.review_id, /^rev_/);
      assert.ok(errorBody.review_url.endsWith(`/ui/reviews/${errorBody.review_id}`), 'a link to the console review page');
      assert.equal(first.headers.get('retry-after'), '30');
      assert.match(first.message, /send the identical request again/);

      assert.equal((await decide('carol', errorBody.review_id, 'approve', 'ok')).status, 200);
      // Retried from her browser sign-in: a gateway-issued token for the same person.
      const browserToken = await h.gateway.services.identity.gatewayTokens.mint({ subject: 'alice', groups: ['engineering', 'ml-platform'], origin: h.idp.issuer });
      const retried = await new OpenAI({ baseURL: `${h.url}/v1`, apiKey: browserToken.token, maxRetries: 0 }).chat.completions.create(body);
      assert.ok(retried.choices[0]?.message.content, 'the identical retry passes, from another of her tokens');

      // Keys in another order are still the identical request, so the approval, already used, does not pass it again.
      const again = await postJson(`${h.url}/v1/chat/completions`, await h.userToken('alice'), `{"messages":${JSON.stringify(body.messages)},"model":"demo-chat"}`);
      assert.equal(again.status, 403);
      const error = await errorOf(again);
      assert.equal(error.code, 'approval_required');
      assert.notEqual((error as unknown as { review_id: string }).review_id, errorBody.review_id, 'a new review');

      // The raising session holds every change, including those made after it ended; the retry's records that it used the approval.
      const review = (await (await api('alice', 'GET', `/v1/reviews/${errorBody.review_id}`)).json()) as ReviewView;
      const archive = h.gateway.services.audit!.archive;
      const raising = await archive.show(review.session_id!);
      assert.deepEqual(raising!.approvals.map((a) => `${a.outcome}:${a.approver}`), ['created:gateway', 'approved:carol@example.com', 'executed:gateway']);
      assert.equal(raising!.approvals[1]!.comment_text, 'ok', 'with the approver\'s comment');
      assert.equal(raising!.session.approved, true);
      const retry = await archive.show(review.executed_session_id!);
      assert.deepEqual(retry!.approvals.map((a) => `${a.outcome}:${a.review_id}`), [`executed:${review.id}`]);
      const verified = await verify(archive.store);
      assert.deepEqual(verified.problems, [], 'the chain verifies with changes appended by approvers');
    });

    test('a changed prompt does not ride on an approval', async () => {
      const marker = `changed-${Date.now()}`;
      const token = await h.userToken('alice');
      const held = postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content: `nightingale ${marker}` }] });
      const review = await pendingReview(marker);
      await decide('carol', review.id, 'approve');
      assert.equal((await held).status, 200);
      const other = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content: `nightingale ${marker} and more` }] });
      assert.equal((await errorOf(other)).code, 'approval_required');
    });

    test('rejection while waiting is final, with the approver\'s comment', async () => {
      const marker = `rej-${Date.now()}`;
      const client = await sdk('alice');
      const body = { model: 'demo-chat', messages: [{ role: 'user' as const, content: `nightingale ${marker}` }] };
      const held = refusalOf(client.chat.completions.create(body));
      const review = await pendingReview(marker);
      assert.equal((await decide('erin', review.id, 'reject', 'not outside the project team')).status, 200);
      const error = await held;
      assert.equal(error.status, 403);
      assert.equal(error.code, 'approval_rejected');
      assert.match(error.message, /erin@example\.com: "not outside the project team"/);

      const retry = await refusalOf(client.chat.completions.create(body));
      assert.equal(retry.code, 'approval_rejected', 'the identical retry is refused with the same rejection');
      assert.equal((await reviewsMentioning(marker)).length, 1, 'and opens no new review');
      assert.equal((await decide('carol', review.id, 'approve')).status, 409, 'a rejected review cannot be approved');
    });

    test('the requester cannot approve their own review, even as an approver', async () => {
      const marker = `self-${Date.now()}`;
      const held = (await sdk('carol')).chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: `nightingale ${marker}` }] });
      const review = await pendingReview(marker);
      const self = await decide('carol', review.id, 'approve');
      assert.equal(self.status, 403);
      assert.equal((await errorOf(self)).code, 'self_approval_forbidden');
      const selfReject = await decide('carol', review.id, 'reject');
      assert.equal((await errorOf(selfReject)).code, 'self_approval_forbidden', 'nor decide it the other way');
      // Signed in through the browser instead: a gateway-issued token for the same person.
      const browserToken = await h.gateway.services.identity.gatewayTokens.mint({ subject: 'carol', groups: ['auditors', 'approvers'], origin: h.idp.issuer });
      const viaBrowser = await postJson(`${h.url}/v1/reviews/${review.id}/approve`, browserToken.token, {});
      assert.equal((await errorOf(viaBrowser)).code, 'self_approval_forbidden', 'nor through a browser session');
      assert.equal((await decide('erin', review.id, 'approve')).status, 200);
      assert.ok((await held).choices[0]?.message.content, 'released once another approver decided');
    });

    test('people outside the approver groups cannot decide', async () => {
      const marker = `outsider-${Date.now()}`;
      const held = postJson(`${h.url}/v1/chat/completions`, await h.userToken('alice'), { model: 'demo-chat', messages: [{ role: 'user', content: `nightingale ${marker}` }] });
      const review = await pendingReview(marker);
      const bob = await decide('bob', review.id, 'approve');
      assert.equal(bob.status, 404, 'bob may not even see it');
      const forged = await postJson(`${h.url}/v1/reviews/${review.id}/approve`, undefined, {});
      assert.equal(forged.status, 401, 'no token, no decision');
      await decide('carol', review.id, 'reject', 'cleanup');
      assert.equal((await held).status, 403);
    });

    test('two approvals required: one is not enough, the same approver twice is not two', async () => {
      const marker = `two-${Date.now()}`;
      let settled = false;
      const held = (await sdk('alice')).chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: `the merger ${marker}` }] }).finally(() => {
        settled = true;
      });
      const review = await pendingReview(marker);
      assert.equal(review.rule, 'two-person-rule');
      const one = await decide('carol', review.id, 'approve', 'first');
      assert.equal(((await one.json()) as ReviewView).state, 'pending', 'one approval of two');
      const twice = await decide('carol', review.id, 'approve');
      assert.equal((await errorOf(twice)).code, 'already_voted');
      await sleep(300);
      assert.equal(settled, false, 'still held after one approval');
      const two = await decide('erin', review.id, 'approve', 'second');
      assert.equal(((await two.json()) as ReviewView).state, 'approved');
      assert.ok((await held).choices[0]?.message.content, 'released after the second approval');
    });

    test('a client that disconnects and does not come back has its review cancelled', async () => {
      const marker = `gone-${Date.now()}`;
      const controller = new AbortController();
      const held = (await sdk('alice')).chat.completions
        .create({ model: 'demo-chat', messages: [{ role: 'user', content: `nightingale ${marker}` }] }, { signal: controller.signal })
        .catch((err: unknown) => err);
      const review = await pendingReview(marker);
      controller.abort();
      await held;
      let state = 'pending';
      for (let i = 0; i < 100 && state === 'pending'; i++) {
        await sleep(25);
        state = ((await (await api('carol', 'GET', `/v1/reviews/${review.id}`)).json()) as ReviewView).state;
      }
      assert.equal(state, 'cancelled');
      assert.equal((await errorOf(await decide('carol', review.id, 'approve'))).code, 'review_not_pending');
      const session = await h.gateway.services.audit!.archive.show(review.session_id!);
      assert.deepEqual(session!.approvals.map((a) => a.outcome), ['created', 'cancelled'], 'the session records the cancellation');
    });

    test('approvers see the prompt with detected entities masked', async () => {
      const marker = `masked-${Date.now()}`;
      const held = postJson(`${h.url}/v1/chat/completions`, await h.userToken('alice'), {
        model: 'demo-chat',
        messages: [{ role: 'user', content: `nightingale ${marker}` }],
      });
      const review = await pendingReview(marker);
      assert.ok(!JSON.stringify(review.prompt).includes('nightingale'), `the codename is masked for approvers: ${JSON.stringify(review.prompt)}`);
      await decide('carol', review.id, 'reject');
      await held;
    });

    test('a just-in-time grant opens access to a connection and closes it when it runs out', async () => {
      const bob = await h.userToken('bob');
      const chat = () => postJson(`${h.url}/v1/chat/completions`, bob, { model: 'demo-chat', messages: [{ role: 'user', content: 'hello' }] });
      const before = await chat();
      assert.equal(before.status, 403);
      assert.match((await errorOf(before)).message, /modelgate access request --connection demo/);

      const requested = await api('bob', 'POST', '/v1/access/requests', { connection: 'demo', duration: '2s', reason: 'incident 42: need chat for triage' });
      assert.equal(requested.status, 201);
      const grant = (await requested.json()) as ReviewView;
      assert.equal(grant.kind, 'access');
      assert.equal((await errorOf(await decide('bob', grant.id, 'approve'))).code, 'self_approval_forbidden');
      assert.equal((await decide('carol', grant.id, 'approve', 'for the incident')).status, 200);

      const during = await chat();
      assert.equal(during.status, 200, 'the grant opens access');
      const models = (await (await api('bob', 'GET', '/v1/models')).json()) as { data: Array<{ id: string }> };
      assert.ok(models.data.some((m) => m.id === 'demo-chat'), 'the granted models are listed');
      const grants = (await (await api('bob', 'GET', '/v1/access/grants')).json()) as { data: ReviewView[] };
      assert.deepEqual(grants.data.map((g) => g.id), [grant.id]);

      await sleep(2_100);
      assert.equal((await chat()).status, 403, 'the grant closes when it runs out');
    });

    test('access requests are validated', async () => {
      const cases: Array<[unknown, number, string]> = [
        [{ connection: 'nope', duration: '1h', reason: 'x' }, 404, 'connection_not_found'],
        [{ connection: 'demo', duration: '1h' }, 400, 'invalid_body'],
        [{ connection: 'demo', duration: '9h', reason: 'x' }, 400, 'invalid_duration'],
        [{ connection: 'demo', duration: 'soon', reason: 'x' }, 400, 'invalid_duration'],
        [[1, 2], 400, 'invalid_body'],
      ];
      for (const [body, status, code] of cases) {
        const response = await api('bob', 'POST', '/v1/access/requests', body);
        assert.equal(response.status, status, JSON.stringify(body));
        assert.equal((await errorOf(response)).code, code, JSON.stringify(body));
      }
    });

    // Last: it erases alice's content for the tests before it.
    test('erasure by subject reaches the reviews: prompts and comments go, the decision trail stays', async () => {
      const marker = `erase-${Date.now()}`;
      const held = postJson(`${h.url}/v1/chat/completions`, await h.userToken('alice'), { model: 'demo-chat', messages: [{ role: 'user', content: `nightingale ${marker}` }] });
      const review = await pendingReview(marker);
      await decide('carol', review.id, 'approve', `approved ${marker}`);
      assert.equal((await held).status, 200);
      // Another of her prompts, held while she called with the token her browser sign-in gave her.
      const browserToken = await h.gateway.services.identity.gatewayTokens.mint({ subject: 'alice', groups: ['engineering'], origin: h.idp.issuer });
      const heldInBrowser = postJson(`${h.url}/v1/chat/completions`, browserToken.token, { model: 'demo-chat', messages: [{ role: 'user', content: `nightingale ${marker} browser` }] });
      const browserReview = await pendingReview(`${marker} browser`);
      await decide('carol', browserReview.id, 'reject', `rejected ${marker}`);
      assert.equal((await heldInBrowser).status, 403);

      // Erased as the person at her IdP: both reviews are hers.
      const response = await api('carol', 'POST', '/v1/sessions/redact', { subject: 'alice', issuer: h.idp.issuer, reason: 'erasure request #7' });
      assert.equal(response.status, 200);
      const outcome = (await response.json()) as { redacted: string[]; reviews_redacted: string[] };
      assert.ok(outcome.reviews_redacted.includes(review.id), 'the review was redacted');
      assert.ok(outcome.reviews_redacted.includes(browserReview.id), 'so was the one raised through her browser sign-in');
      const after = (await (await api('carol', 'GET', `/v1/reviews/${review.id}`)).json()) as ReviewView & { redacted_at: number };
      assert.equal(after.prompt, '[redacted]');
      assert.equal(after.votes[0]!.comment, '[redacted]');
      assert.equal(after.votes[0]!.by.subject, 'carol', 'who decided stays');
      assert.equal(after.state, 'executed', 'and the outcome');
      const session = await h.gateway.services.audit!.archive.show(after.session_id!);
      assert.equal(session!.approvals.find((a) => a.outcome === 'approved')?.comment_text, '[redacted]', 'the comment in the session is erased too');
      const rows = await fx.raw.query<{ doc: string }>('SELECT doc FROM approval_reviews');
      assert.ok(!rows.some((r) => r.doc.includes(marker)), 'no copy left in the review table');
    });
  });
}

describe('review expiry', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      configure: (input) => {
        input.approvals = { wait: '5s', expires_after: '500ms', poll_interval: '100ms' };
      },
    });
  });
  after(() => h?.close());

  test('a review nobody decides expires, and the held request is told so', async () => {
    const response = await postJson(`${h.url}/v1/chat/completions`, await h.userToken('alice'), { model: 'demo-chat', messages: [{ role: 'user', content: 'nightingale' }] });
    assert.equal(response.status, 403);
    const error = await errorOf(response);
    assert.equal(error.code, 'approval_expired');
    assert.match(error.message, /Send it again to open a new review/);
    const session = await h.gateway.services.audit!.archive.show(response.headers.get('x-request-id')!);
    assert.deepEqual(session!.approvals.map((a) => a.outcome), ['created', 'expired'], 'the session records the expiry');
  });
});

describe('pending review limit', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ configure: (input) => void (input.approvals = { wait: '5s', max_pending_per_requester: 2 }) });
  });
  after(() => h?.close());

  test('a requester cannot flood approvers: past the limit, new reviews are refused with 429', async () => {
    const alice = await h.userToken('alice');
    for (let i = 0; i < 2; i++) {
      const requested = await postJson(`${h.url}/v1/access/requests`, alice, { connection: 'demo', duration: '1h', reason: `need ${i}` });
      assert.equal(requested.status, 201, `request ${i} is accepted`);
    }
    const third = await postJson(`${h.url}/v1/access/requests`, alice, { connection: 'demo', duration: '1h', reason: 'one more' });
    assert.equal(third.status, 429);
    assert.equal((await errorOf(third)).code, 'too_many_pending_reviews');
    assert.ok(Number(third.headers.get('retry-after')) > 0, 'with Retry-After');

    const prompt = await postJson(`${h.url}/v1/chat/completions`, alice, { model: 'demo-chat', messages: [{ role: 'user', content: 'nightingale' }] });
    assert.equal(prompt.status, 429, 'a held prompt is refused at once too, not held');
    assert.equal((await errorOf(prompt)).code, 'too_many_pending_reviews');
    const other = await postJson(`${h.url}/v1/access/requests`, await h.userToken('bob'), { connection: 'demo', duration: '1h', reason: 'mine' });
    assert.equal(other.status, 201, 'the limit is per requester');
  });
});
