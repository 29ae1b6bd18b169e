// The store as the gateway uses it: the same SqliteStore or PostgresStore,
// hosted in a worker thread, so recording costs the gateway's event loop
// little more than packing events into a message.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { NewEvent, StoredEvent } from './events.js';
import { packEvents } from './store-worker.js';
import type { StorageConfig } from './config.js';
import type { WorkerReply, WorkerRequest } from './store-worker.js';
import {
  RejectedWriteError,
  SessionStateError,
  StorageUnavailableError,
  type AuditStore,
  type ChainHead,
  type ContentRewrite,
  type DeleteOutcome,
  type ExpiredQuery,
  type RecorderInstance,
  type SessionQuery,
  type SessionRow,
  type ThreadHeap,
} from './store.js';

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

/** Waits before starting the store thread again after it died: at once, then backing off while it keeps failing to start. */
const RESTART_MS = [0, 100, 250, 500, 1_000, 2_000, 5_000];

export class WorkerStore implements AuditStore {
  transactions = 0;
  /** How many times the store thread was started again after it died. */
  restarts = 0;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** Set while the store thread is down (calls fail at once: fail closed) and for good once closed. */
  private failure: Error | undefined;
  private closed = false;
  private worker!: Worker;

  private constructor(
    readonly driver: 'sqlite' | 'postgres',
    private readonly storage: StorageConfig,
    worker: Worker,
    /** The store thread's OS thread id (Linux), for measuring its CPU apart from the event loop's. */
    public osThreadId: number | undefined,
  ) {
    this.attach(worker);
  }

  static async open(storage: StorageConfig): Promise<WorkerStore> {
    const { worker, osThreadId } = await startReady(storage);
    return new WorkerStore(storage.driver, storage, worker, osThreadId);
  }

  private attach(worker: Worker): void {
    this.worker = worker;
    worker.unref();
    worker.on('message', (reply: WorkerReply) => {
      if (!('id' in reply)) return;
      const call = this.pending.get(reply.id);
      if (!call) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if (reply.ok) call.resolve(reply.result);
      else call.reject(rehydrate(reply.error));
    });
    let gone = false;
    // Whatever killed the thread (a bug, an out-of-memory, a native crash): what was asked of it fails as a storage
    // outage, so recording fails closed, and a new thread takes over (the database is the state; the thread holds none).
    const died = (err: Error): void => {
      if (gone) return;
      gone = true;
      this.failure = new StorageUnavailableError(`the audit store worker stopped: ${err.message}`, { cause: err });
      for (const call of this.pending.values()) call.reject(this.failure);
      this.pending.clear();
      if (!this.closed) this.restart(0);
    };
    worker.on('error', died);
    worker.on('exit', (code) => died(new Error(`exit code ${code}`)));
  }

  private restart(attempt: number): void {
    const timer = setTimeout(
      () => {
        startReady(this.storage).then(
          ({ worker, osThreadId }) => {
            if (this.closed) return void worker.terminate();
            this.restarts++;
            this.osThreadId = osThreadId;
            this.failure = undefined;
            this.attach(worker);
          },
          () => {
            if (!this.closed) this.restart(attempt + 1);
          },
        );
      },
      RESTART_MS[Math.min(attempt, RESTART_MS.length - 1)],
    );
    timer.unref();
  }

