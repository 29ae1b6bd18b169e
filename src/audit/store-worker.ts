// Worker thread entry: hosts the audit store off the gateway's event loop:
// SQLite's synchronous writes and fsyncs, PostgreSQL's protocol encoding
// and parsing. Speaks a small request/response protocol with WorkerStore.
// Also imported on the main thread for `packEvents`; it serves only inside
// a worker.
import { readlinkSync, writeFileSync } from 'node:fs';
import v8 from 'node:v8';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { ContentPart, NewEvent } from './events.js';
import type { StorageConfig } from './config.js';
import type { AuditStore, ThreadHeap } from './store.js';
import { releaseHeap } from '../ops/heap.js';

/** The store thread's name in the OS (at most 15 bytes). */
export const STORE_THREAD_NAME = 'audit-store';

export interface WorkerRequest {
  id: number;
  method: string;
  args: unknown[];
}

export type WorkerReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { name: string; message: string; sessionId?: string; reason?: string } }
  | { ready: true; osThreadId?: number }
  | { ready: false; error: { name: string; message: string } };

/**
 * An event's content parts, packed: five numbers a part (its number, then the
 * offset and length of its data in the packed buffer, then of its nonce: -1
 * and 0 when it has none), and their key ids only when some part is
 * encrypted. Numbers, not an object and two arrays a part: JSON.stringify
 * looks for a `toJSON` on every object and array it meets, and that lookup
 * was a good part of packing's cost.
 */
const PART_FIELDS = 5;
type PackedEvent = Omit<NewEvent, 'parts'> & { parts?: number[]; keyIds?: Array<string | null> };

/**
 * Events cross to the worker as one JSON string plus one transferred buffer
 * holding every content part: far cheaper for the gateway's thread than
 * structured-cloning nested objects and pooled Buffer views.
 */
export function packEvents(events: readonly NewEvent[]): { text: string; bytes: Uint8Array } {
  let size = 0;
  for (const e of events) for (const p of e.parts ?? []) size += p.data.byteLength + (p.nonce?.byteLength ?? 0);
  const bytes = new Uint8Array(size);
  let offset = 0;
  const place = (b: Uint8Array): number => {
    bytes.set(b, offset);
    offset += b.byteLength;
    return offset - b.byteLength;
  };
  // Pushed, not mapped: map's result is a holey array, which JSON.stringify serializes element by element the slow way.
  const packed: PackedEvent[] = [];
  for (const e of events) {
    let parts: number[] | undefined;
    let keyIds: Array<string | null> | undefined;
    if (e.parts) {
      parts = [];
      for (const p of e.parts) {
        parts.push(p.part, place(p.data), p.data.byteLength, p.nonce ? place(p.nonce) : -1, p.nonce?.byteLength ?? 0);
        if (p.keyId !== null) keyIds = e.parts.map((q) => q.keyId);
      }
    }
    // One object literal of one shape per event (undefined members are left out of the JSON): cheaper than copying
    // each event with a rest spread, which V8 does member by member.
    packed.push({
      kind: e.kind,
      sessionId: e.sessionId,
      n: e.n,
      atMs: e.atMs,
      meta: e.meta,
      precondition: e.precondition,
      indexText: e.indexText,
      parts,
      keyIds,
    } as PackedEvent);
  }
  return { text: JSON.stringify(packed), bytes };
}

function unpackEvents(text: string, bytes: Uint8Array): NewEvent[] {
  const events = JSON.parse(text) as PackedEvent[];
  // Freshly parsed: the packed parts are swapped for parts viewing the buffer, in place.
  for (const e of events) {
    const packed = e.parts;
    if (packed === undefined) continue;
    const parts: ContentPart[] = [];
    for (let i = 0; i < packed.length; i += PART_FIELDS) {
      const data = packed[i + 1]!;
      const nonce = packed[i + 3]!;
      parts.push({
        part: packed[i]!,
        keyId: e.keyIds?.[i / PART_FIELDS] ?? null,
        nonce: nonce < 0 ? null : bytes.subarray(nonce, nonce + packed[i + 4]!),
        data: bytes.subarray(data, data + packed[i + 2]!),
      });
    }
    (e as unknown as NewEvent).parts = parts;
  }
  return events as unknown as NewEvent[];
}

async function serve(): Promise<void> {
  const port = parentPort!;
  const storage = workerData as StorageConfig;
  let store: AuditStore;
  try {
    store =
      storage.driver === 'postgres'
        ? await (await import('./postgres-store.js')).PostgresStore.open(storage.postgres!)
        : (await import('./sqlite-store.js')).SqliteStore.openSync(storage.sqlite);
  } catch (err) {
    port.postMessage({ ready: false, error: { name: (err as Error).name, message: (err as Error).message } } satisfies WorkerReply);
    return;
  }
  const methods = store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const appendPacked = async (text: string, bytes: Uint8Array, replay: boolean): Promise<unknown> => ({
    seqs: await store.append(unpackEvents(text, bytes), { replay }),
    transactions: store.transactions,
  });
  // This thread's heap grows with a burst's messages like the gateway's: collected here, where it lives.
  const reclaimMemory = async (): Promise<unknown> => {
    const before = v8.getHeapStatistics();
    await store.reclaimMemory?.();
    await releaseHeap();
    const after = v8.getHeapStatistics();
    return { usedBytes: [before.used_heap_size, after.used_heap_size], heldBytes: [before.total_heap_size, after.total_heap_size] } satisfies ThreadHeap;
  };
  const ownMethods = new Map<string, (...args: unknown[]) => Promise<unknown>>([
    ['appendPacked', appendPacked as (...args: unknown[]) => Promise<unknown>],
    ['reclaimMemory', reclaimMemory],
  ]);
  port.on('message', (request: WorkerRequest) => {
    const reply = (message: WorkerReply): void => port.postMessage(message);
    const method = ownMethods.get(request.method) ?? methods[request.method];
    if (typeof method !== 'function') {
      reply({ id: request.id, ok: false, error: { name: 'Error', message: `unknown store method ${request.method}` } });
      return;
    }
    method.apply(store, request.args).then(
      (result) => reply({ id: request.id, ok: true, result }),
      (err: Error & { sessionId?: string; reason?: string }) =>
        reply({ id: request.id, ok: false, error: { name: err.name, message: err.message, sessionId: err.sessionId, reason: err.reason } }),
    );
  });
  port.postMessage({ ready: true, osThreadId: osThreadId() } satisfies WorkerReply);
}

/**
 * This thread's id in the OS (Linux), so CPU spent storing can be told from the gateway's own (bench/recording.ts).
 * The thread is also named STORE_THREAD_NAME (Node names every thread `node`), so top -H, perf and
 * /proc/PID/task/TID/comm tell it apart from outside the process (bench/run.ts).
 */
function osThreadId(): number | undefined {
  try {
    writeFileSync('/proc/thread-self/comm', STORE_THREAD_NAME);
  } catch {
    /* not Linux: the name is only a convenience */
  }
  try {
    return Number(readlinkSync('/proc/thread-self').split('/').pop()) || undefined;
  } catch {
    return undefined;
  }
}

if (!isMainThread && parentPort) await serve();
