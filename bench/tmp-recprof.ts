import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storageSchema, recordingSchema } from '../src/audit/config.js';
import { Recorder } from '../src/audit/recorder.js';
import { openStore } from '../src/audit/store.js';
const dir = mkdtempSync(join(tmpdir(), 'recprof-'));
const storage = process.env.PG ? storageSchema.parse({ driver: 'postgres', postgres: { url: 'postgres://postgres@127.0.0.1:5432/test', schema: `recprof_${process.pid}`, pool_size: 8 } }) : storageSchema.parse({ sqlite: { path: join(dir, 'a.db'), synchronous: (process.env.SYNC ?? 'full') as 'full' } });
const store = await openStore(storage, { thread: process.env.MAIN ? 'main' : 'worker' });
const recorder = await Recorder.open(store, recordingSchema.parse({ commit_interval: '2ms' }));
const principal = { issuer: 'https://idp.bench', subject: 'bench-user', email: 'bench@example.com', groups: ['ci'], expiresAt: 0 } as never;
const requestBody = { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'Say hello to the benchmark.' }] };
const frame = `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: ' word' } }] })}\n\n`;
const threadTicks = (path: string) => { const f = readFileSync(path, 'utf8').split(') ')[1]!.split(' '); return Number(f[11]) + Number(f[12]); };
const self = readlinkSync('/proc/thread-self');
const t0 = threadTicks(`/proc/${self}/stat`); const p0 = process.cpuUsage();
let sessions = 0; const deadline = performance.now() + 5000;
await Promise.all(Array.from({ length: 50 }, async (_, w) => {
  for (let i = 0; performance.now() < deadline; i++) {
    const writer = recorder.startSession({ id: `req_${w}_${i}_${randomBytes(4).toString('hex')}`, receivedAt: Date.now(), principal, connection: 'bench', model: 'demo-chat', operation: 'chat', stream: true, requestBody });
    await writer.forwarded(requestBody, undefined);
    for (let c = 0; c < 16; c++) writer.chunk(frame, c * 3);
    await writer.end({ state: 'completed', status: 200, latencyMs: 50 });
    sessions++;
  }
}));
const main = (threadTicks(`/proc/${self}/stat`) - t0) * 10_000; const p = process.cpuUsage(p0);
console.log(JSON.stringify({ sessions, mainUsPerSession: Math.round(main / sessions), processUsPerSession: Math.round((p.user + p.system) / sessions), stats: recorder.stats }));
await recorder.close();
process.exit(0);
