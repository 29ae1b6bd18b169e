// `node --import tsx bench/recording-store.ts`: the store's own CPU per
// recorded session, split into the write-ahead commits and the
// search-indexing pass that runs after them. Sessions are recorded once
// through a Recorder whose store only captures the batches, then the same
// events are appended to the real store in commits of BENCH_COMMIT_EVENTS
// events, as the group commit makes them, and indexed by `indexEnded`
// passes. The first half is appended unmeasured (JIT warm-up), the second
// half measured. CPU time, so it holds up better than throughput on a busy
// machine; PostgreSQL's server is counted apart (its backends serving this
// process).
//
// Shapes (BENCH_STREAM): streamed (default: begin with request and
// forwarded body, 16 chunks, end) or `0`, non-streamed as `npm run bench`'s
// c=50 sends them (the body forwarded as received, the whole answer one
// chunk, the end with usage).
//
// Env: BENCH_SESSIONS (4000 measured), BENCH_STORES (sqlite,postgres),
// BENCH_PG_URL, BENCH_PROMPT_BYTES (about 28: the prompt's size),
// BENCH_COMMIT_EVENTS (100), BENCH_STREAM, BENCH_SYNCHRONOUS (normal; the
// gateway's default is full), BENCH_THREAD=worker to host the
// store in its worker thread as the gateway does (then the calling thread,
// the store thread and the other threads are reported apart).
//
// BENCH_CALLGRIND=1, with node run under `valgrind --tool=callgrind
// --instr-atstart=no --separate-threads=yes`: instructions instead of time
// (load does not move them). Instrumentation is switched on for three
// phases, each dumped apart in this order: the recorder building the
// measured half's events (what the gateway's thread does per request,
// without the store), the measured commits (the calling thread packing and
// posting, the store thread storing), and the indexing passes.
// BENCH_COMMIT_INTERVAL (2ms): the recorder's commit_interval.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { recordingSchema, storageSchema, type StorageConfig } from '../src/audit/config.js';
import { generatedText } from '../src/audit/content-text.js';
import type { NewEvent } from '../src/audit/events.js';
import { Recorder } from '../src/audit/recorder.js';
import { openStore, type AuditStore } from '../src/audit/store.js';
import type { WorkerStore } from '../src/audit/worker-store.js';
import { backendQuery, cpuTicksOf, CLK_TCK, postgresBackendsOf } from './targets.js';

const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 4000);
const COMMIT_EVENTS = Number(process.env.BENCH_COMMIT_EVENTS ?? 100);
const STREAM = process.env.BENCH_STREAM !== '0';
const SYNCHRONOUS = process.env.BENCH_SYNCHRONOUS === 'full' ? 'full' : 'normal';
const THREAD = process.env.BENCH_THREAD === 'worker' ? 'worker' : 'main';
const TICK_US = 1e6 / CLK_TCK;
const CALLGRIND = process.env.BENCH_CALLGRIND === '1';
const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const principal = { issuer: 'https://idp.bench', subject: 'bench-user', email: 'bench@example.com', groups: ['ci'], expiresAt: 0 };
const PROMPT = 'Say hello to the benchmark. '.repeat(Math.max(1, Math.round(Number(process.env.BENCH_PROMPT_BYTES ?? 28) / 28)));
const requestBody = { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: PROMPT.trim() }] };
// As the pipeline forwards a stream whose client did not ask for usage: the body received, plus the gateway's stream_options.
const forwardedBody = { ...requestBody, stream_options: { include_usage: true } };
const frame = `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: ' word' } }] })}\n\n`;
// Non-streamed: the body as a client sends it, and the mock model's answer (bench/targets.ts).
const plainBody = { model: 'demo-chat', messages: [{ role: 'user', content: PROMPT.trim() }] };
const answer = JSON.stringify({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'demo-chat',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hello! This is a demo answer from the mock model for the benchmark.' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 9, completion_tokens: 14, total_tokens: 23 },
});

const answerWords = generatedText(JSON.parse(answer));

/** The batches a recorder makes for SESSIONS sessions, captured rather than stored. */
async function recordedBatches(store: AuditStore): Promise<NewEvent[]> {
  const events: NewEvent[] = [];
  const capture = new Proxy(store, {
    get: (target, key) =>
      key === 'append' ? async (batch: NewEvent[]) => (events.push(...batch), batch.map((_, i) => events.length - batch.length + i + 1)) : key === 'indexEnded' ? async () => 0 : Reflect.get(target, key),
  });
  // BENCH_COMMIT_INTERVAL=0ms under callgrind: group commits by turns of the event loop, not by the clock, so the
  // recorder's phase counts the same work in every run.
  const recorder = await Recorder.open(capture, recordingSchema.parse({ commit_interval: process.env.BENCH_COMMIT_INTERVAL ?? '2ms' }));
  const id = (b: number, i: number): string => `req_${String(b).padStart(6, '0')}_${i}_${Math.random().toString(36).slice(2)}`;
  for (let b = 0; b < (2 * SESSIONS) / 25; b++) {
    if (b === SESSIONS / 25) await callgrind('-i on');
    await Promise.all(
      Array.from({ length: 25 }, async (_, i) => {
        if (!STREAM) {
          // As the pipeline records a plain chat completion: start, forwarded (durable), the answer, end.
          const writer = recorder.startSession({ id: id(b, i), receivedAt: Date.now(), principal, clientIp: '127.0.0.1', userAgent: 'autocannon', connection: 'bench', model: 'demo-chat', operation: 'chat', stream: false, requestBody: plainBody });
          await writer.forwarded(plainBody, 'demo-chat');
          writer.chunk(answer, 3);
          // Its words, as the relay hands them over from the usage meter's parse of the body (which it makes anyway).
          writer.answered(answerWords);
          await writer.end({ state: 'completed', status: 200, usage: { prompt_tokens: 9, completion_tokens: 14, total_tokens: 23 }, latencyMs: 4 });
          return;
        }
        const writer = await recorder.beginSession({ id: id(b, i), receivedAt: Date.now(), principal, connection: 'bench', model: 'demo-chat', operation: 'chat', stream: true, requestBody, forwardedBody: forwardedBody });
        // With its words, as the relay passes them from the usage meter's parse of the frame.
        for (let c = 0; c < 16; c++) writer.chunk(frame, c * 3, ' word');
        await writer.end({ state: 'completed', status: 200, latencyMs: 50 });
      }),
    );
  }
  await callgrind('-i off');
  await callgrind('-d');
  await recorder.close({ closeStore: false });
  return events;
}

