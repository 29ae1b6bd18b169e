// The arrival clock dates the bytes read in this turn of the event loop. A
// stall alone does not stop it: bytes read then are dated by the pulse before
// it. For an answer larger than a receive buffer, after a stall it gives no
// date for a while (the socket's receive buffer may have filled, and the
// sender's kernel held its last bytes back while the sender already counted
// its idle time), then dates them again.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { RECEIVE_BUFFER_BYTES, readBytesWrittenAfter, startArrivalClock } from '../../src/proxy/arrival-clock.js';

const LARGE = RECEIVE_BUFFER_BYTES + 1;
const SMALL = RECEIVE_BUFFER_BYTES;

const block = (ms: number): void => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};
const turns = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The clock's date once the loop runs on time (the wait ends at the event, not at a deadline). */
async function dated(answerBytes: number): Promise<number> {
  let date: number | undefined;
  while ((date = readBytesWrittenAfter(answerBytes)) === undefined) await turns(100);
  return date;
}

test('a large answer: read on time, dated after a recent pulse; after a stall, no date until the loop has run on time again', { timeout: 60_000 }, async () => {
  startArrivalClock();
  const bound = await dated(LARGE);
  const before = performance.now();
  assert.ok(bound <= before, 'on time: a bound, in the past');

  block(600);
  assert.equal(readBytesWrittenAfter(LARGE), undefined, 'during the stall');
  await turns(50);
  assert.equal(readBytesWrittenAfter(LARGE), undefined, 'just after it');

  assert.ok((await dated(LARGE)) > before, 'from after the stall');
});

test('an answer that fits in a receive buffer is dated through a stall, by the pulse before it', { timeout: 60_000 }, async () => {
  startArrivalClock();
  await dated(SMALL);
  const beforeStall = performance.now();
  block(600);
  const during = readBytesWrittenAfter(SMALL);
  assert.ok(during !== undefined && during <= beforeStall, `during the stall: dated before it (${during} > ${beforeStall})`);
  assert.equal(readBytesWrittenAfter(LARGE), undefined, 'while a larger answer is not');
});
