// A time no later than when the bytes being read now reached this machine.
// JavaScript reads a socket only when the event loop gets to it, seconds
// after the bytes arrived if the loop is busy, so "now" at the read says
// little about when the sender wrote them. libuv asks the kernel for every
// socket being read once per turn of the loop, and a due timer runs at the
// start of a turn, before that poll: so what is read now arrived after the
// previous turn's poll, which came after the second-to-last pulse of this
// timer. Not for a socket whose reading was paused: its bytes may be older.
import { performance } from 'node:perf_hooks';

const PULSE_MS = 100;
let secondToLast = performance.now();
let last = secondToLast;
let pulse: NodeJS.Timeout | undefined;

/** Starts the pulse; until it has run twice, the bound is when this module loaded. */
export function startArrivalClock(): void {
  pulse ??= setInterval(() => {
    secondToLast = last;
    last = performance.now();
  }, PULSE_MS).unref();
}

/** Milliseconds on performance.now()'s clock; the bytes read in this turn of the event loop arrived after it. */
export function readBytesArrivedAfter(): number {
  startArrivalClock();
  return secondToLast;
}
