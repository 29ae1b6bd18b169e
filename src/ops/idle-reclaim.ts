// Gives memory back once a burst is over. V8 returns the heap it grew only
// when its memory reducer runs, 50-100 s into an idle spell in the gateway,
// and the store threads' heaps wait as long; glibc keeps the native memory
// they freed. Once no request has been in flight for `server.idle_reclaim`,
// after traffic that grew RSS, the gateway fixes glibc's trim threshold (so
// the free memory at the top of each thread's arena goes back, which
// malloc_trim leaves), closes the HTTP parsers node pooled (their native
// memory no collection frees), collects its own heap (until compact) and the
// store threads' at once, then trims malloc's arenas. A full collection
// blocks the event loop for tens of milliseconds: hence only when idle, and
// once per burst, not after every lone request.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import v8 from 'node:v8';
import type { ThreadHeap } from '../audit/store.js';
import { releaseHeap, type HeapCollection } from './heap.js';
import { closeIdleHttpParsers } from './http-parsers.js';
import type { Logger } from './logger.js';
import { fixTrimThreshold, mallocTrimUnavailable, trimMalloc } from './native-memory.js';

/** What the reclaim is for: below this much RSS growth since the last one, idle costs nothing. */
export const RECLAIM_MIN_GROWTH_BYTES = 32 * 2 ** 20;

export interface IdleTriggerOptions {
  /** Quiet time with no request in flight before the action runs; 0 turns the trigger off. */
  afterMs: number;
  /** Whether there is something to reclaim (e.g. RSS grew since the last run). */
  worthIt: () => boolean;
  action: () => Promise<void>;
}

/**
 * Runs `action` once after each busy spell: when the last request in flight
 * ends and none starts for `afterMs`, if `worthIt()` says so. A request
 * starting meanwhile puts it off until the next quiet spell; staying idle
 * does not run it again.
 */
export class IdleTrigger {
  private open = 0;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: IdleTriggerOptions) {}

  started(): void {
    this.open++;
    this.cancel();
  }

  ended(): void {
    this.open--;
    if (this.open > 0 || this.closed || this.options.afterMs <= 0) return;
    this.cancel();
    this.timer = setTimeout(() => this.fire(), this.options.afterMs);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    this.cancel();
  }

  private cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private fire(): void {
    this.timer = undefined;
    if (this.open > 0 || this.running || this.closed || !this.options.worthIt()) return;
    this.running = true;
    void this.options.action().finally(() => (this.running = false));
  }
}

/** What a reclaim does, in this order: each step frees what the next gives back. */
export interface ReclaimSteps {
  /** glibc's trim threshold fixed (ops/native-memory.ts), before the frees the collections cause in every thread's arena; undefined when it cannot be. */
  fixTrimThreshold?: () => boolean | undefined;
  /** Native objects node pools for reuse that no collection frees (ops/http-parsers.ts); returns how many were closed. */
  closePooled?: () => number;
  /** This thread's V8 heap, collected in full; resolves when the collection has ended, saying how it ran (ops/heap.ts). */
  collectHeap: () => Promise<HeapCollection>;
  /** Each store thread collects its own heap. */
  collectStores: () => Promise<Array<ThreadHeap | void>>;
  /** The native memory the collections freed, back to the kernel, off the event loop: undefined when it cannot be (ops/native-memory.ts). */
  trimNative: () => Promise<boolean | undefined>;
}

export interface Reclaimed {
  /** Whether glibc's trim threshold is fixed (fixTrimThreshold); undefined when it cannot be. */
  trimThresholdFixed: boolean | undefined;
  /** How many pooled native objects were closed (closePooled). */
  pooledClosed: number;
  /** The event loop's longest stall during the reclaim: the most a request arriving meanwhile waits for it. */
  blockedMs: number;
  heap: HeapCollection;
  /** From the start of the heap's collection to its end (incremental: mostly not blocking). */
  heapMs: number;
  stores: Array<ThreadHeap | void>;
  trimmed: boolean | undefined;
  /** How long the trim took (on a pool thread, not blocking). */
  trimMs: number;
}

/** The trim threshold fixed first, pooled parsers closed next, then the collections (freeing sockets' and parsers' native memory with their objects), the trim last. */
export async function reclaimMemory(steps: ReclaimSteps): Promise<Reclaimed> {
  const stalls = monitorEventLoopDelay({ resolution: 10 });
  stalls.enable();
  // The histogram counts a stall only between two ticks of its timer: one before the work, one after.
  await new Promise((resolve) => setTimeout(resolve, 25));
  try {
    const trimThresholdFixed = steps.fixTrimThreshold?.();
    const pooledClosed = steps.closePooled?.() ?? 0;
    let started = performance.now();
    const heap = await steps.collectHeap();
    const heapMs = Math.round(performance.now() - started);
    const stores = await steps.collectStores();
    started = performance.now();
    const trimmed = await steps.trimNative();
    const trimMs = Math.round(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 25));
    return { trimThresholdFixed, pooledClosed, blockedMs: Math.round(stalls.max / 1e6), heap, heapMs, stores, trimmed, trimMs };
  } finally {
    stalls.disable();
  }
}

export interface IdleReclaimOptions {
  /** `server.idle_reclaim` (the agent: its own default); 0 turns it off. */
  afterMs: number;
  log: () => Logger;
  /** Store threads to collect too (the gateway's audit trail); none in the agent. */
  collectStores?: () => Promise<Array<ThreadHeap | void>>;
  onReclaimed?: () => void;
}

/**
 * The trigger a process holds to give memory back once a busy spell that
 * grew RSS by RECLAIM_MIN_GROWTH_BYTES is over: tell it when each model call
 * starts and ends. It logs what each reclaim gave back, or why it could not.
 */
export function idleReclaim(options: IdleReclaimOptions): IdleTrigger {
  let rssAfterReclaim = process.memoryUsage.rss();
  const mb = (bytes: number): number => Math.round(bytes / 2 ** 20);
  const action = async (): Promise<void> => {
    const log = options.log();
    const rssBefore = process.memoryUsage.rss();
    const heapBefore = v8.getHeapStatistics().total_heap_size;
    try {
      const { pooledClosed, blockedMs, heap, heapMs, stores, trimmed, trimMs, trimThresholdFixed } = await reclaimMemory({
        fixTrimThreshold,
        closePooled: closeIdleHttpParsers,
        collectHeap: releaseHeap,
        collectStores: options.collectStores ?? (async () => []),
        trimNative: trimMalloc,
      });
      rssAfterReclaim = process.memoryUsage.rss();
      options.onReclaimed?.();
      const trimUnavailable = mallocTrimUnavailable();
      log.info(
        {
          rssMb: [mb(rssBefore), mb(rssAfterReclaim)],
          heapMb: [mb(heapBefore), mb(v8.getHeapStatistics().total_heap_size)],
          storeHeapMb: stores.flatMap((s) => (s ? [{ used: s.usedBytes.map(mb), held: s.heldBytes.map(mb) }] : [])),
          httpParsersClosed: pooledClosed,
          heapCollection: { ...heap, ms: heapMs },
          blockedMs,
          mallocTrim: trimUnavailable ? `not called: ${trimUnavailable}` : { returned: trimmed, ms: trimMs, thresholdFixed: trimThresholdFixed },
        },
        'idle after a burst: memory given back',
      );
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'idle after a burst: could not reclaim memory');
    }
  };
  return new IdleTrigger({ afterMs: options.afterMs, worthIt: () => process.memoryUsage.rss() - rssAfterReclaim >= RECLAIM_MIN_GROWTH_BYTES, action });
}
