// Waiting for a busy upstream is visible (a gauge), bounded (max_queued) and
// timed (queue_timeout): beyond them, a clean 503 with retry-after instead of
// a silent wait inside the connection pool. And the connections a burst
// opened are not held once the upstream closes them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { errorOf, postJson, startHarness, type Harness } from '../helpers/harness.js';

/** A gauge of the demo connection from /metrics; 0 when it has no sample. */
async function demoGauge(h: Harness, name: string): Promise<number> {
  const text = await (await fetch(`${h.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{connection="demo"}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('upstream queueing', () => {
  let h: Harness;
  let token: string;
  before(async () => {
    h = await startHarness({
      configure: (input) => {
        Object.assign(input.connections[0]!, { max_connections_per_target: 1, max_queued: 1, queue_timeout: '400ms' });
      },
    });
    token = await h.userToken('alice');
  });
  after(() => h.close());

  const chat = (content: string, stream = false) => postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', stream, messages: [{ role: 'user', content }] });
  const gauge = (name: string) => demoGauge(h, name);

  test('one stream holds the only connection; the next waits (gauge), the one after is refused at once, the waiter times out', { timeout: 60_000 }, async () => {
    h.model.setFault({ kind: 'stall_mid_stream', afterChunks: 1 }, { times: 1, path: '/v1/chat/completions' });
    const holder = await chat('hold the connection', true);
    assert.equal(holder.status, 200);
    const reader = holder.body!.getReader();
    await reader.read();
    assert.equal(await gauge('modelgate_upstream_active_requests'), 1);

    const waiting = chat('I wait');
    const deadline = Date.now() + 5_000;
    while ((await gauge('modelgate_upstream_queued_requests')) !== 1) {
      assert.ok(Date.now() < deadline, 'the waiting request shows in the queue gauge');
      await new Promise((r) => setTimeout(r, 20));
    }

    const refused = await chat('no room');
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get('retry-after'), '2');
    assert.equal((await errorOf(refused)).code, 'upstream_queue_full');

    const timedOut = await waiting;
    assert.equal(timedOut.status, 503);
    assert.equal((await errorOf(timedOut)).code, 'upstream_queue_timeout');
    assert.equal(await gauge('modelgate_upstream_queued_requests'), 0);

    await reader.cancel();
    const deadline2 = Date.now() + 5_000;
    while ((await gauge('modelgate_upstream_active_requests')) !== 0) {
      assert.ok(Date.now() < deadline2, 'the connection is released when the client goes away');
      await new Promise((r) => setTimeout(r, 20));
    }
    const after = await chat('room again');
    assert.equal(after.status, 200);
    await after.text();
  });
});

describe('upstream connections after a burst', () => {
  let h: Harness;
  let token: string;
  before(async () => {
    // Paced answers, so the streams are open at the upstream at the same time.
    h = await startHarness({ model: { chunkDelayMs: 50 } });
    token = await h.userToken('alice');
  });
  after(() => h.close());

  const connections = () => demoGauge(h, 'modelgate_upstream_connections');

  test('streams at once open a connection each; once they end and the model closes them while idle, the gateway holds none', { timeout: 60_000 }, async () => {
    const streams = await Promise.all(Array.from({ length: 4 }, (_, i) => postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: `stream ${i}` }] })));
    const readers = streams.map((s) => s.body!.getReader());
    await Promise.all(readers.map((r) => r.read()));
    assert.equal(await connections(), 4, 'one upstream connection per open stream');
    // Read each to its end: the connections go back idle, not destroyed.
    await Promise.all(
      readers.map(async (r) => {
        while (!(await r.read()).done);
      }),
    );
    assert.equal(await connections(), 4, 'idle keep-alive connections are kept for reuse');
    // The model server closes idle keep-alive connections after its own timeout (node's: 5 s).
    const deadline = Date.now() + 20_000;
    while ((await connections()) !== 0) {
      assert.ok(Date.now() < deadline, 'closed idle connections are dropped, not kept');
      await new Promise((r) => setTimeout(r, 100));
    }
  });
});
