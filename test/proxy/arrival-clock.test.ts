// The arrival clock dates the bytes read in this turn of the event loop:
// after a stall it gives no date for a while (a socket's receive buffer may
// have filled, and the sender's kernel held its last bytes back while the
// sender already counted its idle time), then dates them again.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { readBytesWrittenAfter, startArrivalClock } from '../../src/proxy/arrival-clock.js';

const block = (ms: number): void => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};
const turns = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('running on time, bytes read now were written after a recent pulse; after a stall, no date until the loop has run on time again', { timeout: 60_000 }, async () => {
  startArrivalClock();
  await turns(400);
  const before = performance.now();
  const bound = readBytesWrittenAfter();
  assert.ok(bound !== undefined && bound <= before, 'on time: a bound, in the past');

  block(600);
  assert.equal(readBytesWrittenAfter(), undefined, 'during the stall');
  await turns(50);
  assert.equal(readBytesWrittenAfter(), undefined, 'just after it');

  // Dated again once the loop has run on time for a while (the wait ends at the event, not at a deadline).
  let dated: number | undefined;
  while ((dated = readBytesWrittenAfter()) === undefined) await turns(100);
  assert.ok(dated > before, 'from after the stall');
});
