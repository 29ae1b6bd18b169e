// V8 heap sizing for the long-running gateway. Under load most per-request
// garbage is promoted out of the young generation, and V8 by default lets
// the old generation grow to several times its live size (here ~30 MB)
// before a full collection: RSS then swings between ~150 and ~210 MB with
// nothing live to show for it. Capping the growth factor, as GOGC does for
// Go servers, keeps the heap near its live size; full collections come
// more often but stay short (mostly concurrent marking of a small heap).
//
// After a burst the heap V8 grew stays until its memory reducer runs, which
// in the gateway took 50-100 s of idle; `releaseHeap` does that work at
// once, for the idle trigger (ops/idle-reclaim.ts).
import { constants, PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { nativeMemory } from './native-memory.js';

/** Old-generation growth allowed after each full collection, in percent of what survived it. */
export const HEAP_GROWING_PERCENT = 30;

/**
 * Applies to this process from now on. V8 reads the factor whenever it
 * recomputes the heap limit, so setting it at start-up is enough; unlike
 * the semi-space size, it needs no command-line flag.
 */
export function limitHeapGrowth(percent = HEAP_GROWING_PERCENT): void {
  v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
}

type Gc = () => void;
let gc: Gc | undefined;

/**
 * V8's `gc` function for this thread's isolate, without starting node with
 * --expose-gc: a context made while the flag is on gets it. The flag goes
 * off again, so contexts made later (vm, workers) do not see a global gc.
 * The flag is process-wide: another thread may turn it off in between, and
 * then this one tries again.
 */
function gcFunction(): Gc {
  for (let attempt = 1; !gc; attempt++) {
    v8.setFlagsFromString('--expose-gc');
    try {
      gc = runInNewContext('typeof gc === "function" ? gc : undefined') as Gc | undefined;
    } finally {
      v8.setFlagsFromString('--no-expose-gc');
    }
    if (!gc && attempt === 10) throw new Error("V8's gc function could not be had");
  }
  return gc;
}

/** How long to wait for the incremental collection V8 was asked for before collecting at once. */
export const INCREMENTAL_RELEASE_TIMEOUT_MS = 5_000;

/** How the heap was given back: incrementally, at once (no incremental collection came), or by gc() (no addon). */
export type HeapRelease = 'incremental' | 'at once' | 'gc';

/** What releaseHeap did: how, and in how many collections. */
export interface HeapCollection {
  how: HeapRelease;
  rounds: number;
}

/**
 * Most incremental collections one release runs. Each one moves only part of
 * a fragmented old generation's live objects off their pages (V8 caps what a
 * memory-reducing collection evacuates), so after a burst the first one can
 * leave the heap holding far more than is in use: in the 5,000-stream soak,
 * 52 MB held for 33 MB in use. V8's own memory reducer stops at 3.
 */
export const MAX_RELEASE_ROUNDS = 4;

/** Held beyond what is in use that counts as compact already: no further collection for it. */
const compactSlackBytes = (usedBytes: number): number => 2 ** 20 + usedBytes / 10;

/**
 * Full, compacting collections of this thread's heap, until it holds little
 * more than what is live (or a round gives nothing back, or
 * MAX_RELEASE_ROUNDS); V8's background threads unmap the freed pages within
 * moments. With the native addon it is V8's response to memory pressure,
 * which also shrinks the young generation a burst grew (to 32 MB; 1 MB
 * after): gc(), of any flavour, leaves it at its size. That collection runs
 * incrementally, in steps between the event loop's other work (pauses of
 * ~10 ms instead of 0.2-0.3 s at once); resolves when the last has ended. Without
 * the addon, gc() blocks the thread for the collection. Call it when idle.
 */
export async function releaseHeap(): Promise<HeapCollection> {
  const addon = nativeMemory();
  if ('unavailable' in addon) {
    gcFunction()();
    return { how: 'gc', rounds: 1 };
  }
  let heldBefore = v8.getHeapStatistics().total_heap_size;
  for (let round = 1; ; round++) {
    const ended = nextFullCollection(INCREMENTAL_RELEASE_TIMEOUT_MS);
    addon.startReleasingHeap();
    if (!(await ended)) {
      // At once, V8 collects until a collection frees nothing more.
      addon.releaseHeap();
      return { how: 'at once', rounds: round };
    }
    // Pages the collection emptied are off the books when it ends.
    const { total_heap_size: held, used_heap_size: used } = v8.getHeapStatistics();
    if (round === MAX_RELEASE_ROUNDS || held - used <= compactSlackBytes(used) || heldBefore - held < 2 ** 20) return { how: 'incremental', rounds: round };
    heldBefore = held;
  }
}

/** Resolves true when this thread's next full (mark-compact) collection ends, false if none has within timeoutMs. */
function nextFullCollection(timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const observer = new PerformanceObserver((entries) => {
      if (entries.getEntries().some((e) => (e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)) end(true);
    });
    const timer = setTimeout(() => end(false), timeoutMs);
    const end = (collected: boolean): void => {
      clearTimeout(timer);
      observer.disconnect();
      resolve(collected);
    };
    observer.observe({ entryTypes: ['gc'] });
  });
}
