// V8 heap sizing for the long-running gateway. Under load most per-request
// garbage is promoted out of the young generation, and V8 by default lets
// the old generation grow to several times its live size (here ~30 MB)
// before a full collection: RSS then swings between ~150 and ~210 MB with
// nothing live to show for it. Capping the growth factor, as GOGC does for
// Go servers, keeps the heap near its live size; full collections come
// more often but stay short (mostly concurrent marking of a small heap).
import v8 from 'node:v8';

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
