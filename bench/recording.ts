// `node --import tsx bench/recording.ts`: what session recording costs.
//
//   1. Recorder throughput, in process: 50 concurrent simulated requests,
//      each a durable begin (request as received, and as forwarded with the
//      stream_options the gateway adds to ask for usage), 16
//      streamed chunks and an end, on SQLite (synchronous=FULL and NORMAL)
//      and PostgreSQL, the store in a worker thread as in the gateway.
//   2. End to end: streamed chat completions through the real gateway at
//      concurrency 50 against the mock model, with recording off, on SQLite
//      and on PostgreSQL, recorded by the pipeline's own wiring (the
//      `storage` and `recording` sections), and, to split the cost, with a
//      recorder spliced in at the transport whose store keeps nothing
//      (`no-storage`, see `recordThrough`).
//
// CPU per request (or session) is reported apart for the gateway's own
// threads (its event loop, GC, libuv), its store thread (the worker that
// hosts SQLite, or encodes PostgreSQL's protocol), and the PostgreSQL
// backends serving its connections (found by their client ports).
//
// Env: BENCH_DURATION (seconds per measured run, default 5), BENCH_ROUNDS
// (3), BENCH_PG_URL (postgres://postgres@127.0.0.1:5432/test),
// BENCH_COMMIT_INTERVAL (recording.commit_interval, default 2ms),
// BENCH_STREAM=0 for part 2 with non-streamed requests (as the main bench's c=50),
// BENCH_ONLY_E2E=1 to skip part 1, BENCH_ONLY_RECORDER=1 to run only part 1, BENCH_MODES=sqlite,postgres to run only
// those (and off), BENCH_GATEWAY_NODE_FLAGS for the gateway processes,
// BENCH_THREADS=1 to print each gateway's CPU per request by thread (main,
// store, the others by tid) after each run.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { recordingSchema, storageSchema, type StorageConfig } from '../src/audit/config.js';
import { configSchema } from '../src/config/schema.js';
import { startDevIdp } from '../src/dev/idp.js';
import { Gateway } from '../src/gateway.js';
import type { Transport, UpstreamResponse } from '../src/proxy/transport.js';
import { Recorder } from '../src/audit/recorder.js';
import { openStore, type AuditStore } from '../src/audit/store.js';
import { median, rotate, runLoad, type LoadRun } from './load.js';
import { backendQuery, CLK_TCK, cpuTicksOf, killAllChildren, postgresBackendsOf, startUpstream, stopAllChildren, threadTicksOf, type Target } from './targets.js';
import type { WorkerStore } from '../src/audit/worker-store.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DURATION_S = Number(process.env.BENCH_DURATION ?? 5);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const CONCURRENCY = 50;
/** Part 2: streamed chat completions (default), or non-streamed ones as in `npm run bench`'s c=50. */
const STREAM = process.env.BENCH_STREAM !== '0';
const TICK_US = 1e6 / CLK_TCK;
const UPSTREAM_KEY = 'bench-upstream-key';
const recordingConfig = recordingSchema.parse({ commit_interval: process.env.BENCH_COMMIT_INTERVAL ?? '2ms' });

const principal = { issuer: 'https://idp.bench', subject: 'bench-user', email: 'bench@example.com', groups: ['ci'], expiresAt: 0 };
const requestBody = { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'Say hello to the benchmark.' }] };
// As the pipeline forwards a stream whose client did not ask for usage: the body received, plus the gateway's stream_options.
const forwardedBody = { ...requestBody, stream_options: { include_usage: true } };
const frame = `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: ' word' } }] })}\n\n`;

// ------------------------------------------------------------ gateway mode

/**
 * The real gateway (JWT verification, access checks, relay, access logs to
 * /dev/null). Recording is the pipeline's own (config `recording` and
 * `storage`), except `no-storage`: recording off in the config and a
 * recorder over a store that keeps nothing spliced in at the transport.
 */