  private call<T>(method: string, args: unknown[], transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.worker.ref();
      this.worker.postMessage({ id, method, args } satisfies WorkerRequest, transfer);
    });
  }

  async append(events: NewEvent[], options: { replay?: boolean } = {}): Promise<Array<number | null>> {
    const { text, bytes } = packEvents(events);
    const { seqs, transactions } = await this.call<{ seqs: Array<number | null>; transactions: number }>('appendPacked', [text, bytes, options.replay ?? false], [
      bytes.buffer as ArrayBuffer,
    ]);
    this.transactions = transactions;
    return seqs;
  }
  registerInstance(instance: RecorderInstance): Promise<void> {
    return this.call('registerInstance', [instance]);
  }
  heartbeat(id: string, atMs: number): Promise<void> {
    return this.call('heartbeat', [id, atMs]);
  }
  closeInstance(id: string, atMs: number): Promise<void> {
    return this.call('closeInstance', [id, atMs]);
  }
  unclosedInstances(): Promise<RecorderInstance[]> {
    return this.call('unclosedInstances', []);
  }
  openSessions(instanceIds: string[]): Promise<string[]> {
    return this.call('openSessions', [instanceIds]);
  }
  chainHead(): Promise<ChainHead> {
    return this.call('chainHead', []);
  }
  getSession(id: string): Promise<SessionRow | undefined> {
    return this.call('getSession', [id]);
  }
  listSessions(query: SessionQuery): Promise<SessionRow[]> {
    return this.call('listSessions', [query]);
  }
  scanSessions(afterId: string, limit: number): Promise<SessionRow[]> {
    return this.call('scanSessions', [afterId, limit]);
  }
  sessionEvents(sessionId: string, withContent: boolean): Promise<StoredEvent[]> {
    return this.call('sessionEvents', [sessionId, withContent]);
  }
  eventsOfSessions(sessionIds: string[]): Promise<StoredEvent[]> {
    return this.call('eventsOfSessions', [sessionIds]);
  }
  readEvents(afterSeq: number, limit: number, options?: { withContent?: boolean; kinds?: readonly string[]; sinceMs?: number }): Promise<StoredEvent[]> {
    return this.call('readEvents', [afterSeq, limit, options]);
  }
  sessionIdsOfSubject(subject: string, issuer?: string): Promise<string[]> {
    return this.call('sessionIdsOfSubject', [subject, issuer]);
  }
  expiredSessions(query: ExpiredQuery): Promise<string[]> {
    return this.call('expiredSessions', [query]);
  }
  rewriteContents(sessionId: string, rewrites: ContentRewrite[], evidence: NewEvent & { kind: 'redaction' }): Promise<{ seq: number }> {
    return this.call('rewriteContents', [sessionId, rewrites, evidence]);
  }
  deleteSessions(ids: string[], evidence: NewEvent & { kind: 'retention.delete' | 'session.delete' }): Promise<DeleteOutcome> {
    return this.call('deleteSessions', [ids, evidence]);
  }
  indexEnded(limit: number): Promise<number> {
    return this.call('indexEnded', [limit]);
  }
  purge(): Promise<void> {
    return this.call('purge', []);
  }
  reclaimMemory(): Promise<ThreadHeap> {
    return this.call('reclaimMemory', []);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.failure) await this.call('close', []).catch(() => {});
    this.failure = new StorageUnavailableError('the audit store is closed');
    await this.worker.terminate();
  }
}

function rehydrate(error: { name: string; message: string; sessionId?: string; reason?: string }): Error {
  if (error.name === 'SessionStateError' && error.sessionId && error.reason) {
    return new SessionStateError(error.sessionId, error.reason as SessionStateError['reason']);
  }
  if (error.name === 'StorageUnavailableError') return new StorageUnavailableError(error.message);
  if (error.name === 'RejectedWriteError') return new RejectedWriteError(error.message);
  const err = new Error(error.message);
  err.name = error.name;
  return err;
}

/** Starts the store thread and waits until its store is open. */
async function startReady(storage: StorageConfig): Promise<{ worker: Worker; osThreadId: number | undefined }> {
  const worker = startWorker(storage);
  const osThreadId = await new Promise<number | undefined>((resolve, reject) => {
    const onMessage = (reply: WorkerReply): void => {
      if (!('ready' in reply)) return;
      worker.off('message', onMessage);
      worker.off('error', onError);
      if (reply.ready) resolve(reply.osThreadId);
      else {
        void worker.terminate();
        reject(new StorageUnavailableError(reply.error.message));
      }
    };
    const onError = (err: Error): void => reject(new StorageUnavailableError(`the audit store worker failed to start: ${err.message}`, { cause: err }));
    worker.on('message', onMessage);
    worker.once('error', onError);
  });
  return { worker, osThreadId };
}

/**
 * Compiled builds load store-worker.js beside this file. Running from source
 * under tsx, the worker must register tsx itself: loader hooks of the main
 * thread do not reach worker threads on Node 20.
 */
function startWorker(storage: StorageConfig): Worker {
  const compiled = new URL('./store-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(compiled))) return new Worker(compiled, { workerData: storage });
  const source = new URL('./store-worker.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  return new Worker(`import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(source)}); })`, {
    eval: true,
    workerData: storage,
    execArgv: [],
  });
}
