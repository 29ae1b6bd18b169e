// The native addon (native/release-memory, built by `npm install`): it loads
// on this glibc machine, and what its malloc_trim does is real: memory freed
// between live chunks of malloc's heap, which glibc keeps, goes back to the
// kernel. (Its V8 half is tested with releaseHeap in idle-reclaim.test.ts.)
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { releaseHeap } from '../../src/ops/heap.js';
import { fixTrimThreshold, mallocTrimUnavailable, nativeMemory, trimMalloc } from '../../src/ops/native-memory.js';

const rssMb = (): number => process.memoryUsage.rss() / 2 ** 20;

test('the addon loads here (Linux, glibc), and trimMalloc answers a boolean', async () => {
  const addon = nativeMemory();
  assert.ok(!('unavailable' in addon), 'unavailable' in addon ? addon.unavailable : '');
  assert.equal(mallocTrimUnavailable(), undefined);
  assert.equal(typeof (await trimMalloc()), 'boolean');
});

test('freed native memory glibc keeps goes back to the kernel', async () => {
  // 64 MB of Buffers (malloc'd, 32 KB each: below the mmap threshold), every page touched;
  // every 16th stays alive, so the freed ones sit between live chunks, where free() returns nothing.
  let chunks: Buffer[] | undefined = Array.from({ length: 2048 }, () => Buffer.allocUnsafeSlow(32 * 1024).fill(1));
  const pinned = chunks.filter((_, i) => i % 16 === 15);
  chunks = undefined;
  await releaseHeap();
  await new Promise((r) => setTimeout(r, 200)); // V8 frees array buffers' memory off the main thread
  const before = rssMb();
  assert.equal(await trimMalloc(), true, 'malloc_trim returned memory');
  const after = rssMb();
  assert.ok(before - after > 24, `RSS ${before.toFixed(0)} MB before the trim, ${after.toFixed(0)} MB after`);
  assert.equal(pinned.length, 128);
});

test("a thread's arena gives back the free memory at its top once the trim threshold is fixed", async () => {
  // A burst frees a big mmapped buffer: glibc then raises its trim threshold (to twice that buffer, up to 64 MB),
  // and each thread's arena keeps that much free memory at its top, which malloc_trim never returns
  // (it returns the top of the main arena only). 24 MB here: from now on, up to 48 MB of free top is kept.
  let big: Buffer | undefined = Buffer.allocUnsafeSlow(24 * 2 ** 20).fill(1);
  big = undefined;
  await releaseHeap();
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(big, undefined);
  assert.equal(fixTrimThreshold(), true);
  const before = rssMb();
  // A thread of its own (its own arena) touches 20 MB in 64 KB buffers and exits: its isolate frees them all,
  // and they merge into its arena's top.
  const worker = new Worker('const kept = []; for (let i = 0; i < 320; i++) kept.push(Buffer.alloc(64 * 1024, 1));', { eval: true });
  await once(worker, 'exit');
  await trimMalloc();
  const after = rssMb();
  assert.ok(after - before < 8, `RSS ${before.toFixed(0)} MB before the thread, ${after.toFixed(0)} MB after it ended and the trim`);
});

test('an addon built before setTrimThreshold existed leaves the threshold alone and the reclaim running', () => {
  const addon = nativeMemory() as { setTrimThreshold?: unknown };
  const setTrimThreshold = addon.setTrimThreshold;
  addon.setTrimThreshold = undefined;
  try {
    assert.equal(fixTrimThreshold(), undefined);
  } finally {
    addon.setTrimThreshold = setTrimThreshold;
  }
});
