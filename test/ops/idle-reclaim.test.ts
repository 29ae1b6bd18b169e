// Memory given back after a burst: the idle trigger (with a mock clock: it
// fires once after a busy spell, never while a request is open), the order
// of the reclaim's steps (malloc is trimmed after the collections that free
// native memory), and what the action does on each thread (the heap V8 grew
// shrinks at once, here and in the store thread).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import { afterEach, describe, mock, test } from 'node:test';
import { storageSchema } from '../../src/audit/config.js';
import { Recorder } from '../../src/audit/recorder.js';
import { openStore } from '../../src/audit/store.js';
import type { WorkerStore } from '../../src/audit/worker-store.js';
import { releaseHeap } from '../../src/ops/heap.js';
import { closeIdleHttpParsers, idleHttpParsers } from '../../src/ops/http-parsers.js';
import { IdleTrigger, reclaimMemory } from '../../src/ops/idle-reclaim.js';
import { recording, recordSession } from '../audit/fixtures.js';

describe('the idle trigger', () => {
  afterEach(() => mock.timers.reset());

  function trigger(afterMs = 10_000, worthIt = () => true): { idle: IdleTrigger; runs: () => number } {
    let runs = 0;
    const idle = new IdleTrigger({ afterMs, worthIt, action: async () => void runs++ });
    return { idle, runs: () => runs };
  }

  test('fires once when a burst is over and nothing started for the quiet time, not again while idle', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const { idle, runs } = trigger();
    for (let i = 0; i < 100; i++) idle.started();
    for (let i = 0; i < 100; i++) idle.ended();
    mock.timers.tick(9_999);
    assert.equal(runs(), 0, 'not before the quiet time');
    mock.timers.tick(1);
    assert.equal(runs(), 1);
    mock.timers.tick(600_000);
    assert.equal(runs(), 1, 'idle with nothing new to give back: once per burst');
    await new Promise(setImmediate); // the run has finished
    idle.started();
    idle.ended();
    mock.timers.tick(10_000);
    assert.equal(runs(), 2, 'the next busy spell earns the next run');
  });

  test('never fires under load: a request open all along, others starting and ending around it', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const { idle, runs } = trigger();
    idle.started(); // a long stream
    for (let s = 0; s < 120; s++) {
      idle.started();
      idle.ended();
      mock.timers.tick(10_000);
    }
    assert.equal(runs(), 0);
    idle.ended();
    mock.timers.tick(10_000);
    assert.equal(runs(), 1, 'once the last request ends and the quiet time passes');
  });

  test('a request in the quiet time puts it off until the next full quiet time', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const { idle, runs } = trigger();
    idle.started();
    idle.ended();
    mock.timers.tick(9_000);
    idle.started();
    mock.timers.tick(5_000);
    idle.ended();
    mock.timers.tick(9_000);
    assert.equal(runs(), 0);
    mock.timers.tick(1_000);
    assert.equal(runs(), 1);
  });

  test('not when there is nothing worth giving back, nor when turned off (0) or closed', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    for (const { idle, runs, close } of [
      { ...trigger(10_000, () => false), close: false },
      { ...trigger(0), close: false },
      { ...trigger(), close: true },
    ]) {
      idle.started();
      if (close) idle.close();
      idle.ended();
      mock.timers.tick(60_000);
      assert.equal(runs(), 0);
    }
  });
});

