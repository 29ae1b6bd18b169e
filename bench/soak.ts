// `npm run bench -- soak`: thousands of long streams at once, with output
// masking and write-ahead recording (SQLite) on, through the gateway
// directly and through the agent tunnel, each leg compared with the same
// streams sent straight to the mock model just before it, in the same run.
//
// Each stream is 50 frames 100 ms apart (bench/soak-mock.ts). Streams are
// opened at an even rate over SOAK_RAMP_MS, then held until they end. Per
// leg: first-frame p50/p99 (from the request's start), the worst
// inter-frame gap of each stream (p50/p99 over streams), errors (non-200,
// socket errors, streams without [DONE] or short of frames), unrecorded
// requests (streams the mock received from the gateway with no durable
// `session.forwarded` record), the gateway's CPU per stream, its RSS above
// idle per 1,000 open streams at the peak, and its RSS after the leg.
//
// The load generator is this process (raw node:http, no SDK, no parsing
// beyond counting frames) and shares the machine's cores with the mock,
// the gateway and the agent, as in the issue's figures; its own CPU per
// stream is reported as `client`, so what the cores had left is known.
//
// Env: SOAK_STREAMS (concurrent streams, default 1000), SOAK_RAMP_MS (0: all at once, as in the issue's figures),
// SOAK_FRAMES (50), SOAK_INTERVAL_MS (100), SOAK_LEGS (pipe,gateway,agent; also tcp:
// `pipe` and `tcp` are floors, bench/soak-floor.ts, a proxy that only passes
// bytes on, to show what any proxy costs on the same cores),
// SOAK_DEADLINE_S (whole run, default 1200: past it the bench stops),
// SOAK_STREAM_TIMEOUT_S (a stream not ended by then is an error, 300),
// SOAK_SETTLE_S (seconds of idle after a leg before its "after" RSS is read, 120:
// what an operator sees once the burst is over, with no forced GC; V8 gives
// an idle process's grown heap back only after ~50-100 s, by its memory reducer),
// SOAK_IDLE_RECLAIM (the gateway's server.idle_reclaim, default its own 10s; 0s turns it
// off, to compare), SOAK_WARM_STREAMS (the warm-up burst through each leg's path before the steady idle is read,
// default min(SOAK_STREAMS, 100)), SOAK_HEAP_SNAPSHOTS (a directory: the gateway writes a V8 heap snapshot
// there at idle and after each leg's settle, to compare by constructor), SOAK_SMAPS (a directory: the gateway's
// and the agent's /proc/PID/smaps at idle and after each leg's settle, to compare by mapping),
// BENCH_GATEWAY_NODE_FLAGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"), BENCH_AGENT_NODE_FLAGS (the same for the agent),
// BENCH_FLOOR_NODE_FLAGS (the same for the floor proxies, to compare their profile with the gateway's),
// SOAK_WORKERS (gateway --workers, default 1: an agent tunnel lands on one
// worker), SOAK_LISTEN_BACKLOG (the gateway's server.listen_backlog, to
// compare with node's old default of 511), and, to split the cost when profiling, SOAK_MASKING=off and
// SOAK_RECORDING=off (the targets assume both on).
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { startDevIdp } from '../src/dev/idp.js';
import { mallocTrimUnavailable } from '../src/ops/native-memory.js';
import { percentile } from './load.js';
import { BENCH_GUARDRAILS, CLK_TCK, firstLine, freePort, killAllChildren, memoryOf, processTree, spawnTracked, stopAllChildren, treeCpuTicks, untilReady, type ManagedProcess } from './targets.js';

const STREAMS = Math.max(1, Number(process.env.SOAK_STREAMS ?? 1000));
const RAMP_MS = Number(process.env.SOAK_RAMP_MS ?? 0);
const FRAMES = Number(process.env.SOAK_FRAMES ?? 50);
const INTERVAL_MS = Number(process.env.SOAK_INTERVAL_MS ?? 100);
/** Floor legs (bench/soak-floor.ts): a proxy that only passes bytes on, so each run says what any proxy costs on these cores. */
const FLOORS = { tcp: 'floor: tcp splice', pipe: 'floor: http pipe' } as const;
type FloorLeg = keyof typeof FLOORS;
const isFloor = (leg: string): leg is FloorLeg => leg in FLOORS;
const LEGS = (process.env.SOAK_LEGS ?? 'pipe,gateway,agent').split(',').filter((l) => l === 'gateway' || l === 'agent' || isFloor(l));
const DEADLINE_S = Number(process.env.SOAK_DEADLINE_S ?? 1200);
const SETTLE_S = Number(process.env.SOAK_SETTLE_S ?? 120);
const SNAPSHOT_DIR = process.env.SOAK_HEAP_SNAPSHOTS;
const SMAPS_DIR = process.env.SOAK_SMAPS;
/** A stream that has not ended this long after its start is counted as an error (and cut): the bench never hangs. */
const STREAM_TIMEOUT_MS = Number(process.env.SOAK_STREAM_TIMEOUT_S ?? 300) * 1000;
const KEYS = { direct: 'soak-direct', gateway: 'soak-gateway', agent: 'soak-agent' } as const;
/**
 * backToIdle: "RSS back to idle after" a leg means the gateway's RSS after SOAK_SETTLE_S of idle is at most this
 * fraction above its steady idle RSS: read once a warm-up burst has made each process run its idle reclaim,
 * so "after" is set against what the process sits at between bursts, not against the lower or higher figure
 * of a process that never gave memory back yet. The first idle (read after a few warm-up streams, before any
 * reclaim) is reported too.
 */
