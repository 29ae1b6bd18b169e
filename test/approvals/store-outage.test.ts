// The review store (PostgreSQL, cut through a TCP relay) going away while
// people use the reviews API: a clean 503 they can wait out, not a 500, and
// one log line when the outage starts and one when it ends, not a stack per
// refused request.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startHarness } from '../helpers/harness.js';
import { postgresThroughRelay } from '../helpers/tcp-relay.js';

test('reviews list and show answer 503 reviews_unavailable while the review store is down; the outage is logged once as it starts and once as it ends', async () => {
  const { relay, storage, cleanup } = await postgresThroughRelay('reviews_down');
  const logs: string[] = [];
  const h = await startHarness({
    logs,
    configure: (input) => {
      input.storage = storage;
      input.recording = { enabled: false };
    },
  });
  try {
    const carol = await h.userToken('carol');
    const list = () => fetch(`${h.url}/v1/reviews`, { headers: { authorization: `Bearer ${carol}` } });
    const up = await list();
    assert.equal(up.status, 200);
    await up.body?.cancel();
    relay.cut();
    for (const path of ['/v1/reviews', '/v1/reviews/rev_00000000000000000000000000']) {
      const down = await fetch(`${h.url}${path}`, { headers: { authorization: `Bearer ${carol}` } });
      assert.equal(down.status, 503, path);
      assert.equal(down.headers.get('retry-after'), '5');
      const error = ((await down.json()) as { error: { code: string; message: string } }).error;
      assert.equal(error.code, 'reviews_unavailable');
      assert.doesNotMatch(error.message, /ECONN|terminated|at .*\.js/);
    }
    for (let i = 0; i < 10; i++) assert.equal((await list()).status, 503);
    relay.restore();
    // Nothing else asks the review store meanwhile: the gateway's probe notices it is back.
    const lines = () => logs.map((l) => JSON.parse(l) as { level: string; msg: string; refused?: number });
    for (let i = 0; i < 200 && !lines().some((l) => l.msg === 'reviews store available again'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(
      lines().filter((l) => l.level === 'error').map((l) => l.msg),
      ['reviews store unavailable: requests that need it are refused with 503 until it is back'],
      'one error line for the outage, not one per refused request',
    );
    assert.ok(!logs.some((l) => l.includes('"stack"')), 'no stack traces');
    assert.equal(lines().find((l) => l.msg === 'reviews store available again')?.refused, 12);
    assert.equal((await list()).status, 200);
  } finally {
    await h.close();
    await cleanup();
  }
});
