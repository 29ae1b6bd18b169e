// The review store (PostgreSQL, cut through a TCP relay) going away while
// people use the reviews API: a clean 503 they can wait out, not a 500.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startHarness } from '../helpers/harness.js';
import { postgresThroughRelay } from '../helpers/tcp-relay.js';

test('reviews list and show answer 503 reviews_unavailable while the review store is down', async () => {
  const { relay, storage, cleanup } = await postgresThroughRelay('reviews_down');
  const h = await startHarness({
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
  } finally {
    await h.close();
    await cleanup();
  }
});
