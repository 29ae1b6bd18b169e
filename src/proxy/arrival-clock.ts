// When did the sender of the bytes being read now write them? JavaScript
// reads a socket only when the event loop gets to it, seconds late if the
// loop is busy, so "now" at the read says little.
// - libuv asks the kernel for every socket being read once per turn of the
//   loop, and a due timer runs at the start of a turn, before that poll: so
//   what is read now reached this machine after the previous turn's poll,
//   which came after the second-to-last pulse of this timer.
// - A stall alone does not break that: bytes read in the first turn after it
//   are dated by the pulse before it.
// - But bytes can reach this machine late: a socket not read for a while has
//   its receive buffer full, and the sender's kernel holds the rest while the
//   sender, its last byte written, already counts (a keep-alive server its
//   idle time). They arrive once the loop reads again, and if that takes more
//   than a pulse, they are dated too late. So for an answer larger than a
//   receive buffer holds unread, there is no bound until the loop has run on
//   time for a while after a stall. A smaller one never had a byte held back
//   (on loopback a client that read nothing held 128,000 bytes in its receive
//   queue; the initial window is 64 KiB), and is dated after a stall too: the
//   rule cost every reuse under load (a 20-request burst kept 0 connections
//   while other tests ran beside it).
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

/** An answer up to this size fits in the reader's receive buffer: its sender's kernel never holds any of it back. */
export const RECEIVE_BUFFER_BYTES = 64 * 1024;

/**
 * Milliseconds on performance.now()'s clock before which the sender had not
 * yet written the bytes read in this turn of the event loop, the last of an
 * answer of `answerBytes`; undefined when that answer is larger than a
 * receive buffer and the loop stalled too recently to tell.
 */
export function readBytesWrittenAfter(answerBytes: number): number | undefined {
  startArrivalClock();
  if (answerBytes > RECEIVE_BUFFER_BYTES) {
    const now = performance.now();
    // A stall under way (the pulse is late) or just over.
    if (now - last > PULSE_MS + STALL_MS || now - stalledAt < STALL_MEMORY_MS) return undefined;
  }
  return secondToLast;
}
