// The native addon (native/release-memory, built by `npm install`): it loads
// on this glibc machine, and what its malloc_trim does is real: memory freed
// between live chunks of malloc's heap, which glibc keeps, goes back to the
// kernel. (Its V8 half is tested with releaseHeap in idle-reclaim.test.ts.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { releaseHeap } from '../../src/ops/heap.js';
import { mallocTrimUnavailable, nativeMemory, trimMalloc } from '../../src/ops/native-memory.js';

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
