// `modelgate gateway --workers N`: N processes share the listening ports
// (node:cluster, the kernel handing out connections), each a full pipeline; shared
// state lives in the stores (SQLite in WAL mode across processes on one
// host, PostgreSQL and Redis across hosts). The primary only supervises:
// SIGHUP is passed to every worker (each reloads its configuration),
// SIGINT/SIGTERM drain every worker, and a worker that crashes is replaced.
// An agent tunnel lands on one worker; the others forward its connection's
// requests to that worker as instances do (agent/router.ts): each worker
// knows its slot, and the primary makes the routing secret for the run when
// `agents.routing` does not set one.
import { randomBytes } from 'node:crypto';
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { isAgentServed } from '../agent/hub.js';
import { siblingRoutingPossible, type WorkerSlot } from '../agent/router.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../ops/logger.js';

/** Worker exit codes a restart cannot fix: bad configuration, port not ours. */
const FATAL_EXITS = new Set([78, 69]);
const SHUTDOWN = 'modelgate:shutdown';
const SLOT_ENV = 'MODELGATE_WORKER_SLOT';
const SECRET_ENV = 'MODELGATE_WORKER_ROUTE_SECRET';

/** In a worker: its slot of how many, and the routing secret its primary made (removed from the environment once read). */
export function workerSlot(): WorkerSlot | undefined {
  const match = cluster.isWorker ? /^(\d+)\/(\d+)$/.exec(process.env[SLOT_ENV] ?? '') : null;
  const siblingSecret = process.env[SECRET_ENV];
  if (!match || !siblingSecret) return undefined;
  delete process.env[SECRET_ENV];
  return { slot: Number(match[1]), count: Number(match[2]), siblingSecret };
}

/**
 * What in this configuration lives in one process's memory, so N workers
 * would each hold their own copy: a reason for `--workers` to default to 1.
 * `fatal` ones also refuse an explicit `--workers N`: the copies would
 * disagree on signing keys and revocations, or hand out N allowances.
 */
export function processLocalState(config: Config): Array<{ reason: string; fatal: boolean }> {
  const found: Array<{ reason: string; fatal: boolean }> = [];
  if (config.identity.state.store === 'memory') {
    found.push({ reason: 'identity.state is in memory (each worker would keep its own signing keys and revocations)', fatal: true });
  }
  if (config.limits.store === 'memory' && (config.limits.rules.length > 0 || config.limits.budgets.length > 0)) {
    found.push({ reason: 'limits.store is memory (each worker would count its own allowance, multiplying every limit)', fatal: true });
  }
  // Workers reach the one holding an agent tunnel through the route table: on SQLite (one host) by themselves, on PostgreSQL through agents.routing.
  if (config.connections.some(isAgentServed) && !config.agents?.routing && !siblingRoutingPossible(config.storage)) {
    found.push({
      reason: `a connection is served through agents and storage is ${config.storage.driver === 'postgres' ? 'PostgreSQL' : 'SQLite in memory'} without agents.routing (an agent tunnel lands on one worker; the others could not reach it: configure agents.routing, or SQLite storage on a file)`,
      fatal: false,
    });
  }
  return found;
}

export type WorkersChoice = { workers: number; warning?: string } | { error: string; kind: 'usage' | 'config' };

/**
 * `--workers`: absent means one per core, unless some state is
 * process-local, then 1 (with a warning saying what to change); `auto` is
 * one per core; a number is taken as given, unless fatal state forbids it.
 */
export function chooseWorkers(option: unknown, config: Config, cores = availableParallelism()): WorkersChoice {
  const local = processLocalState(config);
  if (option === undefined) {
    if (local.length === 0 || cores === 1) return { workers: cores };
    return { workers: 1, warning: `running 1 worker, not ${cores} (one per core): ${local.map((l) => l.reason).join('; ')}. Move that state to a shared store, or pass --workers, to use every core` };
  }
  const workers = option === 'auto' ? cores : Number(option);
  if (!Number.isInteger(workers) || workers < 1 || workers > 256) return { error: `--workers "${String(option)}" is not a number of processes (1-256, or auto)`, kind: 'usage' };
  if (workers === 1) return { workers };
  const fatal = local.filter((l) => l.fatal);
  if (fatal.length > 0) return { error: `--workers ${workers} needs shared state: ${fatal.map((l) => l.reason).join('; ')}. Put identity.state on sqlite or postgres, and limits on redis`, kind: 'config' };
  const warnings = local.filter((l) => !l.fatal);
  return warnings.length > 0 ? { workers, warning: warnings.map((l) => l.reason).join('; ') } : { workers };
}

/** Runs the primary until every worker has stopped; resolves with the exit code. */
export function superviseWorkers(count: number, log: Logger): Promise<number> {
  // The kernel hands out connections, not the primary. node's round robin
  // accepts each connection itself and passes it to a worker, holding it
  // until that worker says it took it: a worker killed from outside (SIGKILL,
  // the OOM killer) before answering left that connection open in the
  // primary, out of reach, and its client hung until its own timeout. A
  // worker that is not accepting (dead, stopped) is handed nothing this way.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  return new Promise((resolve) => {
    let stopping = false;
    let exitCode = 0;
    const live = new Set<Worker>();
    let restarts = 0;
    /** Worker slots: a replacement takes the slot (so the routing port) of the worker it replaces. */
    const slots = new Map<Worker, number>();
    const siblingSecret = randomBytes(32).toString('base64url');
    const fork = (slot: number): void => {
      const worker = cluster.fork({ MODELGATE_WORKER: '1', [SLOT_ENV]: `${slot}/${count}`, [SECRET_ENV]: siblingSecret });
      live.add(worker);
      slots.set(worker, slot);
    };
    cluster.on('exit', (worker, code, signal) => {
      live.delete(worker);
      const slot = slots.get(worker) ?? 0;
      slots.delete(worker);
      if (!stopping && FATAL_EXITS.has(code ?? 0)) {
        log.error({ pid: worker.process.pid, code }, 'a worker cannot start (configuration or port); stopping all');
        exitCode = code!;
        stop();
      } else if (!stopping) {
        // Capped: a worker that dies at once, over and over, is not worth a tight loop.
        const delay = Math.min(5_000, 100 * 2 ** Math.min(restarts++, 6));
        log.error({ pid: worker.process.pid, code, signal, restartInMs: delay }, 'worker exited; starting another');
        setTimeout(() => fork(slot), delay).unref();
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
    for (let i = 0; i < count; i++) fork(i);
    log.info({ workers: count, pid: process.pid }, 'gateway primary started its workers');
  });
}

/**
 * In a worker: the primary's shutdown message drains this process as SIGTERM
 * would (unless a signal already did). Returns `ready`, to call once the
 * process's own SIGTERM handler is installed: a shutdown asked for while the
 * worker was still starting (message or signal) is delivered then, instead
 * of being swallowed and leaving a worker that never stops.
 */
export function followPrimaryShutdown(): () => void {
  if (!cluster.isWorker) return () => undefined;
  let ready = false;
  let pending = false;
  let signalled = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      signalled = true;
      if (!ready) pending = true;
    });
  }
  const drain = (): void => {
    if (signalled) return;
    if (ready) process.kill(process.pid, 'SIGTERM');
    else pending = true;
  };
  process.on('message', (message) => {
    if (message === SHUTDOWN) drain();
  });
  // The primary is gone (killed): no worker outlives it.
  process.once('disconnect', drain);
  return () => {
    ready = true;
    if (pending) process.kill(process.pid, 'SIGTERM');
  };
}