const TARGETS = { ratio: 1.5, rssMbPer1000: 60, backToIdle: 0.1 } as const;
const IDLE_RECLAIM = process.env.SOAK_IDLE_RECLAIM;
const MASKING = process.env.SOAK_MASKING !== 'off';
const RECORDING = process.env.SOAK_RECORDING !== 'off';
const WORKERS = Math.max(1, Number(process.env.SOAK_WORKERS ?? 1));
/**
 * Streams of the warm-up burst before the steady idle (through each path a leg takes). Small next to a leg:
 * what a big burst leaves behind for good (pools, caches, code) counts against "back to idle", as it would
 * for a gateway that has only seen light traffic before. Past RECLAIM_MIN_GROWTH_BYTES of growth
 * (ops/idle-reclaim.ts) the process reclaims; short of it, it has nothing to give back and that idle is steady.
 */
const WARM_STREAMS = Math.max(1, Number(process.env.SOAK_WARM_STREAMS ?? Math.min(STREAMS, 100)));
/** The longest wait for each process's reclaim after the warm-up burst: its quiet time (idle_reclaim, 10 s by default; it fires once), the reclaim itself, a margin. */
const RECLAIM_WAIT_S = (/^\d+s$/.test(IDLE_RECLAIM ?? '') ? Number.parseInt(IDLE_RECLAIM!, 10) : 10) + 20;

interface StreamResult {
  ok: boolean;
  error?: string;
  firstFrameMs: number;
  worstGapMs: number;
}

interface LegResult {
  leg: string;
  streams: number;
  ok: number;
  errors: number;
  errorKinds: Record<string, number>;
  peakOpen: number;
  firstFrameP50Ms: number;
  firstFrameP99Ms: number;
  worstGapP50Ms: number;
  worstGapP99Ms: number;
  wallS: number;
  /** CPU of the process(es) in the path (gateway, agent; the mock for direct) per stream. */
  cpuMsPerStream: Record<string, number>;
  /** afterMb: after SETTLE_S idle; backS: when it first came back to idle (TARGETS.backToIdle), if it did; settleMb: RSS every 10 s of the settle. */
  rss?: { idleMb: number; firstIdleMb: number; peakMb: number; perThousandMb: number; afterMb: number; settleS: number; backS?: number; settleMb: number[] };
  /** The agent's process on the agent leg: idle, peak, above idle per 1,000 open streams at the peak, and after the settle. */
  agentRss?: { idleMb: number; firstIdleMb: number; peakMb: number; perThousandMb: number; afterMb: number };
}

const round = (n: number, digits = 0): number => Math.round(n * 10 ** digits) / 10 ** digits;
/** "+12.3%": how far an RSS reading is above an idle one. */
const aboveIdle = (mb: number, idleMb: number): string => `${mb >= idleMb ? '+' : ''}${round(((mb - idleMb) / idleMb) * 100, 1)}%`;

// ------------------------------------------------------------ load generator

/** One stream over its own connection; resolves when it ends, however it ends. */
function runStream(url: URL, headers: Record<string, string>, body: string): Promise<StreamResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    let first = NaN;
    let last = 0;
    let worstGap = 0;
    let frames = 0;
    let tail = '';
    let sawDone = false;
    let settled = false;
    const done = (result: Omit<StreamResult, 'firstFrameMs' | 'worstGapMs'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...result, firstFrameMs: first, worstGapMs: worstGap });
    };
    const req = http.request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers } });
    const timer = setTimeout(() => {
      done({ ok: false, error: 'timeout' });
      req.destroy();
    }, STREAM_TIMEOUT_MS);
    req.on('error', (err: NodeJS.ErrnoException) => done({ ok: false, error: err.code ?? 'socket error' }));
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        // The error's stable code says which limit or failure it was.
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (t: string) => (text += t.slice(0, 2000)));
        res.on('end', () => done({ ok: false, error: `status ${res.statusCode} ${/"code":\s*"([^"]+)"/.exec(text)?.[1] ?? ''}`.trim() }));
        res.on('error', () => done({ ok: false, error: `status ${res.statusCode}` }));
        return;
      }
      res.setEncoding('utf8');
      res.on('data', (text: string) => {
        const now = performance.now();
        if (frames === 0) first = now - started;
        else worstGap = Math.max(worstGap, now - last);
        last = now;
        // Count frame starts; a frame may straddle two reads, so keep the last few characters.
        const scan = tail + text;
        for (let i = scan.indexOf('data: ', tail.length === 0 ? 0 : 1); i !== -1; i = scan.indexOf('data: ', i + 6)) frames++;
        if (scan.includes('[DONE]')) sawDone = true;
        tail = scan.slice(-6);
        if (text.includes('"error"')) done({ ok: false, error: `error frame ${/"code":\s*"([^"]+)"/.exec(text)?.[1] ?? ''}`.trim() });
      });
      res.on('end', () => {
        // FRAMES frames plus [DONE].
        done(frames >= FRAMES + 1 && sawDone ? { ok: true } : { ok: false, error: `ended after ${frames} frames${sawDone ? '' : ' without [DONE]'}` });
      });
      res.on('error', (err: NodeJS.ErrnoException) => done({ ok: false, error: err.code ?? 'response error' }));
    });
    req.end(body);
  });
}

/** A process's RSS at idle: steady (idleMb, after its first idle reclaim; the figure legs are set against) and first (before any). */
interface Idle {
  pid: number;
  idleMb: number;
  firstIdleMb: number;
}