describe("the reclaim's steps", () => {
  test("malloc's trim threshold is fixed first (before the frees), and malloc is trimmed last: after pooled parsers are closed and this thread's collection and the store threads' have freed their native memory", async () => {
    const done: string[] = [];
    const reclaimed = await reclaimMemory({
      fixTrimThreshold: () => (done.push('threshold'), true),
      closePooled: () => (done.push('pooled'), 3),
      collectHeap: async () => (done.push('heap'), { how: 'incremental', rounds: 1 }),
      collectStores: async () => {
        await new Promise(setImmediate); // a store thread answers later
        done.push('stores');
        return [{ usedBytes: [2, 1], heldBytes: [4, 3] }];
      },
      trimNative: async () => (done.push('trim'), true),
    });
    assert.deepEqual(done, ['threshold', 'pooled', 'heap', 'stores', 'trim']);
    assert.equal(reclaimed.trimThresholdFixed, true);
    assert.equal(reclaimed.pooledClosed, 3);
    assert.equal(reclaimed.trimmed, true);
    assert.deepEqual(reclaimed.stores, [{ usedBytes: [2, 1], heldBytes: [4, 3] }]);
  });

  test('it reports how long the event loop stalled, a collection that blocks at once included', async () => {
    const block = (ms: number): void => {
      const until = performance.now() + ms;
      while (performance.now() < until);
    };
    const reclaimed = await reclaimMemory({ collectHeap: async () => (block(200), { how: 'gc', rounds: 1 }), collectStores: async () => [], trimNative: async () => true });
    assert.ok(reclaimed.blockedMs >= 150, `stalled ${reclaimed.blockedMs} ms for a 200 ms block`);
  });

  test('where malloc_trim cannot be had, the collections still run and the trim is reported as not done', async () => {
    let collected = 0;
    const reclaimed = await reclaimMemory({ collectHeap: async () => (collected++, { how: 'gc', rounds: 1 }), collectStores: async () => [], trimNative: async () => undefined });
    assert.equal(collected, 1);
    assert.equal(reclaimed.trimmed, undefined);
  });
});