/** Under callgrind: instrumentation on or off for this process (from another process, as callgrind_control runs), or a dump. */
async function callgrind(command: '-i on' | '-i off' | '-d'): Promise<void> {
  if (!CALLGRIND) return;
  await promisify(execFile)('callgrind_control', [...command.split(' '), String(process.pid)]);
}

/** Counts `run` under callgrind, as a dump of its own. */
async function counted<T>(run: () => Promise<T>): Promise<T> {
  await callgrind('-i on');
  const result = await run();
  await callgrind('-i off');
  await callgrind('-d');
  return result;
}

const cpuUs = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/** CPU ticks of each thread of this process, by thread id. */
function threadTicks(): Map<number, number> {
  return new Map(readdirSync('/proc/self/task').map((tid) => [Number(tid), cpuTicksOf(process.pid, Number(tid))]));
}

async function measure(name: string, storage: StorageConfig): Promise<Record<string, unknown>> {
  const store = await openStore(storage, { thread: THREAD });
  const serverTicks = async (): Promise<number> => {
    if (storage.driver !== 'postgres') return 0;
    let ticks = 0;
    for (const pid of await postgresBackendsOf(process.pid, backendQuery(PG_URL))) ticks += cpuTicksOf(pid);
    return ticks;
  };
  try {
    const events = await recordedBatches(store);
    const half = events.findIndex((e) => e.sessionId.startsWith(`req_${String(SESSIONS / 25).padStart(6, '0')}_`));
    // Warm-up: the first half, unmeasured.
    for (let i = 0; i < half; i += COMMIT_EVENTS) await store.append(events.slice(i, Math.min(half, i + COMMIT_EVENTS)));
    while ((await store.indexEnded(500)) > 0);
    const threads = threadTicks();
    const server = await serverTicks();
    let t = cpuUs();
    await counted(async () => {
      for (let i = half; i < events.length; i += COMMIT_EVENTS) await store.append(events.slice(i, i + COMMIT_EVENTS));
    });
    const commitUs = (cpuUs() - t) / SESSIONS;
    const threadsAfter = threadTicks();
    const commitServer = await serverTicks();
    const split = { calling: 0, store: 0, other: 0 };
    const storeTid = (store as Partial<WorkerStore>).osThreadId;
    for (const [tid, ticks] of threadsAfter) {
      const us = ((ticks - (threads.get(tid) ?? 0)) * TICK_US) / SESSIONS;
      if (tid === process.pid) split.calling += us;
      else if (tid === storeTid) split.store += us;
      else split.other += us;
    }
    t = cpuUs();
    await counted(async () => {
      while ((await store.indexEnded(500)) > 0);
    });
    const indexUs = (cpuUs() - t) / SESSIONS;
    const indexServer = await serverTicks();
    const row: Record<string, unknown> = { store: name, sessions: SESSIONS, eventsPerSession: round((events.length - half) / SESSIONS, 2), commitUsPerSession: Math.round(commitUs), indexUsPerSession: Math.round(indexUs) };
    if (THREAD === 'worker') Object.assign(row, { callingThreadUs: Math.round(split.calling), storeThreadUs: Math.round(split.store), otherThreadsUs: Math.round(split.other) });
    if (storage.driver === 'postgres') {
      row.serverCommitUsPerSession = Math.round(((commitServer - server) * TICK_US) / SESSIONS);
      row.serverIndexUsPerSession = Math.round(((indexServer - commitServer) * TICK_US) / SESSIONS);
    }
    return row;
  } finally {
    await store.close();
  }
}

const round = (n: number, digits = 0): number => Math.round(n * 10 ** digits) / 10 ** digits;

const dir = mkdtempSync(join(tmpdir(), 'modelgate-bench-recording-store-'));
const schema = `mgbench_store_${process.pid}`;
const stores = (process.env.BENCH_STORES ?? 'sqlite,postgres').split(',');
console.log(`machine: ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, node ${process.version}; ${STREAM ? 'streamed' : 'non-streamed'} sessions, commits of ${COMMIT_EVENTS} events, store on the ${THREAD} thread`);
try {
  const rows = [];
  if (stores.includes('sqlite')) rows.push(await measure(`sqlite (synchronous=${SYNCHRONOUS})`, storageSchema.parse({ sqlite: { path: join(dir, 'a.db'), synchronous: SYNCHRONOUS } })));
  if (stores.includes('postgres')) rows.push(await measure('postgres (this process only)', storageSchema.parse({ driver: 'postgres', postgres: { url: PG_URL, schema, pool_size: 4 } })));
  console.table(rows);
} finally {
  rmSync(dir, { recursive: true, force: true });
  if (stores.includes('postgres')) {
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect().then(() => client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)).catch(() => {});
    await client.end().catch(() => {});
  }
}
