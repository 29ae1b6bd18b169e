// `node --import tsx bench/recording-store.ts`: the store's own CPU per
// recorded session, on the calling thread (no worker), split into the
// write-ahead commits and the search-indexing pass that runs after them.
// Sessions are recorded once through a Recorder whose store only captures
// the batches (begin with request and forwarded body, 16 streamed chunks,
// end, 25 sessions at a time), then the same events are appended to the
// real store in commits of 100 events, as the group commit makes them, and
// indexed by `indexEnded` passes. CPU time (process.cpuUsage), so it holds
// up better than throughput on a busy machine.
//
// Env: BENCH_SESSIONS (4000), BENCH_STORES (sqlite,postgres), BENCH_PG_URL, BENCH_PROMPT_BYTES (about 28:
// the prompt's size).
import { mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { recordingSchema, storageSchema, type StorageConfig } from '../src/audit/config.js';
import type { NewEvent } from '../src/audit/events.js';
import { Recorder } from '../src/audit/recorder.js';
import { openStore, type AuditStore } from '../src/audit/store.js';

const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 4000);
const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const principal = { issuer: 'https://idp.bench', subject: 'bench-user', email: 'bench@example.com', groups: ['ci'], expiresAt: 0 };
const PROMPT = 'Say hello to the benchmark. '.repeat(Math.max(1, Math.round(Number(process.env.BENCH_PROMPT_BYTES ?? 28) / 28)));
const requestBody = { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: PROMPT.trim() }] };
// As the pipeline forwards a stream whose client did not ask for usage: the body received, plus the gateway's stream_options.
const forwardedBody = { ...requestBody, stream_options: { include_usage: true } };
const frame = `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: ' word' } }] })}\n\n`;

/** The batches a recorder makes for SESSIONS sessions, captured rather than stored. */
async function recordedBatches(store: AuditStore): Promise<NewEvent[]> {
  const events: NewEvent[] = [];
  const capture = new Proxy(store, {
    get: (target, key) =>
      key === 'append' ? async (batch: NewEvent[]) => (events.push(...batch), batch.map((_, i) => events.length - batch.length + i + 1)) : key === 'indexEnded' ? async () => 0 : Reflect.get(target, key),
  });
  const recorder = await Recorder.open(capture, recordingSchema.parse({ commit_interval: '2ms' }));
  for (let b = 0; b < SESSIONS / 25; b++) {
    await Promise.all(
      Array.from({ length: 25 }, async (_, i) => {
        const writer = await recorder.beginSession({ id: `req_${b}_${i}_${Math.random().toString(36).slice(2)}`, receivedAt: Date.now(), principal, connection: 'bench', model: 'demo-chat', operation: 'chat', stream: true, requestBody, forwardedBody: forwardedBody });
        // With its words, as the relay passes them from the usage meter's parse of the frame.
        for (let c = 0; c < 16; c++) writer.chunk(frame, c * 3, ' word');
        await writer.end({ state: 'completed', status: 200, latencyMs: 50 });
      }),
    );
  }
  await recorder.close({ closeStore: false });
  return events;
}

const cpuUs = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

async function measure(name: string, storage: StorageConfig): Promise<Record<string, unknown>> {
  const store = await openStore(storage);
  try {
    const events = await recordedBatches(store);
    let t = cpuUs();
    for (let i = 0; i < events.length; i += 100) await store.append(events.slice(i, i + 100));
    const commitUs = (cpuUs() - t) / SESSIONS;
    t = cpuUs();
    while ((await store.indexEnded(500)) > 0);
    const indexUs = (cpuUs() - t) / SESSIONS;
    return { store: name, sessions: SESSIONS, events: events.length, commitUsPerSession: Math.round(commitUs), indexUsPerSession: Math.round(indexUs) };
  } finally {
    await store.close();
  }
}

const dir = mkdtempSync(join(tmpdir(), 'modelgate-bench-recording-store-'));
const schema = `mgbench_store_${process.pid}`;
const stores = (process.env.BENCH_STORES ?? 'sqlite,postgres').split(',');
console.log(`machine: ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, node ${process.version}`);
try {
  const rows = [];
  if (stores.includes('sqlite')) rows.push(await measure('sqlite (synchronous=normal)', storageSchema.parse({ sqlite: { path: join(dir, 'a.db'), synchronous: 'normal' } })));
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