describe('what it gives back', () => {
  const heldMb = (): number => v8.getHeapStatistics().total_heap_size / 2 ** 20;

  test("releaseHeap gives this thread's grown heap back", async () => {
    const before = heldMb();
    // ~100 MB of short-lived objects, as a burst leaves them: dead, but the heap that held them is still V8's.
    let burst: Array<{ i: number; text: string }> | undefined = Array.from({ length: 1_000_000 }, (_, i) => ({ i, text: `frame ${i}` }));
    assert.ok(heldMb() > before + 40, `the burst grew the heap (${before.toFixed(0)} -> ${heldMb().toFixed(0)} MB)`);
    burst = undefined;
    const grown = heldMb();
    await releaseHeap();
    assert.ok(heldMb() < grown - 40, `held ${grown.toFixed(0)} MB before, ${heldMb().toFixed(0)} MB after`);
    assert.equal(burst, undefined);
  });

  test('releaseHeap shrinks the young generation a burst grew (gc() from JS leaves it at its size), incrementally', async () => {
    const newSpaceMb = (): number => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size / 2 ** 20;
    // Short-lived garbage at a high rate, some of it surviving a scavenge or two: V8 grows the young generation to its maximum.
    let kept: object[] = [];
    for (let i = 0; i < 3_000_000; i++) {
      kept.push({ i, text: `frame ${i}` });
      if (kept.length > 50_000) kept = [];
    }
    kept = [];
    const grown = newSpaceMb();
    assert.ok(grown >= 16, `the burst grew the young generation (${grown} MB)`);
    // In steps as asked; on a starved CPU the collection may not end within its wait, and is then done at once (heap.ts).
    const { how } = await releaseHeap();
    assert.ok(how === 'incremental' || how === 'at once', `the addon's collection ran (${how}), not gc()`);
    assert.ok(newSpaceMb() <= 4, `young generation ${grown} MB before, ${newSpaceMb()} MB after`);
  });

  test('releaseHeap compacts an old generation a burst left fragmented (one collection leaves most of its pages held)', async () => {
    const usedMb = (): number => v8.getHeapStatistics().used_heap_size / 2 ** 20;
    // Long-lived objects (old generation), then all but every 8th dropped: each page keeps a few live ones.
    let burst: Array<{ i: number; text: string }> | undefined = Array.from({ length: 1_500_000 }, (_, i) => ({ i, text: `frame ${i}` }));
    await new Promise(setImmediate);
    const survivors = burst.filter((_, i) => i % 8 === 0);
    burst = undefined;
    const { how, rounds } = await releaseHeap();
    const slackMb = heldMb() - usedMb();
    assert.ok(how === 'incremental' || how === 'at once', `the addon's collection ran (${how})`);
    // Compact: held beyond what is in use at most the slack releaseHeap allows (1 MB + 10% of what is in use) and a little.
    assert.ok(slackMb <= 2 + usedMb() / 10, `held ${heldMb().toFixed(0)} MB for ${usedMb().toFixed(0)} MB in use after ${rounds} collection(s)`);
    assert.equal(survivors.length, 187_500);
  });

  test("node's idle HTTP parsers, kept for reuse after connections close, are closed (their native memory freed)", async () => {
    const server = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      // 50 connections at once, each answered and closed: their parsers go to node's free list.
      await Promise.all(
        Array.from({ length: 50 }, () => new Promise<void>((resolve, reject) => {
          http.get({ port, host: '127.0.0.1', agent: false, headers: { connection: 'close' } }, (res) => res.resume().on('end', resolve)).on('error', reject);
        })),
      );
      await new Promise((resolve) => setTimeout(resolve, 50));
      const pooled = idleHttpParsers();
      assert.ok(pooled >= 50, `node keeps the parsers of closed connections (${pooled})`);
      // Dropped from the list without close(), a parser's native memory would stay: each must be closed.
      let closed = 0;
      for (const parser of (createRequire(import.meta.url)('_http_common') as { parsers: { list: Array<{ close(): void }> } }).parsers.list) {
        const close = parser.close.bind(parser);
        parser.close = () => (closed++, close());
      }
      assert.equal(closeIdleHttpParsers(), pooled);
      assert.equal(closed, pooled);
      assert.equal(idleHttpParsers(), 0);
      // The next connection gets a new parser.
      const res = await new Promise<http.IncomingMessage>((resolve, reject) => http.get({ port, host: '127.0.0.1', agent: false }, resolve).on('error', reject));
      assert.equal(res.statusCode, 200);
      res.resume();
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('the SQLite store lets go of the multi-row INSERTs its commits prepared, one per batch size, so the collection after finalizes them', async () => {
    // Up to 64 of them (1 to 64 rows of 13 columns), ~40 KB of compiled program each at 32 rows: ~2.7 MB of the
    // store thread's arena after a burst. better-sqlite3 finalizes a statement when its object is collected.
    const dir = await mkdtemp(join(tmpdir(), 'modelgate-reclaim-'));
    const store = await openStore(storageSchema.parse({ sqlite: { path: join(dir, 'audit.db'), synchronous: 'normal' } }), { thread: 'main' });
    const Database = createRequire(import.meta.url)('better-sqlite3') as { prototype: { prepare(this: unknown, sql: string, ...rest: unknown[]): unknown } };
    const prepare = Database.prototype.prepare;
    let inserts = 0;
    Database.prototype.prepare = function (this: unknown, sql: string, ...rest: unknown[]) {
      if (sql.startsWith('INSERT INTO events')) inserts++;
      return prepare.call(this, sql, ...rest);
    };
    try {
      const recorder = await Recorder.open(store, recording());
      await recordSession(recorder);
      const first = inserts;
      assert.ok(first > 0, 'the first session prepares the INSERTs of its batch sizes');
      inserts = 0;
      await recordSession(recorder);
      assert.equal(inserts, 0, 'a session of the same shape reuses them');
      await store.reclaimMemory!();
      await recordSession(recorder);
      assert.equal(inserts, first, 'after the reclaim, they are prepared afresh: the old ones were let go');
      await recorder.close({ closeStore: false });
    } finally {
      Database.prototype.prepare = prepare;
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("the store thread collects its own heap after a burst of recording", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'modelgate-reclaim-'));
    const store = (await openStore(storageSchema.parse({ sqlite: { path: join(dir, 'audit.db'), synchronous: 'normal' } }), { thread: 'worker' })) as WorkerStore;
    try {
      const recorder = await Recorder.open(store, recording());
      await Promise.all(Array.from({ length: 400 }, (_, i) => recordSession(recorder, { prompt: `burst ${i} `.repeat(400) })));
      const { usedBytes } = await store.reclaimMemory();
      const [before, after] = usedBytes.map((b) => b / 2 ** 20) as [number, number];
      assert.ok(after < before, `the store thread's heap in use: ${before.toFixed(1)} MB before, ${after.toFixed(1)} MB after`);
      await recorder.close({ closeStore: false });
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
