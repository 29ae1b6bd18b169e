// `modelgate gateway --workers N`: N processes share the listening ports
// (node:cluster hands connections to them), each a full pipeline; shared
// state lives in the stores (SQLite in WAL mode across processes on one
// host, PostgreSQL and Redis across hosts). The primary only supervises:
// SIGHUP is passed to every worker (each reloads its configuration),
// SIGINT/SIGTERM drain every worker, and a worker that crashes is replaced.
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '../ops/logger.js';

/** Worker exit codes a restart cannot fix: bad configuration, port not ours. */
const FATAL_EXITS = new Set([78, 69]);
const SHUTDOWN = 'modelgate:shutdown';

/** Runs the primary until every worker has stopped; resolves with the exit code. */
export function superviseWorkers(count: number, log: Logger): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    let exitCode = 0;
    const live = new Set<Worker>();
    let restarts = 0;
    const fork = (): void => {
      const worker = cluster.fork({ MODELGATE_WORKER: '1' });
      live.add(worker);
    };
    cluster.on('exit', (worker, code, signal) => {
      live.delete(worker);
      if (!stopping && FATAL_EXITS.has(code ?? 0)) {
        log.error({ pid: worker.process.pid, code }, 'a worker cannot start (configuration or port); stopping all');
        exitCode = code!;
        stop();
      } else if (!stopping) {
        // Capped: a worker that dies at once, over and over, is not worth a tight loop.
        const delay = Math.min(5_000, 100 * 2 ** Math.min(restarts++, 6));
        log.error({ pid: worker.process.pid, code, signal, restartInMs: delay }, 'worker exited; starting another');
        setTimeout(fork, delay).unref();
      }
      if (stopping && live.size === 0) resolve(exitCode);
    });
    cluster.on('listening', () => {
      restarts = 0;
    });
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      // A message, not a signal: a terminal's Ctrl-C already signalled the workers, and a second signal means "now".
      for (const worker of live) if (worker.isConnected()) worker.send(SHUTDOWN);
      if (live.size === 0) resolve(exitCode);
    };
    process.on('SIGHUP', () => {
      for (const worker of live) worker.process.kill('SIGHUP');
    });
    let signals = 0;
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.on(signal, () => {
        if (++signals > 1) {
          for (const worker of live) worker.process.kill('SIGKILL');
          process.exit(130);
        }
        log.info({ signal, workers: live.size }, 'draining every worker');
        stop();
      });
    }
    for (let i = 0; i < count; i++) fork();
    log.info({ workers: count, pid: process.pid }, 'gateway primary started its workers');
  });
}

/** In a worker: the primary's shutdown message drains this process as SIGTERM would (unless a signal already did). */
export function followPrimaryShutdown(): void {
  if (!cluster.isWorker) return;
  let signalled = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => (signalled = true));
  const drain = (): void => {
    if (!signalled) process.kill(process.pid, 'SIGTERM');
  };
  process.on('message', (message) => {
    if (message === SHUTDOWN) drain();
  });
  // The primary is gone (killed): no worker outlives it.
  process.once('disconnect', drain);
}
