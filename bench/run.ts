// `npm run bench`: how much modelgate adds in front of a model server.
//
// One mock upstream that answers instantly is measured directly, through
// modelgate (real JWT verification and access checks), through Portkey's
// gateway, and through nginx when it is installed, all in the same run:
//   1. non-streaming chat completions at concurrency 1 (latency) and 50 (throughput)
//   2. streamed chat completions one at a time (time to first frame, total time)
//   3. streamed chat completions at concurrency 50
//   4. modelgate's RSS once it has served at least 100k requests
//   5. time to the first visible text (not the first frame) on a stream paced
//      at 20 ms a frame, with output masking on and off (bench/visible-text.ts)
// Measured runs are split into rounds with the target order rotated, so
// background noise on this shared machine does not favour one target;
// medians of the rounds are reported.
//
// `npm run bench -- NAME` runs bench/NAME.ts on its own instead: soak, recording, workers, routing,
// detect, mask, limits, console, json-depth, recording-store, service-keys, stream-cost, reclaim-cost.
//
// Env: BENCH_DURATION (measured seconds per target and scenario, default 10),
// BENCH_ROUNDS (3), BENCH_WARMUP (seconds per target, 2), BENCH_STREAMS
// (sequential streams per target, 600), BENCH_GATEWAY_NODE_FLAGS (extra node
// flags for modelgate, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"), BENCH_TARGETS
// (comma-separated target names to measure, beside direct; must include modelgate), BENCH_IDLE_RECLAIM
// (the gateways' server.idle_reclaim, default 0s: off, so rounds measure steady load; see targets.ts).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { startDevIdp } from '../src/dev/idp.js';
import { measureVisibleText, printVisibleText } from './visible-text.js';
import { CHAT_PATH, chatBody, median, percentile, rotate, runLoad, streamInterleaved, type LoadRun, type StreamSample } from './load.js';
import {
  benchCpuTicks,
  cpuTicksOf,
  gatewayThreadTicks,
  directTarget,
  killAllChildren,
  machineCpuTicks,
  memoryOf,
  nginxAvailable,
  startModelgate,
  startNginx,
  startPortkey,
  staleBuild,
  startUpstream,
  stopAllChildren,
  type Target,
  BENCH_GUARDRAILS,
  BENCH_IDLE_RECLAIM,
  benchLimits,
  CLK_TCK,
} from './targets.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const settings = {
  durationS: numberFromEnv('BENCH_DURATION', 10),
  rounds: Math.max(1, Math.round(numberFromEnv('BENCH_ROUNDS', 3))),
  warmupS: numberFromEnv('BENCH_WARMUP', 2),
  streams: Math.max(1, Math.round(numberFromEnv('BENCH_STREAMS', 600))),
  memoryRequests: 100_000,
  gatewayNodeFlags: (process.env.BENCH_GATEWAY_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean),
};

/** The machine's PostgreSQL (CI starts it); the bench writes to a schema of its own. */
const BENCH_PG_URL = process.env.MODELGATE_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const TARGETS = { addedP50Ms: 0.5, throughputVsPortkey: 2, rssMb: 150, recordingThroughput: 0.85, limitsInMemoryThroughput: 0.9 } as const;
const UPSTREAM_KEY = 'bench-upstream-key';
const AUDIENCE = 'modelgate';
/** A dev IdP service client whose token carries the `ci` group; the access rule allows only that group. */
const SERVICE_CLIENT = 'ci-bot';
const SERVICE_GROUP = 'ci';
/** Sequential streams run in blocks of this many per target before the next target takes over. */
const STREAM_BLOCK = 20;

interface RoundResult extends LoadRun {
  round: number;
  /** CPU time of the target's own process per answered request (the upstream's for direct). */
  cpuUsPerRequest: number;
  /** The same split by thread (modelgate targets): the event loop, the audit store thread, the others (V8's helpers: GC, compiler). */
  threadUsPerRequest?: { main: number; store: number; other: number };
}

interface RssPoint {
  after: string;
  served: number;
  rssMb: number;
  peakMb: number;
}

interface LoadScenario {
  id: string;
  label: string;
  connections: number;
  stream: boolean;
  results: Map<string, RoundResult[]>;
}

// ---------------------------------------------------------------- lifecycle

