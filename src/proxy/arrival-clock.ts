// When did the sender of the bytes being read now write them? JavaScript
// reads a socket only when the event loop gets to it, seconds late if the
// loop is busy, so "now" at the read says little.
// - libuv asks the kernel for every socket being read once per turn of the
//   loop, and a due timer runs at the start of a turn, before that poll: so
//   what is read now reached this machine after the previous turn's poll,
//   which came after the second-to-last pulse of this timer.
// - But after a stall, bytes reach this machine late: a socket not read for a
//   while has its receive buffer full, and the sender's kernel holds the rest
//   while the sender, its last byte written, already counts (a keep-alive
//   server its idle time). So until the loop has run on time for a while
//   after a stall, there is no bound. (Seen in a 5,000-stream soak: 40 reused
//   connections closed by a 5 s server within 2 s of the answer's end as the
//   agent read it.)
// Not for a socket whose reading was paused: its bytes may be older still.
import { performance } from 'node:perf_hooks';

const PULSE_MS = 100;
/** A pulse this late means the loop stalled: long enough for a fast stream to fill a socket's receive buffer (128 KB of small segments). */
const STALL_MS = 250;
/** How long after a stall the bound is withheld: the bytes held back arrive once the loop reads again, within a few turns. */
const STALL_MEMORY_MS = 2_000;

let secondToLast = performance.now();
let last = secondToLast;
let stalledAt = -Infinity;
let pulse: NodeJS.Timeout | undefined;

/** Starts the pulse; until it has run twice, the bound is when this module loaded. */
export function startArrivalClock(): void {
  pulse ??= setInterval(() => {
    const now = performance.now();
    if (now - last > PULSE_MS + STALL_MS) stalledAt = now;
    secondToLast = last;
    last = now;
  }, PULSE_MS).unref();
}

/**
 * Milliseconds on performance.now()'s clock before which the sender had not
 * yet written the bytes read in this turn of the event loop; undefined when
 * the loop stalled too recently to tell.
 */
export function readBytesWrittenAfter(): number | undefined {
  startArrivalClock();
  const now = performance.now();
  // A stall under way (the pulse is late) or just over.
  if (now - last > PULSE_MS + STALL_MS || now - stalledAt < STALL_MEMORY_MS) return undefined;
  return secondToLast;
}
