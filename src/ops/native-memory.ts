// Two ways to give memory back that Node does not expose, from a small addon
// (native/release-memory, built by `npm install` with node-gyp):
// - V8's memory-pressure notifications: a full collection that also shrinks
//   the young generation, incremental (moderate) or at once (critical). A
//   burst grows the young generation to 32 MB and a gc() call from JS leaves
//   it so (ops/heap.ts).
// - glibc's malloc_trim(0), on a libuv pool thread. glibc keeps what a burst
//   freed: its arenas grow with thousands of sockets' native buffers, HTTP
//   parsers and the store thread's work, and once these are freed it returns
//   only the top of each arena, so RSS stays tens of MB above idle after
//   every object is gone. malloc_trim hands every whole free page of every
//   arena back, except the free memory at the top of each thread's arena.
// - glibc's mallopt(M_TRIM_THRESHOLD): how much free memory an arena may keep
//   at its top. glibc raises it with traffic (twice the largest mmapped block
//   freed, up to 64 MB), and malloc_trim does not return a thread's arena's
//   top, so after a burst each V8 platform thread's arena kept 1-3 MB free
//   (about 9 MB in the gateway, 4-8 MB in the agent). Fixed, a free() in that
//   arena gives back whatever is above it (fixTrimThreshold).
//
// Where the addon cannot be had the gateway runs as before, more slowly
// giving memory back: it was not built (no compiler at install), it was
// built for another Node version (npm rebuild), or the C library is not
// glibc (no malloc_trim: musl, macOS).
import { createRequire } from 'node:module';

interface NativeMemory {
  /** V8's moderate memory-pressure notification on the calling thread's isolate: it starts an incremental full collection. */
  startReleasingHeap(): void;
  /** V8's critical memory-pressure notification on the calling thread's isolate: the full collection, now. */
  releaseHeap(): void;
  /** glibc's malloc_trim(0) off the event loop: true when memory was returned to the kernel. */
  trimMalloc(): Promise<boolean>;
  /** glibc's mallopt(M_TRIM_THRESHOLD, bytes): true when set. Missing from an addon built before it was added. */
  setTrimThreshold?: (bytes: number) => boolean;
  /** false when built against a C library without malloc_trim. */
  mallocTrimAvailable: boolean;
}

/** Same relative path from src/ops and dist/ops. */
const ADDON = '../../native/release-memory/build/Release/release_memory.node';

let loaded: NativeMemory | { unavailable: string } | undefined;

/** The addon, or why it cannot be had (tried once per thread, not on every reclaim). */
export function nativeMemory(): NativeMemory | { unavailable: string } {
  if (!loaded) {
    try {
      loaded = createRequire(import.meta.url)(ADDON) as NativeMemory;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      loaded = {
        unavailable:
          code === 'MODULE_NOT_FOUND'
            ? 'native/release-memory is not built (npm install builds it with node-gyp)'
            : `native/release-memory does not load (${(err as Error).message.split('\n')[0]}; npm rebuild)`,
      };
    }
  }
  return loaded;
}

/** Why malloc_trim cannot be called here, if it cannot. */
export function mallocTrimUnavailable(): string | undefined {
  const found = nativeMemory();
  if ('unavailable' in found) return found.unavailable;
  return found.mallocTrimAvailable ? undefined : 'the C library is not glibc';
}

/**
 * Returns the free pages of glibc's arenas to the kernel: true if some were,
 * false if there were none, undefined when malloc_trim cannot be called
 * here. Call it after the collections that free the native memory.
 */
export async function trimMalloc(): Promise<boolean | undefined> {
  const found = nativeMemory();
  return 'unavailable' in found || !found.mallocTrimAvailable ? undefined : found.trimMalloc();
}

/**
 * The most free memory an arena keeps at its top once fixTrimThreshold has
 * run: glibc's own default before traffic raises it (128 KB) times two, so a
 * thread allocating and freeing a little at its top does not trim each time.
 */
export const ARENA_TOP_KEEP_BYTES = 256 * 1024;

/**
 * Fixes glibc's trim threshold: from now on, a free() that leaves an arena's
 * top above `bytes` gives the rest back to the kernel, in every thread's
 * arena, where malloc_trim cannot. glibc's mmap threshold stops moving too,
 * at what the traffic so far raised it to (hence called after a burst, not at
 * start-up, where it would pin it at 128 KB and make every larger buffer an
 * mmap). True when set, undefined when it cannot be here.
 */
export function fixTrimThreshold(bytes = ARENA_TOP_KEEP_BYTES): boolean | undefined {
  const found = nativeMemory();
  if ('unavailable' in found || !found.mallocTrimAvailable) return undefined;
  // An addon built before this call existed (npm run install rebuilds it): the rest of the reclaim still runs.
  return typeof found.setTrimThreshold === 'function' ? found.setTrimThreshold(bytes) : undefined;
}