/** Temp dir with the generated configs and the children's logs; removed however the bench ends. */
let workDir: string | undefined;

function cleanUp(): void {
  killAllChildren();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
  workDir = undefined;
}

process.on('exit', cleanUp);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    progress.clear();
    console.error(`\nbench: ${signal}, stopping`);
    process.exit(130); // the exit handler kills the children
  });
}

const progress = {
  enabled: Boolean(process.stdout.isTTY),
  show(message: string): void {
    if (this.enabled) process.stdout.write(`\r\x1b[K${message}`);
  },
  clear(): void {
    if (this.enabled) process.stdout.write('\r\x1b[K');
  },
};

/** `npm run bench -- NAME`: that bench on its own instead of the comparison. */
const NAMED_BENCHES = new Set(['console', 'detect', 'json-depth', 'limits', 'limits-path', 'mask', 'reclaim-cost', 'recording', 'recording-store', 'routing', 'service-keys', 'soak', 'stream-cost', 'workers']);
const named = process.argv[2];
if (named !== undefined && !NAMED_BENCHES.has(named)) {
  console.error(`bench: unknown bench "${named}"; give one of ${[...NAMED_BENCHES].join(', ')}, or nothing for the comparison`);
  process.exit(2);
}

const stale = staleBuild();
if (stale) {
  console.error(`bench: dist/ is older than ${stale}, and the benches run the gateway from dist/ (bin/modelgate.js): build first, with npm run build`);
  process.exit(2);
}

