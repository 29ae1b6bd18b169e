import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { newRequestId } from '../../src/http/request-id.js';

test('request ids are unique, of the documented shape, and sort in the order they were minted', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 20; i++) {
    ids.push(newRequestId(), newRequestId());
    // A later millisecond: the time prefix orders ids across it (within one, the random rest decides).
    await sleep(2);
  }
  for (const id of ids) assert.match(id, /^req_[0-9a-f]{32}$/);
  assert.equal(new Set(ids).size, ids.length);
  const firstOfEachMs = ids.filter((_, i) => i % 2 === 0);
  assert.deepEqual([...firstOfEachMs].sort(), firstOfEachMs, 'the audit index on request ids grows at its end');
});
