// What a held request looks like on the wire: interim `102 Processing`
// responses keep the connection busy, and not one byte of the final
// response is sent before the decision, so a refusal can still be a proper
// 403 with a JSON body even for a streaming request. And what it gets when
// the gateway shuts down under it, or its review store is unreachable.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { openReviewStore } from '../../src/approvals/review-store.js';
import { postJson, startHarness, type Harness } from '../helpers/harness.js';
import { postgresThroughRelay } from '../helpers/tcp-relay.js';

describe('a held streaming request on the wire', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      configure: (input) => {
        input.approvals = { wait: '10s', keepalive_interval: '100ms', poll_interval: '100ms' };
      },
    });
  });
  after(() => h?.close());

  async function rawStream(decision: 'approve' | 'reject', httpVersion = '1.1'): Promise<{ beforeDecision: string; all: string }> {
    const token = await h.userToken('alice');
    const body = JSON.stringify({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: `nightingale ${decision} ${httpVersion}` }] });
    const { port } = new URL(h.url);
    const socket = connect(Number(port), '127.0.0.1');
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write(`POST /v1/chat/completions HTTP/${httpVersion}\r\nhost: gateway\r\nauthorization: Bearer ${token}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);

    let reviewId: string | undefined;
    const carol = await h.userToken('carol');
    for (let i = 0; i < 200 && !reviewId; i++) {
      await sleep(25);
      const list = (await (await fetch(`${h.url}/v1/reviews?state=pending`, { headers: { authorization: `Bearer ${carol}` } })).json()) as { data: Array<{ id: string; requester: { subject: string } }> };
      reviewId = list.data.find((r) => r.requester.subject === 'alice')?.id;
    }
    assert.ok(reviewId, 'the review opened');
    await sleep(450);
    const beforeDecision = received;
    assert.equal((await postJson(`${h.url}/v1/reviews/${reviewId}/${decision}`, carol, { comment: 'x' })).status, 200);
    await closed;
    return { beforeDecision, all: received };
  }

  test('approved: 102s while held, then the 200 event stream', async () => {
    const { beforeDecision, all } = await rawStream('approve');
    const interim = beforeDecision.match(/HTTP\/1\.1 102 Processing\r\n\r\n/g) ?? [];
    assert.ok(interim.length >= 2, `keep-alives were sent while held: ${JSON.stringify(beforeDecision)}`);
    assert.equal(beforeDecision.replaceAll('HTTP/1.1 102 Processing\r\n\r\n', ''), '', 'nothing but interim responses before the decision');
    const final = all.slice(all.lastIndexOf('HTTP/1.1 102 Processing\r\n\r\n') + 'HTTP/1.1 102 Processing\r\n\r\n'.length);
    assert.match(final, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(final, /content-type: text\/event-stream/i);
    assert.match(final, /data: \[DONE\]/);
  });

  test('HTTP/1.0 clients get no interim responses, only the final one', async () => {
    const { beforeDecision, all } = await rawStream('approve', '1.0');
    assert.equal(beforeDecision, '', 'nothing at all before the decision');
    assert.match(all, /^HTTP\/1\.1 200 OK\r\n/);
  });

  test('rejected: a 403 JSON error, never a half-started stream', async () => {
    const { all } = await rawStream('reject');
    const final = all.replaceAll('HTTP/1.1 102 Processing\r\n\r\n', '');
    assert.match(final, /^HTTP\/1\.1 403 Forbidden\r\n/);
    assert.match(final, /content-type: application\/json/i);
    assert.match(final, /"code":"approval_rejected"/);
  });
});

describe('a gateway shutting down with requests held', () => {
  test('held requests get 503 at once and their reviews stay pending for the retry', async () => {
    const h = await startHarness({ configure: (input) => void (input.approvals = { wait: '60s', poll_interval: '100ms' }) });
    const storage = h.gateway.services.config.storage;
    try {
      const held = postJson(`${h.url}/v1/chat/completions`, await h.userToken('alice'), { model: 'demo-chat', messages: [{ role: 'user', content: 'nightingale roadmap' }] });
      const carol = await h.userToken('carol');
      let reviewId: string | undefined;
      for (let i = 0; i < 200 && !reviewId; i++) {
        await sleep(25);
        const list = (await (await fetch(`${h.url}/v1/reviews?state=pending`, { headers: { authorization: `Bearer ${carol}` } })).json()) as { data: Array<{ id: string }> };
        reviewId = list.data[0]?.id;
      }
      assert.ok(reviewId, 'the review opened');
      const closing = h.gateway.close(30_000);
      const response = await held;
      assert.equal(response.status, 503, 'released with a retryable error rather than held through the drain');
      const error = (await response.json()) as { error: { code: string; review_id: string } };
      assert.equal(error.error.code, 'shutting_down');
      assert.equal(error.error.review_id, reviewId);
      assert.equal(response.headers.get('retry-after'), '1');
      await closing;

      const store = await openReviewStore(storage);
      assert.equal((await store.get(reviewId))?.state, 'pending', 'the review waits for the retry');
      await store.close();
    } finally {
      await Promise.all([h.idp.close(), h.model.close()]);
    }
  });
});

describe('the review store unreachable', () => {
  test('a prompt that needs approval fails closed with 503, and the model gets nothing', async () => {
    const { relay, storage, cleanup } = await postgresThroughRelay('down');
    const h = await startHarness({
      configure: (input) => {
        input.storage = storage;
        // Recording off, so it is the review store, not the audit trail, that refuses.
        input.recording = { enabled: false };
      },
    });
    try {
      const token = await h.userToken('alice');
      const ok = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content: 'hello' }] });
      assert.equal(ok.status, 200, 'an ordinary prompt passes');
      const before = h.model.received.length;
      relay.cut();
      const response = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content: 'nightingale plans' }] });
      assert.equal(response.status, 503);
      const error = (await response.json()) as { error: { code: string; message: string } };
      assert.equal(error.error.code, 'approvals_unavailable');
      assert.match(error.error.message, /not forwarded/);
      assert.equal(response.headers.get('retry-after'), '5');
      assert.equal(h.model.received.length, before, 'nothing reached the model');
    } finally {
      await h.close();
      await cleanup();
    }
  });
});