(named ? import(`./${named}.ts`) : main()).then(
  () => process.exit(0),
  (err: unknown) => {
    progress.clear();
    console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);

async function main(): Promise<void> {
  const startedAt = new Date();
  const dir = mkdtempSync(join(os.tmpdir(), 'modelgate-bench-'));
  workDir = dir;
  const notes: string[] = [
    'modelgate runs with logging.level=info (one JSON access-log line per request) and stdout sent to /dev/null, so the cost of logging is measured.',
    'Portkey runs with bench/portkey-fetch-fix.mjs preloaded: without it, streamed requests fail with "TypeError: immutable" on @hono/node-server >1.14.2 (Portkey-AI/gateway#1389). Non-streamed requests take Portkey\'s unmodified path.',
  ];

  const pgSchema = `bench_${process.pid}`;
  progress.show('starting upstream, IdP and gateways…');
  const upstream = await startUpstream(UPSTREAM_KEY, dir);
  const idp = await startDevIdp({ audience: AUDIENCE, accessTokenTtlSeconds: 3600 });
  try {
    const token = await idp.clientCredentialsToken(SERVICE_CLIENT);
    const targets: Target[] = [{ ...directTarget(upstream.url, UPSTREAM_KEY), process: upstream.process }];
    const gatewayOptions = {
      issuer: idp.issuer,
      audience: AUDIENCE,
      upstreamUrl: upstream.url,
      apiKey: UPSTREAM_KEY,
      model: 'demo-chat',
      group: SERVICE_GROUP,
      accessToken: token,
      logDir: dir,
      nodeFlags: settings.gatewayNodeFlags,
    };
    const modelgate = await startModelgate(gatewayOptions);
    targets.push(modelgate);
    // The same gateway with guardrails on: what input inspection and streamed output masking cost.
    targets.push(await startModelgate({ ...gatewayOptions, name: 'modelgate+guardrails', guardrails: BENCH_GUARDRAILS }));
    // And with write-ahead session recording, on each store: what durability costs.
    targets.push(await startModelgate({ ...gatewayOptions, name: 'modelgate+rec:sqlite', storage: { driver: 'sqlite', sqlite: { path: join(dir, 'audit.db') } } }));
    try {
      targets.push(
        await startModelgate({ ...gatewayOptions, name: 'modelgate+rec:postgres', storage: { driver: 'postgres', postgres: { url: BENCH_PG_URL, schema: pgSchema } } }),
      );
    } catch (err) {
      notes.push(`PostgreSQL recording is left out: ${(err as Error).message.split('\n')[0]}`);
    }

    // And with usage limits checked and settled on every request: in memory, and shared through Redis.
    targets.push(await startModelgate({ ...gatewayOptions, name: 'modelgate+limits:memory', limits: benchLimits('memory') }));
    try {
      targets.push(await startModelgate({ ...gatewayOptions, name: 'modelgate+limits:redis', limits: benchLimits('redis') }));
    } catch (err) {
      notes.push(`Limits on Redis are left out: ${(err as Error).message.split('\n')[0]}`);
    }

    try {
      targets.push(await startPortkey(upstream.url, UPSTREAM_KEY, dir));
    } catch (err) {
      notes.push(`Portkey did not start and is left out: ${(err as Error).message.split('\n')[0]}`);
    }
    if (nginxAvailable()) {
      try {
        targets.push(await startNginx(upstream.url, UPSTREAM_KEY, dir));
      } catch (err) {
        notes.push(`nginx did not start and is left out: ${(err as Error).message.split('\n')[0]}`);
      }
    } else {
      notes.push('nginx is not installed; it is left out.');
    }

    // BENCH_TARGETS=modelgate,modelgate+limits:memory measures only those (and direct): a quicker, less noisy comparison.
    const only = process.env.BENCH_TARGETS?.split(',').map((t) => t.trim()).filter(Boolean);
    if (only) {
      targets.splice(0, targets.length, ...targets.filter((t) => t.name === 'direct' || only.includes(t.name)));
      notes.push(`Only ${only.join(', ')} (BENCH_TARGETS) were measured, beside direct.`);
    }
    for (const target of targets) await checkTarget(target);
    const background = backgroundMeter();
    // modelgate's RSS after each phase: growth with the request count would mean a leak, a plateau would not.
    const rssAtStart = memoryOf(modelgate.process!.pid);
    const rssTrail: RssPoint[] = [{ after: 'before load', served: 0, ...rssAtStart }];
    const noteRss = async (after: string) => rssTrail.push({ after, served: await servedBy(modelgate), ...memoryOf(modelgate.process!.pid) });

    // Warm-up: JIT, connection pools and the gateways' caches, for every target.
    for (const target of targets) {
      progress.show(`warm-up: ${target.name}`);
      await runLoad(target, { connections: 50, stream: false, durationS: settings.warmupS });
      await runLoad(target, { connections: 10, stream: true, durationS: settings.warmupS / 2 });
    }
    await noteRss('warm-up');

    const nonStreaming: LoadScenario[] = [
      { id: 'c1', label: 'c=1', connections: 1, stream: false, results: new Map() },
      { id: 'c50', label: 'c=50', connections: 50, stream: false, results: new Map() },
    ];
    for (const scenario of nonStreaming) {
      await runScenario(scenario, targets);
      await noteRss(scenario.label);
    }

    progress.show(`streaming, sequential: 0/${settings.streams}`);
    const streams = await streamInterleaved(targets, settings.streams, STREAM_BLOCK, (done) =>
      progress.show(`streaming, sequential: ${done}/${settings.streams} per target`),
    );
    await noteRss('stream seq');

    const streamingConcurrent: LoadScenario = { id: 'stream-c50', label: 'stream c=50', connections: 50, stream: true, results: new Map() };
    await runScenario(streamingConcurrent, targets);
    await noteRss(streamingConcurrent.label);

    // Memory: whatever modelgate served so far counts; top up to 100k.
    let served = await servedBy(modelgate);
    if (served < settings.memoryRequests) {
      progress.show(`memory: modelgate has served ${served}; sending ${settings.memoryRequests - served} more`);
      await runLoad(modelgate, { connections: 50, stream: false, amount: Math.max(50, settings.memoryRequests - served) });
      served = await servedBy(modelgate);
      await noteRss('top-up');
    }
    const rssAfter = memoryOf(modelgate.process!.pid);
    const backgroundCpuPercent = background();
    progress.clear();

    const finishedAt = new Date();
    const report = buildReport({
      targets,
      scenarios: [...nonStreaming, streamingConcurrent],
      streams,
      served,
      rssAtStart,
      rssAfter,
      rssTrail,
      backgroundCpuPercent,
      notes,
      startedAt,
      finishedAt,
    });
    printReport(report);
    const file = writeResults(report);
    console.log(`\nresults: ${file}`);

    progress.show('paced streams: time to first visible text…');
    const visible = await measureVisibleText({ logDir: dir });
    progress.clear();
    printVisibleText(visible);
    const visibleFile = join(ROOT, 'bench', 'results', `visible-text-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(visibleFile, `${JSON.stringify(visible, null, 2)}\n`);
    console.log(`results: ${visibleFile}`);
  } finally {
    progress.clear();
    await stopAllChildren();
    await idp.close();
    await dropSchema(BENCH_PG_URL, pgSchema);
  }
}

/** The recording bench's PostgreSQL schema is the bench's own: leave the database as it was. */
async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } catch {
    // No PostgreSQL, nothing to clean.
  } finally {
    await client.end().catch(() => {});
  }
}

/** Every round runs every target once, starting with a different target each round. */
async function runScenario(scenario: LoadScenario, targets: Target[]): Promise<void> {
  const roundS = settings.durationS / settings.rounds;
  for (const t of targets) scenario.results.set(t.name, []);
  for (let round = 0; round < settings.rounds; round++) {
    for (const target of rotate(targets, round)) {
      progress.show(`${scenario.label}: round ${round + 1}/${settings.rounds}, ${target.name}`);
      const cpuBefore = cpuSeconds(target);
      const threadsBefore = target.name.startsWith('modelgate') && target.process ? gatewayThreadTicks(target.process.pid) : undefined;
      const run = await runLoad(target, { connections: scenario.connections, stream: scenario.stream, durationS: roundS });
      const cpuUsPerRequest = ((cpuSeconds(target) - cpuBefore) / Math.max(1, run.ok)) * 1e6;
      let threadUsPerRequest: RoundResult['threadUsPerRequest'];
      if (threadsBefore) {
        const after = gatewayThreadTicks(target.process!.pid);
        const us = (key: keyof typeof after): number => ((after[key] - threadsBefore[key]) / CLK_TCK / Math.max(1, run.ok)) * 1e6;
        threadUsPerRequest = { main: us('main'), store: us('store'), other: us('other') };
      }
      scenario.results.get(target.name)!.push({ ...run, round, cpuUsPerRequest, ...(threadUsPerRequest && { threadUsPerRequest }) });
    }
  }
}

/** One plain and one streamed request, checked by content, before anything is timed. */
async function checkTarget(target: Target): Promise<void> {
  const res = await request(target.url + CHAT_PATH, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...target.headers },
    body: chatBody(false),
  });
  const text = await res.body.text();
  let content: unknown;
  try {
    content = (JSON.parse(text) as { choices?: Array<{ message?: { content?: unknown } }> }).choices?.[0]?.message?.content;
  } catch {
    content = undefined;
  }
  if (res.statusCode !== 200 || typeof content !== 'string') {
    throw new Error(`${target.name} did not answer a chat completion (HTTP ${res.statusCode}): ${text.slice(0, 300)}`);
  }
  await streamInterleaved([target], 1);
}

async function servedBy(modelgate: Target): Promise<number> {
  const res = await request(`${modelgate.url}/metrics`);
  const text = await res.body.text();
  let total = 0;
  for (const match of text.matchAll(/^modelgate_requests_total\{[^}]*\} (\d+)$/gm)) total += Number(match[1]);
  return total;
}

function cpuSeconds(target: Target): number {
  return target.process ? cpuTicksOf(target.process.pid) / CLK_TCK : NaN;
}

/**
 * How busy the machine was with work that is not the bench's: on a shared
 * 2-core box this says how much to trust the absolute numbers (the rotation
 * of rounds keeps the comparisons fair either way).
 */
function backgroundMeter(): () => number {
  const machine0 = machineCpuTicks();
  const ours0 = benchCpuTicks();
  return () => {
    const machine1 = machineCpuTicks();
    const others = machine1.busy - machine0.busy - (benchCpuTicks() - ours0);
    return Math.max(0, (others / (machine1.total - machine0.total)) * 100);
  };
}

// ------------------------------------------------------------------- report

interface Row {
  scenario: string;
  target: string;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** req/s relative to direct (paired by round). */
  rpsVsDirect: number;
  /** p50 minus direct's p50 (paired by round). */
  addedP50Ms: number;
  cpuUsPerRequest: number;
  failed: number;
}

interface Check {
  name: string;
  value: number;
  unit: string;
  target: string;
  pass: boolean | null;
  detail?: string;
}

interface Report {
  startedAt: string;
  finishedAt: string;
  machine: Record<string, unknown>;
  settings: typeof settings;
  versions: Record<string, string>;
  notes: string[];
  targets: Array<{ name: string; url: string; pid?: number }>;
  rows: Row[];
  rounds: Record<string, Record<string, RoundResult[]>>;
  streaming: Record<string, { ttftP50Ms: number; ttftP99Ms: number; totalP50Ms: number; totalP99Ms: number; addedTtftP50Ms: number; addedTotalP50Ms: number }>;
  memory: { servedRequests: number; rssAtStartMb: number; rssAfterMb: number; peakRssMb: number; trail: RssPoint[] };
  /** Share of the machine's CPU used by other processes while the bench measured. */
  backgroundCpuPercent: number;
  checks: Check[];
}

interface ReportInput {
  targets: Target[];
  scenarios: LoadScenario[];
  streams: Map<string, StreamSample[]>;
  served: number;
  rssAtStart: { rssMb: number };
  rssAfter: { rssMb: number; peakMb: number };
  rssTrail: RssPoint[];
  backgroundCpuPercent: number;
  notes: string[];
  startedAt: Date;
  finishedAt: Date;
}

function buildReport(input: ReportInput): Report {
  const rows: Row[] = [];
  const paired = (a: RoundResult[], b: RoundResult[], f: (x: RoundResult, y: RoundResult) => number) =>
    median(a.map((x, i) => f(x, b[i]!)));

  for (const scenario of input.scenarios) {
    const direct = scenario.results.get('direct')!;
    for (const [target, runs] of scenario.results) {
      rows.push({
        scenario: scenario.label,
        target,
        rps: median(runs.map((r) => r.rps)),
        p50Ms: median(runs.map((r) => r.p50Ms)),
        p99Ms: median(runs.map((r) => r.p99Ms)),
        rpsVsDirect: paired(runs, direct, (x, y) => x.rps / y.rps),
        addedP50Ms: paired(runs, direct, (x, y) => x.p50Ms - y.p50Ms),
        cpuUsPerRequest: median(runs.map((r) => r.cpuUsPerRequest)),
        failed: runs.reduce((sum, r) => sum + r.failed, 0),
      });
    }
  }

  const streaming: Report['streaming'] = {};
  const directStreams = input.streams.get('direct')!;
  const p = (samples: StreamSample[], key: keyof StreamSample, q: number) => percentile(samples.map((s) => s[key]), q);
  for (const [target, samples] of input.streams) {
    streaming[target] = {
      ttftP50Ms: p(samples, 'ttftMs', 50),
      ttftP99Ms: p(samples, 'ttftMs', 99),
      totalP50Ms: p(samples, 'totalMs', 50),
      totalP99Ms: p(samples, 'totalMs', 99),
      addedTtftP50Ms: p(samples, 'ttftMs', 50) - p(directStreams, 'ttftMs', 50),
      addedTotalP50Ms: p(samples, 'totalMs', 50) - p(directStreams, 'totalMs', 50),
    };
  }

  const c1 = input.scenarios.find((s) => s.id === 'c1')!;
  const c50 = input.scenarios.find((s) => s.id === 'c50')!;
  const addedP50 = paired(c1.results.get('modelgate')!, c1.results.get('direct')!, (x, y) => x.p50Ms - y.p50Ms);
  const portkeyC50 = c50.results.get('portkey');
  const vsPortkey = portkeyC50 ? paired(c50.results.get('modelgate')!, portkeyC50, (x, y) => x.rps / y.rps) : NaN;
  const checks: Check[] = [
    {
      name: 'added p50 at c=1 (modelgate - direct)',
      value: addedP50,
      unit: 'ms',
      target: `<= ${TARGETS.addedP50Ms} ms`,
      pass: addedP50 <= TARGETS.addedP50Ms,
    },
    {
      name: 'throughput at c=50 (modelgate / portkey)',
      value: vsPortkey,
      unit: 'x',
      target: `>= ${TARGETS.throughputVsPortkey}x`,
      pass: portkeyC50 ? vsPortkey >= TARGETS.throughputVsPortkey : null,
    },
    {
      name: `modelgate RSS after ${input.served.toLocaleString('en-US')} requests`,
      value: input.rssAfter.rssMb,
      unit: 'MB',
      target: `< ${TARGETS.rssMb} MB`,
      pass: input.served >= settings.memoryRequests && input.rssAfter.rssMb < TARGETS.rssMb,
      detail: `at start ${input.rssAtStart.rssMb.toFixed(1)} MB, peak ${input.rssAfter.peakMb.toFixed(1)} MB`,
    },
    // Durability's cost: the same gateway recording every session, against recording off.
    ...(['sqlite', 'postgres'] as const).flatMap((store): Check[] => {
      const recorded = c50.results.get(`modelgate+rec:${store}`);
      if (!recorded) return [];
      const ratio = paired(recorded, c50.results.get('modelgate')!, (x, y) => x.rps / y.rps);
      // Recording's CPU per request: the gateway process's (event loop, GC, store thread), paired by round.
      const costUs = paired(recorded, c50.results.get('modelgate')!, (x, y) => x.cpuUsPerRequest - y.cpuUsPerRequest);
      const thread = (key: 'main' | 'store' | 'other'): number =>
        paired(recorded, c50.results.get('modelgate')!, (x, y) => (x.threadUsPerRequest?.[key] ?? NaN) - (y.threadUsPerRequest?.[key] ?? NaN));
      const sign = (us: number): string => `${us >= 0 ? '+' : ''}${us.toFixed(0)}`;
      return [
        {
          name: `throughput at c=50 with recording on ${store} / off`,
          value: ratio,
          unit: 'x',
          target: `>= ${TARGETS.recordingThroughput}x`,
          pass: ratio >= TARGETS.recordingThroughput,
          detail:
            `recording's cost: +${costUs.toFixed(0)} µs of the gateway process's CPU per request${store === 'postgres' ? ' (PostgreSQL server not counted)' : ''}: ` +
            `main thread ${sign(thread('main'))}, store thread ${sign(thread('store'))}, other threads ${sign(thread('other'))}; more: npm run bench -- recording`,
        },
      ];
    }),
    // What limits cost: the same gateway admitting and settling every request, against limits off.
    ...(['memory', 'redis'] as const).flatMap((store): Check[] => {
      const limited = c50.results.get(`modelgate+limits:${store}`);
      if (!limited) return [];
      const ratio = paired(limited, c50.results.get('modelgate')!, (x, y) => x.rps / y.rps);
      return [
        {
          name: `throughput at c=50 with limits in ${store} / off`,
          value: ratio,
          unit: 'x',
          target: store === 'memory' ? `>= ${TARGETS.limitsInMemoryThroughput}x` : 'reported',
          pass: store === 'memory' ? ratio >= TARGETS.limitsInMemoryThroughput : null,
        },
      ];
    }),
  ];

  const rounds: Report['rounds'] = {};
  for (const s of input.scenarios) rounds[s.id] = Object.fromEntries(s.results);

  return {
    startedAt: input.startedAt.toISOString(),
    finishedAt: input.finishedAt.toISOString(),
    machine: machineFacts(),
    settings,
    versions: versions(),
    notes: input.notes,
    targets: input.targets.map((t) => ({ name: t.name, url: t.url, pid: t.process?.pid })),
    rows,
    rounds,
    streaming,
    memory: {
      servedRequests: input.served,
      rssAtStartMb: round2(input.rssAtStart.rssMb),
      rssAfterMb: round2(input.rssAfter.rssMb),
      peakRssMb: round2(input.rssAfter.peakMb),
      trail: input.rssTrail,
    },
    backgroundCpuPercent: input.backgroundCpuPercent,
    checks,
  };
}

function printReport(r: Report): void {
  const m = r.machine;
  console.log(`modelgate bench: ${r.startedAt} (${((Date.parse(r.finishedAt) - Date.parse(r.startedAt)) / 1000).toFixed(0)} s)`);
  console.log(`machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGb} GB, ${m.os}; node ${m.node}; load average at end ${m.loadAverage}`);
  const busy = r.backgroundCpuPercent;
  console.log(
    `background: other processes used ${busy.toFixed(0)}% of the machine's CPU while the bench measured` +
      (busy > 10 ? ' (noisy: absolute numbers are pessimistic; the rotated rounds keep comparisons fair)' : ''),
  );
  console.log(`versions: ${Object.entries(r.versions).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  const roundS = (settings.durationS / settings.rounds).toFixed(1);
  console.log(
    `settings: ${settings.durationS} s per target and scenario in ${settings.rounds} rotating rounds of ${roundS} s (medians shown), ` +
      `${settings.warmupS} s warm-up, ${settings.streams} sequential streams per target (in rotating blocks of ${STREAM_BLOCK}), idle reclaim ${BENCH_IDLE_RECLAIM}`,
  );
  for (const note of r.notes) console.log(`note: ${note}`);

  console.log('\nChat completions against an instant mock upstream');
  console.log('(vs direct: req/s ratio and added p50, paired by round; CPU: the target\'s own process, i.e. the upstream for direct)\n');
  const f = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : '-');
  const table: string[][] = [['scenario', 'target', 'req/s', 'p50 ms', 'p99 ms', 'vs direct', '+p50 ms', 'CPU µs/req', 'failed']];
  for (const row of r.rows) {
    const isDirect = row.target === 'direct';
    table.push([
      row.scenario,
      row.target,
      f(row.rps, 0),
      f(row.p50Ms),
      f(row.p99Ms),
      isDirect ? '' : `${f(row.rpsVsDirect)}x`,
      isDirect ? '' : `+${f(row.addedP50Ms)}`,
      f(row.cpuUsPerRequest, 0),
      String(row.failed),
    ]);
  }
  for (const [target, s] of Object.entries(r.streaming)) {
    const isDirect = target === 'direct';
    table.push(['stream seq: first frame', target, '', f(s.ttftP50Ms), f(s.ttftP99Ms), '', isDirect ? '' : `+${f(s.addedTtftP50Ms)}`, '', '0']);
  }
  for (const [target, s] of Object.entries(r.streaming)) {
    const isDirect = target === 'direct';
    table.push(['stream seq: total', target, f(1000 / s.totalP50Ms, 0), f(s.totalP50Ms), f(s.totalP99Ms), '', isDirect ? '' : `+${f(s.addedTotalP50Ms)}`, '', '0']);
  }
  printTable(table);
  console.log('(stream seq rows: one streamed request at a time, ~12 frames each; req/s there is 1000 / p50 total)');

  console.log('\nTargets');
  const checks: string[][] = r.checks.map((c) => [
    c.name,
    c.unit === 'x' ? `${f(c.value)}x` : `${f(c.value)} ${c.unit}`,
    c.target,
    c.pass === null ? 'n/a' : c.pass ? 'PASS' : 'MISS',
    c.detail ?? '',
  ]);
  printTable(checks, false);
  const trail = r.memory.trail.map((p) => `${p.after} ${p.rssMb.toFixed(0)}`).join(', ');
  console.log(`  modelgate RSS (MB) after each phase: ${trail}`);
}

function printTable(rows: string[][], header = true): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => [...(row[i] ?? '')].length)));
  const numeric = (cell: string) => /^[+-]?[\d.]+(x| ms| MB)?$/.test(cell);
  rows.forEach((row, index) => {
    const line = row.map((cell, i) => {
      const pad = ' '.repeat(widths[i]! - [...cell].length);
      return index > 0 && numeric(cell) ? pad + cell : cell + pad;
    });
    console.log(`  ${line.join('  ').trimEnd()}`);
    if (header && index === 0) console.log(`  ${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  });
}

function writeResults(report: Report): string {
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${report.startedAt.replace(/:/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(report, (_k, v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? round2(v) : v), 2)}\n`);
  return file;
}

// -------------------------------------------------------------------- facts

function machineFacts(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    loadAverage: os.loadavg().map((l) => l.toFixed(2)).join(' '),
  };
}

function versions(): Record<string, string> {
  const version = (path: string) => {
    try {
      return (JSON.parse(readFileSync(join(ROOT, path), 'utf8')) as { version: string }).version;
    } catch {
      return 'unknown';
    }
  };
  const result: Record<string, string> = {
    modelgate: version('package.json'),
    portkey: version('node_modules/@portkey-ai/gateway/package.json'),
    autocannon: version('node_modules/autocannon/package.json'),
  };
  if (nginxAvailable()) {
    // `nginx -v` prints "nginx version: nginx/1.x" on stderr.
    const out = spawnSync('nginx', ['-v'], { encoding: 'utf8' });
    result.nginx = `${out.stderr}${out.stdout}`.trim().replace(/^nginx version: /, '') || 'installed';
  }
  return result;
}

function numberFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`);
  return value;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