async function serveGateway(): Promise<void> {
  const mode = process.env.RECORDING_MODE ?? 'off';
  const storage = JSON.parse(process.env.RECORDING_STORAGE!) as StorageConfig | null;
  const config = configSchema.parse({
    ...JSON.parse(process.env.GATEWAY_CONFIG!),
    ...(storage ? { storage, recording: { enabled: true, commit_interval: `${recordingConfig.commit_interval}ms` } } : { recording: { enabled: false } }),
  });
  const gateway = new Gateway(config);
  const spliced = mode === 'no-storage' ? await Recorder.open(nullStore(), recordingConfig) : undefined;
  if (spliced) for (const [name, transport] of gateway.services.transports) recordThrough(transport, name, spliced);
  const url = await gateway.listen();
  const recorder = spliced ?? gateway.services.audit?.recorder;
  // The URL, then the recorder's store thread's OS id: the parent measures its CPU apart from the rest of the process.
  process.stderr.write(`${url} ${(recorder?.store as Partial<WorkerStore> | undefined)?.osThreadId ?? ''}\n`);
  const stop = (): void => {
    if (recorder) process.stderr.write(`${mode}: ${JSON.stringify(recorder.stats)}\n`);
    void gateway
      .close(1000)
      .then(() => spliced?.close())
      .finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
}

function recordThrough(transport: Transport, connection: string, recorder: Recorder): void {
  const send = transport.send.bind(transport);
  let counter = 0;
  transport.send = async (request) => {
    const receivedAt = Date.now();
    const body = JSON.parse(request.body ?? '{}') as Record<string, unknown>;
    const writer = await recorder.beginSession({
      id: request.headers['x-request-id'] ?? `req_bench_${counter++}`,
      receivedAt,
      principal,
      clientIp: '127.0.0.1',
      userAgent: 'autocannon',
      connection,
      model: String(body.model),
      operation: 'chat',
      stream: body.stream === true,
      requestBody: body,
      forwardedBody: body,
    });
    let response: UpstreamResponse;
    try {
      response = await send(request);
    } catch (err) {
      void writer.end({ state: 'upstream_failed', status: 502, latencyMs: Date.now() - receivedAt });
      throw err;
    }
    // Record each chunk as the relay stage pulls it, like the pipeline wiring does in relay's send().
    const stream = response.body;
    const iterate = stream[Symbol.asyncIterator].bind(stream);
    stream[Symbol.asyncIterator] = async function* (): AsyncGenerator<Buffer> {
      let state: 'completed' | 'aborted' = 'aborted';
      try {
        for await (const chunk of { [Symbol.asyncIterator]: iterate }) {
          writer.chunk((chunk as Buffer).toString('utf8'), Date.now() - receivedAt);
          yield chunk as Buffer;
        }
        state = 'completed';
      } finally {
        void writer.end({ state, status: response.status, latencyMs: Date.now() - receivedAt });
      }
    };
    return response;
  };
}

/** A store that commits instantly and keeps nothing: isolates the recorder's own cost from the database's. */
function nullStore(): AuditStore {
  let seq = 0;
  const none = async (): Promise<never[]> => [];
  return {
    driver: 'sqlite',
    transactions: 0,
    append: async (events) => events.map(() => ++seq),
    registerInstance: async () => {},
    heartbeat: async () => {},
    closeInstance: async () => {},
    unclosedInstances: none,
    openSessions: none,
    chainHead: async () => ({ seq, hash: '' }),
    getSession: async () => undefined,
    listSessions: none,
    scanSessions: none,
    sessionEvents: none,
    eventsOfSessions: none,
    readEvents: none,
    sessionIdsOfSubject: none,
    expiredSessions: none,
    rewriteContents: async () => ({ seq }),
    deleteSessions: async () => ({ deleted: [], held: [], open: [] }),
    indexEnded: async () => 0,
    purge: async () => {},
    close: async () => {},
  };
}

// ------------------------------------------------------------ measurements

interface ThroughputResult {
  store: string;
  sessionsPerS: number;
  eventsPerS: number;
  commits: number;
  eventsPerCommit: number;
  beginP50Ms: number;
  beginP99Ms: number;
  /** CPU per session: the recording process's event loop, its store thread, and the PostgreSQL backends serving it. */
  loopUs: number;
  storeThreadUs: number;
  databaseUs: number;
}

/** CPU ticks of a set of PostgreSQL backends (0 for SQLite); backends seen only at the end count from 0. */
function databaseTicks(pids: number[], before?: Map<number, number>): { total: number; each: Map<number, number> } {
  const each = new Map(pids.map((pid) => [pid, cpuTicksOf(pid)]));
  let total = 0;
  for (const [pid, ticks] of each) if (Number.isFinite(ticks)) total += ticks - (before?.get(pid) ?? 0);
  return { total, each };
}

const pgQuery = backendQuery(PG_URL);

async function recorderThroughput(label: string, storage: StorageConfig): Promise<ThroughputResult> {
  const store = await openStore(storage, { thread: 'worker' });
  const recorder = await Recorder.open(store, recordingConfig);
  const latencies: number[] = [];
  let sessions = 0;
  const storeTid = (store as WorkerStore).osThreadId;
  const backends = storage.driver === 'postgres' ? await postgresBackendsOf(process.pid, pgQuery) : [];
  const loopTicks = cpuTicksOf(process.pid, process.pid);
  const storeTicks = storeTid ? cpuTicksOf(process.pid, storeTid) : NaN;
  const dbBefore = databaseTicks(backends);
  const deadline = performance.now() + DURATION_S * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, worker) => {
      for (let i = 0; performance.now() < deadline; i++) {
        const t = performance.now();
        const writer = await recorder.beginSession({
          id: `req_${worker}_${i}_${randomBytes(4).toString('hex')}`,
          receivedAt: Date.now(),
          principal,
          connection: 'bench',
          model: 'demo-chat',
          operation: 'chat',
          stream: true,
          requestBody,
          forwardedBody: forwardedBody,
        });
        latencies.push(performance.now() - t);
        // With its words, as the relay passes them from the usage meter's parse of the frame.
        for (let c = 0; c < 16; c++) writer.chunk(frame, c * 3, ' word');
        await writer.end({ state: 'completed', status: 200, latencyMs: 50 });
        sessions++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const loopUs = ((cpuTicksOf(process.pid, process.pid) - loopTicks) * TICK_US) / sessions;
  const storeThreadUs = storeTid ? ((cpuTicksOf(process.pid, storeTid) - storeTicks) * TICK_US) / sessions : NaN;
  const databaseUs = storage.driver === 'postgres' ? (databaseTicks(await postgresBackendsOf(process.pid, pgQuery), dbBefore.each).total * TICK_US) / sessions : 0;
  const { commits, events } = recorder.stats;
  await recorder.close();
  latencies.sort((a, b) => a - b);
  return {
    store: label,
    sessionsPerS: round(sessions / elapsed),
    eventsPerS: round(events / elapsed),
    commits,
    eventsPerCommit: round(events / commits),
    beginP50Ms: round(latencies[Math.floor(latencies.length / 2)] ?? NaN, 2),
    beginP99Ms: round(latencies[Math.floor(latencies.length * 0.99)] ?? NaN, 2),
    loopUs: round(loopUs),
    storeThreadUs: round(storeThreadUs),
    databaseUs: round(databaseUs),
  };
}

interface GatewayProcess {
  url: string;
  child: ChildProcess;
  /** The store thread's OS id inside the gateway process, when recording. */
  storeTid?: number;
}

async function startGateway(mode: string, gatewayConfig: unknown, storage?: StorageConfig): Promise<GatewayProcess> {
  const flags = (process.env.BENCH_GATEWAY_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
  const child = spawn(process.execPath, [...flags, '--import', 'tsx', fileURLToPath(import.meta.url), 'gateway'], {
    cwd: ROOT,
    env: { ...process.env, RECORDING_MODE: mode, GATEWAY_CONFIG: JSON.stringify(gatewayConfig), RECORDING_STORAGE: JSON.stringify(storage ?? null) },
    // Access logs go to stdout, and stdout to /dev/null, as in bench/run.ts; the URL comes on stderr.
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString();
      if (!buffered.includes('\n')) return;
      child.stderr!.off('data', onData);
      child.stderr!.pipe(process.stderr);
      resolve(buffered.split('\n')[0]!.trim());
    };
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${mode} gateway exited during start-up (${code}): ${buffered}`)));
  });
  const [url, tid] = line.split(' ') as [string, string | undefined];
  // /readyz turns 200 once the IdP's keys are loaded.
  for (let i = 0; i < 100 && (await fetch(`${url}/readyz`).then((r) => r.status, () => 0)) !== 200; i++) await new Promise((r) => setTimeout(r, 100));
  return { url, child, ...(tid && { storeTid: Number(tid) }) };
}

async function stopGateway(p: GatewayProcess): Promise<void> {
  p.child.kill('SIGTERM');
  if (p.child.exitCode === null) await new Promise((r) => p.child.once('exit', r));
}

const THREADS = process.env.BENCH_THREADS === '1';

/** CPU per request by thread between two readings: the main thread, the store thread, the rest by name and their tid's offset from the pid (Node names every thread `node`; V8's helpers come first after the main thread). */
function threadBreakdown(pid: number, storeTid: number | undefined, before: Map<number, { ticks: number; systemTicks: number; switches: number }>, after: Map<number, { name: string; ticks: number; systemTicks: number; switches: number }>, requests: number): string {
  const groups = new Map<string, { ticks: number; systemTicks: number; switches: number }>();
  for (const [tid, { name, ticks, systemTicks, switches }] of after) {
    const label = tid === pid ? 'main' : tid === storeTid ? 'store' : `${name}+${tid - pid}`;
    const group = groups.get(label) ?? { ticks: 0, systemTicks: 0, switches: 0 };
    group.ticks += ticks - (before.get(tid)?.ticks ?? 0);
    group.systemTicks += systemTicks - (before.get(tid)?.systemTicks ?? 0);
    group.switches += switches - (before.get(tid)?.switches ?? 0);
    groups.set(label, group);
  }
  const us = (ticks: number): number => Math.round((ticks * TICK_US) / Math.max(1, requests));
  // Each thread's µs per request, then how many of them were kernel time and its sleeps (voluntary context switches) per 100 requests.
  return [...groups]
    .filter(([, { ticks }]) => ticks > 0)
    .sort((a, b) => b[1].ticks - a[1].ticks)
    .map(([label, { ticks, systemTicks, switches }]) => `${label} ${us(ticks)} (sys ${us(systemTicks)}, sleeps ${((100 * switches) / Math.max(1, requests)).toFixed(0)}%)`)
    .join(', ');
}

const round = (n: number, digits = 0): number => Math.round(n * 10 ** digits) / 10 ** digits;

async function main(): Promise<void> {
  process.on('exit', killAllChildren);
  const dir = mkdtempSync(join(tmpdir(), 'modelgate-bench-recording-'));
  const schema = `mgbench_${process.pid}`;
  const sqlite = (synchronous: 'full' | 'normal', name: string): StorageConfig => storageSchema.parse({ sqlite: { path: join(dir, `${name}.db`), synchronous } });
  const postgres = storageSchema.parse({ driver: 'postgres', postgres: { url: PG_URL, schema, pool_size: 8 } });
  console.log(`machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, node ${process.version}`);
  console.log(`settings: ${DURATION_S}s per run, ${ROUNDS} round(s), concurrency ${CONCURRENCY}, commit_interval ${recordingConfig.commit_interval}ms\n`);

  try {
    console.log('1. recorder throughput (begin + forwarded durable, 16 chunks, end; per session)');
    const throughput = process.env.BENCH_ONLY_E2E ? [] : [
      await recorderThroughput('sqlite (worker, synchronous=full)', sqlite('full', 'throughput-full')),
      await recorderThroughput('sqlite (worker, synchronous=normal)', sqlite('normal', 'throughput-normal')),
      await recorderThroughput('postgres', postgres),
    ];
    console.table(throughput);
    if (process.env.BENCH_ONLY_RECORDER) {
      console.log(JSON.stringify({ throughput }));
      return;
    }

    console.log(`\n2. end to end: ${STREAM ? 'streamed' : 'non-streamed'} chat completions through modelgate, concurrency 50`);
    const upstream = await startUpstream(UPSTREAM_KEY, dir);
    const idp = await startDevIdp({ audience: 'modelgate', accessTokenTtlSeconds: 3600 });
    const token = await idp.clientCredentialsToken('ci-bot');
    const gatewayConfig = {
      server: { host: '127.0.0.1', port: 0, shutdown_grace: '2s' },
      logging: { level: 'info' },
      identity: { issuers: [{ issuer: idp.issuer, audience: 'modelgate' }], max_token_lifetime: '1h' },
      connections: [{ name: 'bench', kind: 'openai', url: upstream.url, api_key: UPSTREAM_KEY, models: [{ name: 'demo-chat' }] }],
      access: [{ groups: ['ci'], connections: ['bench'], models: ['demo-chat'] }],
    };
    const only = process.env.BENCH_MODES?.split(',');
    const modes = (
      [
        { name: 'off' },
        { name: 'no-storage' },
        { name: 'sqlite', storage: sqlite('full', 'e2e') },
        { name: 'sqlite-normal', storage: sqlite('normal', 'e2e-normal') },
        { name: 'postgres', storage: postgres },
      ] as Array<{ name: string; storage?: StorageConfig }>
    ).filter((m) => !only || only.includes(m.name) || m.name === 'off');
    const gateways = new Map<string, GatewayProcess>();
    for (const mode of modes) gateways.set(mode.name, await startGateway(mode.name, gatewayConfig, mode.storage));
    const target = (name: string): Target => ({ name, url: gateways.get(name)!.url, headers: { authorization: `Bearer ${token}` } });
    const runs = new Map<string, LoadRun[]>(modes.map((m) => [m.name, []]));
    for (const mode of modes) await runLoad(target(mode.name), { connections: CONCURRENCY, stream: STREAM, durationS: 1 });
    const cpu = new Map<string, number[]>(modes.map((m) => [m.name, []]));
    const storeCpu = new Map<string, number[]>(modes.map((m) => [m.name, []]));
    const dbCpu = new Map<string, number[]>(modes.map((m) => [m.name, []]));
    for (let r = 0; r < ROUNDS; r++) {
      for (const mode of rotate(modes, r)) {
        const gateway = gateways.get(mode.name)!;
        const pid = gateway.child.pid!;
        const backends = mode.storage?.driver === 'postgres' ? await postgresBackendsOf(pid, pgQuery) : [];
        const ticks = cpuTicksOf(pid);
        const storeTicks = gateway.storeTid ? cpuTicksOf(pid, gateway.storeTid) : 0;
        const db = databaseTicks(backends);
        const threads = THREADS ? threadTicksOf(pid) : undefined;
        const run = await runLoad(target(mode.name), { connections: CONCURRENCY, stream: STREAM, durationS: DURATION_S });
        runs.get(mode.name)!.push(run);
        const per = (t: number): number => (t * TICK_US) / Math.max(1, run.ok);
        const storeUs = gateway.storeTid ? per(cpuTicksOf(pid, gateway.storeTid) - storeTicks) : 0;
        // The gateway's own: every thread of its process but the store's.
        cpu.get(mode.name)!.push(per(cpuTicksOf(pid) - ticks) - storeUs);
        storeCpu.get(mode.name)!.push(storeUs);
        if (threads) console.log(`${mode.name}: ${threadBreakdown(pid, gateway.storeTid, threads, threadTicksOf(pid), run.ok)}`);
        dbCpu.get(mode.name)!.push(mode.storage?.driver === 'postgres' ? per(databaseTicks(await postgresBackendsOf(pid, pgQuery), db.each).total) : 0);
      }
    }
    const off = median(runs.get('off')!.map((x) => x.rps));
    const rows = [];
    for (const mode of modes) {
      const list = runs.get(mode.name)!;
      rows.push({
        recording: mode.name,
        rps: round(median(list.map((x) => x.rps))),
        p50Ms: round(median(list.map((x) => x.p50Ms)), 2),
        p99Ms: round(median(list.map((x) => x.p99Ms)), 2),
        vsOff: round(median(list.map((x) => x.rps)) / off, 3),
        gatewayCpuUsPerRequest: round(median(cpu.get(mode.name)!)),
        storeThreadUsPerRequest: round(median(storeCpu.get(mode.name)!)),
        postgresUsPerRequest: round(median(dbCpu.get(mode.name)!)),
        failed: list.reduce((sum, x) => sum + x.failed, 0),
      });
    }
    console.table(rows);
    const worst = Math.min(...rows.filter((r) => r.recording === 'sqlite' || r.recording === 'postgres').map((r) => r.vsOff));
    console.log(`\nrecording on / off at concurrency ${CONCURRENCY}: worst of sqlite and postgres ${(worst * 100).toFixed(1)}% (target >= 85%)`);
    console.log(JSON.stringify({ throughput, endToEnd: rows }));
    for (const gateway of gateways.values()) await stopGateway(gateway);
    await idp.close();
  } finally {
    await stopAllChildren();
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect().then(() => client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)).catch(() => {});
    await client.end().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'gateway') await serveGateway();
else await main();