interface Watched {
  name: string;
  pid: number;
}

async function runLeg(
  leg: string,
  url: string,
  headers: Record<string, string>,
  model: string,
  watch: Watched[],
  gateway?: Idle,
  agent?: Idle,
): Promise<LegResult> {
  const gatewayPid = gateway?.pid;
  const target = new URL('/v1/chat/completions', url);
  const body = JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: 'Write a long answer for the soak test.' }] });
  const ticks = new Map(watch.map((w) => [w.name, treeCpuTicks(w.pid)]));
  // The load generator's own CPU: it shares the cores with the proxy, so what is left for the proxy is known.
  const clientCpu = process.cpuUsage();
  const idleMb = gateway?.idleMb ?? 0;
  let peakMb = idleMb;
  let open = 0;
  let peakOpen = 0;
  let peakOpenMb = idleMb;
  let agentPeakMb = agent?.idleMb ?? 0;
  let agentPeakOpenMb = agentPeakMb;
  const sampler = setInterval(() => {
    if (agent) {
      const rss = treeRssMb(agent.pid);
      agentPeakMb = Math.max(agentPeakMb, rss);
      if (open >= peakOpen) agentPeakOpenMb = Math.max(agentPeakOpenMb, rss);
    }
    if (!gatewayPid) return;
    const rss = treeRssMb(gatewayPid);
    if (rss > peakMb) peakMb = rss;
    if (open >= peakOpen) peakOpenMb = Math.max(peakOpenMb, rss);
  }, 100);
  const started = performance.now();
  const pending: Array<Promise<StreamResult>> = [];
  for (let i = 0; i < STREAMS; i++) {
    const due = started + (RAMP_MS * i) / STREAMS;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    open++;
    peakOpen = Math.max(peakOpen, open);
    pending.push(
      runStream(target, headers, body).then((r) => {
        open--;
        return r;
      }),
    );
  }
  const results = await Promise.all(pending);
  const wallS = (performance.now() - started) / 1000;
  clearInterval(sampler);
  const cpuMsPerStream: Record<string, number> = {};
  for (const w of watch) cpuMsPerStream[w.name] = round((((treeCpuTicks(w.pid) - ticks.get(w.name)!) / CLK_TCK) * 1000) / STREAMS, 2);
  const clientUsed = process.cpuUsage(clientCpu);
  cpuMsPerStream.client = round((clientUsed.user + clientUsed.system) / 1000 / STREAMS, 2);
  const ok = results.filter((r) => r.ok);
  const errorKinds: Record<string, number> = {};
  for (const r of results) if (!r.ok) errorKinds[r.error!] = (errorKinds[r.error!] ?? 0) + 1;
  const firsts = results.filter((r) => Number.isFinite(r.firstFrameMs)).map((r) => r.firstFrameMs).sort((a, b) => a - b);
  const gaps = ok.map((r) => r.worstGapMs).sort((a, b) => a - b);
  const result: LegResult = {
    leg,
    streams: STREAMS,
    ok: ok.length,
    errors: STREAMS - ok.length,
    errorKinds,
    peakOpen,
    firstFrameP50Ms: round(percentile(firsts, 50)),
    firstFrameP99Ms: round(percentile(firsts, 99)),
    worstGapP50Ms: round(percentile(gaps, 50)),
    worstGapP99Ms: round(percentile(gaps, 99)),
    wallS: round(wallS, 1),
    cpuMsPerStream,
  };
  if (gatewayPid) {
    // What an operator sees once the burst is over: RSS after SETTLE_S with nothing open, and no forced GC.
    let afterMb = treeRssMb(gatewayPid);
    let backS: number | undefined;
    const settleMb: number[] = [];
    const settleStart = performance.now();
    for (let elapsed = 0; elapsed < SETTLE_S * 1000; elapsed = performance.now() - settleStart) {
      if (backS === undefined && afterMb <= idleMb * (1 + TARGETS.backToIdle)) backS = round(elapsed / 1000, 1);
      await new Promise((r) => setTimeout(r, 500));
      afterMb = treeRssMb(gatewayPid);
      if (performance.now() - settleStart >= (settleMb.length + 1) * 10_000) settleMb.push(round(afterMb));
    }
    result.rss = {
      idleMb: round(idleMb),
      firstIdleMb: round(gateway!.firstIdleMb),
      peakMb: round(peakMb),
      perThousandMb: round(((peakOpenMb - idleMb) * 1000) / Math.max(1, peakOpen), 1),
      afterMb: round(afterMb),
      settleS: round((performance.now() - settleStart) / 1000, 1),
      ...(backS !== undefined && { backS }),
      settleMb,
    };
  }
  if (agent) {
    result.agentRss = {
      idleMb: round(agent.idleMb),
      firstIdleMb: round(agent.firstIdleMb),
      peakMb: round(agentPeakMb),
      perThousandMb: round(((agentPeakOpenMb - agent.idleMb) * 1000) / Math.max(1, peakOpen), 1),
      afterMb: round(treeRssMb(agent.pid)),
    };
  }
  return result;
}

// ------------------------------------------------------------ processes

async function startMock(dir: string): Promise<{ url: string; proc: ManagedProcess }> {
  const proc = spawnTracked('soak-mock', process.execPath, ['--import', 'tsx', 'bench/soak-mock.ts'], {
    env: { SOAK_KEYS: Object.values(KEYS).join(','), SOAK_FRAMES: String(FRAMES), SOAK_INTERVAL_MS: String(INTERVAL_MS) },
    stdout: 'pipe',
    logDir: dir,
  });
  return { url: await firstLine(proc), proc };
}

async function startFloor(mode: 'tcp' | 'http', upstream: string, dir: string): Promise<{ url: string; proc: ManagedProcess }> {
  const flags = (process.env.BENCH_FLOOR_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
  const proc = spawnTracked(`floor-${mode}`, process.execPath, [...flags, '--import', 'tsx', 'bench/soak-floor.ts', mode, upstream], { stdout: 'pipe', logDir: dir });
  return { url: await firstLine(proc), proc };
}

async function mockCounts(url: string): Promise<Record<string, number>> {
  return ((await (await fetch(`${url}/stats`)).json()) as { counts: Record<string, number> }).counts;
}

function cli(args: string[]): string {
  return execFileSync(process.execPath, ['bin/modelgate.js', ...args], { encoding: 'utf8' });
}

/** A process and its descendants (the gateway's workers), from /proc/<pid>/task/<pid>/children. */
const treeRssMb = (pid: number): number => processTree(pid).reduce((sum, p) => sum + (rssMbOf(p) || 0), 0);
/** 0 for a process that is gone (one that died mid-leg is reported at the end, with its log kept). */
function rssMbOf(pid: number): number {
  try {
    return memoryOf(pid).rssMb;
  } catch {
    return 0;
  }
}

/** Whether the gateway's idle reclaim has its addon (the same build the spawned gateway loads): without it, no malloc_trim and a plain GC. */
function nativeRelease(): string {
  const unavailable = mallocTrimUnavailable();
  return unavailable ? `native release OFF: ${unavailable}` : 'native release on: memory-pressure GC, malloc_trim';
}

/** What the gateway's RSS is made of, from its own /metrics (one worker's view): V8 heap used and held, memory outside it, open handles. */
async function memoryBreakdown(url: string, rssMb: number): Promise<string> {
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    const value = (name: string): number => Number(new RegExp(`^modelgate_${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    const mb = (bytes: number): string => `${round(bytes / 2 ** 20)}`;
    const held = value('nodejs_heap_size_total_bytes');
    // With one worker, the rest of its RSS is native: the allocator's arenas (freed memory it has not returned), the store thread's heap, SQLite, code.
    const outside = WORKERS === 1 ? `, RSS outside the heap ${round(rssMb - held / 2 ** 20)} MB` : '';
    // Which of V8's spaces hold the heap (new, old, code, large_object...): the ones of 1 MB or more.
    const spaces = [...text.matchAll(/^modelgate_nodejs_heap_space_size_total_bytes\{space="([^"]+)"\} (\S+)$/gm)].filter((m) => Number(m[2]) >= 2 ** 20).map((m) => `${m[1]} ${mb(Number(m[2]))}`);
    return `heap used ${mb(value('nodejs_heap_size_used_bytes'))} / held ${mb(held)} MB (${spaces.join(', ')}), external ${mb(value('nodejs_external_memory_bytes'))} MB${outside}, ${value('nodejs_active_handles_total')} handles, ${value('idle_reclaims_total')} idle reclaim(s)`;
  } catch (err) {
    return `(no metrics: ${(err as Error).message})`;
  }
}

/** With SOAK_SMAPS, keeps the gateway's /proc/PID/smaps as `<label>.smaps`: which mappings hold what is left after a leg. */
function saveSmaps(pid: number, label: string): void {
  if (!SMAPS_DIR) return;
  writeFileSync(join(SMAPS_DIR, `${label}.smaps`), readFileSync(`/proc/${pid}/smaps`));
  console.log(`smaps: ${join(SMAPS_DIR, `${label}.smaps`)}`);
}

/** With SOAK_HEAP_SNAPSHOTS, has the gateway write a heap snapshot (it blocks its loop while it writes) and names it `<label>.heapsnapshot`. */
async function heapSnapshot(pid: number, url: string, label: string): Promise<void> {
  if (!SNAPSHOT_DIR) return;
  const known = new Set(readdirSync(SNAPSHOT_DIR));
  process.kill(pid, 'SIGUSR2');
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    const written = readdirSync(SNAPSHOT_DIR).find((f) => f.endsWith('.heapsnapshot') && !known.has(f));
    // The gateway answers again once the snapshot is written.
    if (written && (await fetch(`${url}/healthz`).then((r) => r.ok, () => false))) {
      renameSync(join(SNAPSHOT_DIR, written), join(SNAPSHOT_DIR, `${label}.heapsnapshot`));
      console.log(`heap snapshot: ${join(SNAPSHOT_DIR, `${label}.heapsnapshot`)}`);
      return;
    }
  }
}

/** How many idle reclaims a bench child has logged so far ('idle after a burst: ...', ops/idle-reclaim.ts). */
function reclaimsLogged(dir: string, name: string): number {
  try {
    return readFileSync(join(dir, `${name}.log`), 'utf8').split('\n').filter((line) => line.includes('"msg":"idle after a burst')).length;
  } catch {
    return 0;
  }
}

/**
 * Waits until each named process has logged a reclaim past the count given, then a few seconds more (V8's
 * background threads unmap the freed pages just after); bounded, and says what it saw.
 */
async function untilReclaimed(dir: string, countsBefore: Record<string, number>): Promise<string> {
  const names = Object.keys(countsBefore);
  if (IDLE_RECLAIM !== undefined && /^0+(ms|s)?$/.test(IDLE_RECLAIM)) return 'idle reclaim off: read right after the warm-up burst';
  const started = performance.now();
  while (performance.now() - started < RECLAIM_WAIT_S * 1000) {
    if (names.every((name) => reclaimsLogged(dir, name) > countsBefore[name]!)) {
      await new Promise((r) => setTimeout(r, 3000));
      return `after a ${WARM_STREAMS}-stream warm-up burst and a reclaim in ${names.join(' and ')}, ${round((performance.now() - started) / 1000)} s`;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  const missing = names.filter((name) => reclaimsLogged(dir, name) <= countsBefore[name]!);
  // The trigger fires once, after its quiet time, and only if RSS grew enough: none by now means none to come.
  return `no reclaim by ${missing.join(', ')} within ${RECLAIM_WAIT_S} s of a ${WARM_STREAMS}-stream warm-up burst (RSS grew too little to run one)`;
}

/** Sessions whose forwarded request is durably recorded, and their end states, per connection. */
function recorded(dbPath: string): Record<string, { forwarded: number; states: Record<string, number> }> {
  if (!RECORDING) return {};
  const db = new Database(dbPath, { readonly: true });
  try {
    const out: Record<string, { forwarded: number; states: Record<string, number> }> = {};
    const forwarded = db
      .prepare<[], { connection: string; n: number }>(
        "SELECT s.connection AS connection, count(*) AS n FROM sessions s WHERE EXISTS (SELECT 1 FROM events e WHERE e.sid = s.sid AND e.kind = 'session.forwarded') GROUP BY s.connection",
      )
      .all();
    for (const r of forwarded) out[r.connection] = { forwarded: r.n, states: {} };
    for (const r of db.prepare<[], { connection: string; state: string; n: number }>('SELECT connection, state, count(*) AS n FROM sessions GROUP BY connection, state').all()) {
      (out[r.connection] ??= { forwarded: 0, states: {} }).states[r.state] = r.n;
    }
    return out;
  } finally {
    db.close();
  }
}

// ------------------------------------------------------------ main

async function main(): Promise<void> {
  const dir = mkdtempSync(join(os.tmpdir(), 'modelgate-bench-soak-'));
  process.on('exit', () => {
    killAllChildren();
    rmSync(dir, { recursive: true, force: true });
  });
  const deadline = setTimeout(() => {
    console.error(`soak: the run passed SOAK_DEADLINE_S=${DEADLINE_S}; stopping`);
    process.exit(2);
  }, DEADLINE_S * 1000);
  deadline.unref();
  const flags = (process.env.BENCH_GATEWAY_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
  if (SNAPSHOT_DIR) flags.push('--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${SNAPSHOT_DIR}`);
  console.log(`machine: ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, node ${process.version}`);
  console.log(
    `settings: ${STREAMS} streams opened over ${RAMP_MS} ms, ${FRAMES} frames ${INTERVAL_MS} ms apart, legs ${LEGS.join(', ')}; masking ${MASKING ? 'on' : 'OFF'}, recording ${RECORDING ? 'on (SQLite)' : 'OFF'}, ${WORKERS} worker(s), idle reclaim ${IDLE_RECLAIM ?? 'default'} (${nativeRelease()}), settle ${SETTLE_S} s${
      Object.keys(process.env).some((k) => k.startsWith('MALLOC_') || k === 'GLIBC_TUNABLES' || k === 'LD_PRELOAD')
        ? `, allocator env ${Object.entries(process.env).filter(([k]) => k.startsWith('MALLOC_') || k === 'GLIBC_TUNABLES' || k === 'LD_PRELOAD').map(([k, v]) => `${k}=${v}`).join(' ')}`
        : ''
    }`,
  );

  const mock = await startMock(dir);
  const idp = await startDevIdp({ audience: 'modelgate', accessTokenTtlSeconds: 3600 });
  const token = await idp.clientCredentialsToken('ci-bot');
  const port = await freePort();
  const agentPort = await freePort();
  const dbPath = join(dir, 'audit.db');
  // Every stream holds an upstream connection: the pool must allow them all (the default, 256, queues the rest).
  const pool = { max_connections_per_target: Math.min(10_000, STREAMS + 100), max_queued: STREAMS };
  const config = {
    server: {
      host: '127.0.0.1',
      port,
      shutdown_grace: '5s',
      ...(process.env.SOAK_LISTEN_BACKLOG && { listen_backlog: Number(process.env.SOAK_LISTEN_BACKLOG) }),
      ...(IDLE_RECLAIM && { idle_reclaim: IDLE_RECLAIM }),
    },
    logging: { level: 'info' },
    identity: {
      issuers: [{ issuer: idp.issuer, audience: 'modelgate' }],
      max_token_lifetime: '1h',
      ...(WORKERS > 1 && { state: { store: 'sqlite', path: join(dir, 'identity.db') } }),
    },
    connections: [
      { name: 'soak-gateway', kind: 'openai', url: mock.url, api_key: KEYS.gateway, models: [{ name: 'soak-gateway' }], ...pool },
      { name: 'soak-agent', kind: 'openai', targets: [{ via: 'agent' }], api_key: KEYS.agent, models: [{ name: 'soak-agent' }], ...pool },
    ],
    access: [{ description: 'the soak client', groups: ['ci'], connections: ['soak-gateway', 'soak-agent'], models: ['soak-gateway', 'soak-agent'] }],
    ...(MASKING && { guardrails: BENCH_GUARDRAILS }),
    storage: { sqlite: { path: dbPath } },
    recording: { enabled: RECORDING },
    agents: { listen: { host: '127.0.0.1', port: agentPort } },
  };
  const configPath = join(dir, 'modelgate.yaml');
  writeFileSync(configPath, stringify(config));
  const floors = new Map<FloorLeg, { url: string; proc: ManagedProcess }>();
  for (const leg of LEGS) if (isFloor(leg)) floors.set(leg, await startFloor(leg === 'tcp' ? 'tcp' : 'http', mock.url, dir));
  const gateway = spawnTracked('gateway', process.execPath, [...flags, 'bin/modelgate.js', 'gateway', '--config', configPath, '--workers', String(WORKERS)], { stdout: 'log', logDir: dir });
  const gatewayUrl = `http://127.0.0.1:${port}`;
  await untilReady(gateway, async () => (await fetch(`${gatewayUrl}/readyz`)).status === 200);
  const watchGateway: Watched = { name: 'gateway', pid: gateway.pid };
  const watchMock: Watched = { name: 'mock', pid: mock.proc.pid };

  let agent: ManagedProcess | undefined;
  if (LEGS.includes('agent')) {
    const key = /mga_[0-9a-f]{16}_[A-Za-z0-9_-]{43}/.exec(cli(['agents', 'create', 'soak', '--connections', 'soak-agent', '--config', configPath]))?.[0];
    if (!key) throw new Error('`modelgate agents create` printed no key');
    const statusPort = await freePort();
    const agentFlags = (process.env.BENCH_AGENT_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
    agent = spawnTracked(
      'agent',
      process.execPath,
      // info: its idle reclaim's line says when the steady idle can be read (it logs nothing per stream at info).
      [...agentFlags, 'bin/modelgate.js', 'agent', '--gateway', `http://127.0.0.1:${agentPort}`, '--serve', `soak-agent=${mock.url}`, '--listen', `127.0.0.1:${statusPort}`, '--log-level', 'info'],
      { env: { MODELGATE_AGENT_KEY: key }, stdout: 'log', logDir: dir },
    );
    await untilReady(agent, async () => (await fetch(`http://127.0.0.1:${statusPort}/readyz`)).status === 200);
    agent.child.once('exit', (code, signal) => console.log(`agent EXITED at ${new Date().toISOString()} (${code ?? signal})`));
  }

  const auth = { authorization: `Bearer ${token}` };
  // Warm every path (JIT, pools, the tunnel) with a few streams first.
  const warm = async (url: string, headers: Record<string, string>, model: string): Promise<void> => {
    const results = await Promise.all(Array.from({ length: 20 }, () => runStream(new URL('/v1/chat/completions', url), headers, JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: 'warm up' }] }))));
    const bad = results.filter((r) => !r.ok);
    if (bad.length > 0) throw new Error(`warm-up failed on ${model}: ${bad[0]!.error}`);
  };
  await warm(mock.url, { authorization: `Bearer ${KEYS.direct}` }, 'direct');
  await warm(gatewayUrl, auth, 'soak-gateway');
  if (agent) await warm(gatewayUrl, auth, 'soak-agent');
  for (const floor of floors.values()) await warm(floor.url, { authorization: `Bearer ${KEYS.direct}` }, 'direct');

  const results: LegResult[] = [];
  // First idle: warmed up, no stream open, no reclaim run yet.
  const firstIdleMb = treeRssMb(gateway.pid);
  const agentFirstIdleMb = agent && treeRssMb(agent.pid);
  console.log(`gateway at first idle (before any reclaim): RSS ${round(firstIdleMb)} MB, ${await memoryBreakdown(gatewayUrl, firstIdleMb)}${agentFirstIdleMb ? `; agent: RSS ${round(agentFirstIdleMb)} MB` : ''}`);
  // Steady idle: a warm-up burst through each path a leg takes, then each process's idle reclaim, then idle again.
  // Every leg's peak and after are set against this figure: what the process sits at between bursts.
  const reclaimsBefore = { gateway: reclaimsLogged(dir, 'gateway'), agent: reclaimsLogged(dir, 'agent') };
  const warmLegs = LEGS.filter((l) => l === 'gateway' || (l === 'agent' && agent));
  for (const leg of warmLegs) {
    const started = performance.now();
    const body = JSON.stringify({ model: `soak-${leg}`, stream: true, messages: [{ role: 'user', content: 'Write a long answer for the soak test.' }] });
    const burst = await Promise.all(Array.from({ length: WARM_STREAMS }, () => runStream(new URL('/v1/chat/completions', gatewayUrl), auth, body)));
    console.log(`warm-up burst via ${leg}: ${WARM_STREAMS} streams, ${burst.filter((r) => !r.ok).length} errors, ${round((performance.now() - started) / 1000, 1)} s`);
  }
  const reclaimed = await untilReclaimed(dir, { gateway: reclaimsBefore.gateway, ...(agent && warmLegs.includes('agent') && { agent: reclaimsBefore.agent }) });
  const idle: Idle = { pid: gateway.pid, idleMb: treeRssMb(gateway.pid), firstIdleMb };
  const agentIdle: Idle | undefined = agent && { pid: agent.pid, idleMb: treeRssMb(agent.pid), firstIdleMb: agentFirstIdleMb! };
  console.log(
    `gateway at steady idle (${reclaimed}): RSS ${round(idle.idleMb)} MB, ${await memoryBreakdown(gatewayUrl, idle.idleMb)}${agentIdle ? `; agent: RSS ${round(agentIdle.idleMb)} MB` : ''}`,
  );
  saveSmaps(gateway.pid, 'idle');
  if (agent) saveSmaps(agent.pid, 'agent-idle');
  await heapSnapshot(gateway.pid, gatewayUrl, 'idle');
  const before = await mockCounts(mock.url);
  const recordedBefore = recorded(dbPath);
  for (const leg of LEGS) {
    const direct = await runLeg(`direct (before ${leg})`, mock.url, { authorization: `Bearer ${KEYS.direct}` }, 'direct', [watchMock]);
    results.push(direct);
    console.log(JSON.stringify(direct));
    const floor = isFloor(leg) && floors.get(leg);
    if (floor) {
      const through = await runLeg(FLOORS[leg as FloorLeg], floor.url, { authorization: `Bearer ${KEYS.direct}` }, 'direct', [{ name: 'proxy', pid: floor.proc.pid }, watchMock]);
      results.push(through);
      console.log(JSON.stringify(through));
      continue;
    }
    const watch = leg === 'agent' && agent ? [watchGateway, { name: 'agent', pid: agent.pid }, watchMock] : [watchGateway, watchMock];
    const through = await runLeg(leg === 'agent' ? 'modelgate via agent' : 'modelgate', gatewayUrl, auth, `soak-${leg}`, watch, idle, leg === 'agent' ? agentIdle : undefined);
    results.push(through);
    console.log(JSON.stringify(through));
    console.log(`gateway after the ${leg} leg: RSS ${through.rss?.afterMb} MB (every 10 s of the settle: ${through.rss?.settleMb.join(', ')}), ${await memoryBreakdown(gatewayUrl, treeRssMb(gateway.pid))}`);
    saveSmaps(gateway.pid, `after-${leg}`);
    if (agent) saveSmaps(agent.pid, `agent-after-${leg}`);
    await heapSnapshot(gateway.pid, gatewayUrl, `after-${leg}`);
  }
  // Let the last sessions' ends commit before counting them.
  await new Promise((r) => setTimeout(r, 1000));
  const after = await mockCounts(mock.url);
  const recordedAfter = recorded(dbPath);

  console.log('\nper leg (first frame and worst gap in ms; CPU in ms per stream; RSS in MB)');
  console.table(
    results.map((r) => ({
      leg: r.leg,
      ok: r.ok,
      errors: r.errors,
      peakOpen: r.peakOpen,
      firstP50: r.firstFrameP50Ms,
      firstP99: r.firstFrameP99Ms,
      gapP50: r.worstGapP50Ms,
      gapP99: r.worstGapP99Ms,
      cpu: Object.entries(r.cpuMsPerStream).map(([k, v]) => `${k} ${v}`).join(', '),
      rssIdle: r.rss ? `${r.rss.idleMb} (first ${r.rss.firstIdleMb})` : '',
      rssPer1000: r.rss?.perThousandMb ?? '',
      rssPeak: r.rss?.peakMb ?? '',
      rssAfter: r.rss ? `${r.rss.afterMb} (${r.rss.settleS}s)` : '',
      agentRss: r.agentRss ? `idle ${r.agentRss.idleMb} (first ${r.agentRss.firstIdleMb}), per 1000 ${r.agentRss.perThousandMb}, peak ${r.agentRss.peakMb}, after ${r.agentRss.afterMb}` : '',
    })),
  );

  const verdicts: Array<{ check: string; value: string; target: string; pass: boolean }> = [];
  for (let i = 0; i < results.length; i += 2) {
    const direct = results[i]!;
    const through = results[i + 1]!;
    const leg = LEGS[i / 2]!;
    if (isFloor(leg)) {
      // No target of its own: the floor says how much of the gateway's distance from direct any proxy pays here.
      const firstRatio = through.firstFrameP50Ms / Math.max(1, direct.firstFrameP50Ms);
      const gapRatio = through.worstGapP99Ms / Math.max(1, direct.worstGapP99Ms);
      verdicts.push({
        check: `${through.leg}: first-frame p50 / worst-gap p99 vs direct (errors ${through.errors})`,
        value: `${firstRatio.toFixed(2)}x / ${gapRatio.toFixed(2)}x`,
        target: 'floor, no target',
        pass: through.errors === 0,
      });
      continue;
    }
    const connection = `soak-${leg}`;
    const sent = (after[KEYS[leg as 'gateway' | 'agent']] ?? 0) - (before[KEYS[leg as 'gateway' | 'agent']] ?? 0);
    const durable = (recordedAfter[connection]?.forwarded ?? 0) - (recordedBefore[connection]?.forwarded ?? 0);
    const completedNow = (recordedAfter[connection]?.states.completed ?? 0) - (recordedBefore[connection]?.states.completed ?? 0);
    const firstRatio = through.firstFrameP50Ms / Math.max(1, direct.firstFrameP50Ms);
    const gapRatio = through.worstGapP99Ms / Math.max(1, direct.worstGapP99Ms);
    verdicts.push(
      { check: `${through.leg}: errors`, value: `${through.errors} ${JSON.stringify(through.errorKinds)}`, target: '0', pass: through.errors === 0 },
      RECORDING
        ? { check: `${through.leg}: unrecorded (model received - durably recorded)`, value: `${Math.max(0, sent - durable)} (${sent} received, ${durable} recorded, ${completedNow} completed)`, target: '0', pass: sent <= durable }
        : { check: `${through.leg}: unrecorded`, value: 'recording is off (SOAK_RECORDING=off)', target: '0', pass: false },
      { check: `${through.leg}: first-frame p50 vs direct`, value: `${through.firstFrameP50Ms} / ${direct.firstFrameP50Ms} ms = ${firstRatio.toFixed(2)}x`, target: `<= ${TARGETS.ratio}x`, pass: firstRatio <= TARGETS.ratio },
      { check: `${through.leg}: worst-gap p99 vs direct`, value: `${through.worstGapP99Ms} / ${direct.worstGapP99Ms} ms = ${gapRatio.toFixed(2)}x`, target: `<= ${TARGETS.ratio}x`, pass: gapRatio <= TARGETS.ratio },
    );
    if (through.rss) {
      verdicts.push(
        { check: `${through.leg}: RSS above idle per 1,000 open streams`, value: `${through.rss.perThousandMb} MB (idle ${through.rss.idleMb}, peak ${through.rss.peakMb})`, target: `<= ${TARGETS.rssMbPer1000} MB`, pass: through.rss.perThousandMb <= TARGETS.rssMbPer1000 },
        ...(through.agentRss
          ? [{ check: `${through.leg}: agent RSS above idle per 1,000 open streams`, value: `${through.agentRss.perThousandMb} MB (idle ${through.agentRss.idleMb}, peak ${through.agentRss.peakMb}, after ${through.agentRss.afterMb})`, target: `<= ${TARGETS.rssMbPer1000} MB`, pass: through.agentRss.perThousandMb <= TARGETS.rssMbPer1000 }]
          : []),
        {
          check: `${through.leg}: RSS back to steady idle after the leg`,
          value: `${through.rss.afterMb} MB after ${through.rss.settleS}s idle = ${aboveIdle(through.rss.afterMb, through.rss.idleMb)} (steady idle ${through.rss.idleMb}, peak ${through.rss.peakMb}; ${through.rss.backS === undefined ? 'never back' : `back after ${through.rss.backS}s`})`,
          target: `<= idle + ${TARGETS.backToIdle * 100}% (${round(through.rss.idleMb * (1 + TARGETS.backToIdle))} MB)`,
          pass: through.rss.afterMb <= through.rss.idleMb * (1 + TARGETS.backToIdle),
        },
        {
          check: `${through.leg}: RSS after the leg against the first idle (before any reclaim)`,
          value: `${through.rss.afterMb} MB = ${aboveIdle(through.rss.afterMb, through.rss.firstIdleMb)} (first idle ${through.rss.firstIdleMb})`,
          target: 'for comparison with earlier runs',
          pass: through.rss.afterMb <= through.rss.firstIdleMb * (1 + TARGETS.backToIdle),
        },
        ...(through.agentRss
          ? [
              {
                check: `${through.leg}: agent RSS back to steady idle after the leg`,
                value: `${through.agentRss.afterMb} MB = ${aboveIdle(through.agentRss.afterMb, through.agentRss.idleMb)} (steady idle ${through.agentRss.idleMb}; first idle ${through.agentRss.firstIdleMb}: ${aboveIdle(through.agentRss.afterMb, through.agentRss.firstIdleMb)})`,
                target: `<= idle + ${TARGETS.backToIdle * 100}% (${round(through.agentRss.idleMb * (1 + TARGETS.backToIdle))} MB)`,
                pass: through.agentRss.afterMb <= through.agentRss.idleMb * (1 + TARGETS.backToIdle),
              },
            ]
          : []),
      );
    }
  }
  console.log('\nverdicts');
  console.table(verdicts);
  // Heartbeats missed (either side closes the tunnel, cutting every stream in it) and other warnings, from the logs.
  const logLines = (name: string): string[] => {
    try {
      return readFileSync(join(dir, `${name}.log`), 'utf8').split('\n');
    } catch {
      return [];
    }
  };
  const warnings = new Map<string, number>();
  for (const name of ['gateway', 'agent']) {
    for (const line of logLines(name)) {
      const m = /"level":(40|50|60).*?"msg":"([^"]+)"/.exec(line);
      if (m) warnings.set(`${name}: ${m[2]}`, (warnings.get(`${name}: ${m[2]}`) ?? 0) + 1);
    }
  }
  if (warnings.size > 0) console.log('\nwarnings and errors logged:', Object.fromEntries(warnings));
  // When the gateway gave memory back after a burst, how much, and how long its event loop was blocked for it.
  for (const line of logLines('gateway')) if (line.includes('"msg":"idle after a burst')) console.log(`gateway: ${line}`);
  for (const proc of [gateway, agent]) {
    if (proc && (proc.child.exitCode !== null || proc.child.signalCode !== null)) console.log(`${proc.name} EXITED during the run (${proc.child.exitCode ?? proc.child.signalCode})`);
  }
  if (results.some((r) => r.errors > 0)) {
    // The temp dir goes with the bench: keep the children's logs for a look at what failed.
    const kept = mkdtempSync(join(os.tmpdir(), 'modelgate-soak-logs-'));
    for (const name of ['gateway', 'agent', 'soak-mock']) {
      try {
        cpSync(join(dir, `${name}.log`), join(kept, `${name}.log`));
      } catch {
        /* that process did not run */
      }
    }
    console.log(`logs of the gateway, the agent and the mock kept in ${kept}`);
  }
  console.log(`load average at end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(JSON.stringify({ streams: STREAMS, rampMs: RAMP_MS, results, verdicts }));
  // A long grace: the gateway drains and, under --cpu-prof, writes its profile on the way out.
  await gateway.stop(20_000);
  await stopAllChildren();
  await idp.close();
  clearTimeout(deadline);
}

await main();
process.exit(0);
