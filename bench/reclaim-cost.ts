// `npm run bench -- reclaim-cost`: what a gateway pays when traffic
// comes back after its idle reclaim (server.idle_reclaim, ops/idle-reclaim.ts).
//
// One gateway (from dist/, as the other benches), recording on SQLite unless
// RC_STORAGE=none, with a short idle reclaim. Each cycle waits for a reclaim
// (its log line), measures a window of load right after it ("cold"), runs
// 4 s of unmeasured load, and measures a window of the same length ("warm").
// CPU per request comes from each thread's schedstat (nanoseconds): the main
// thread, and the four busiest others by their tid's offset from the pid
// (Node names every thread `node`; V8's helpers are +1..+4 or so, the store
// thread comes later).
//
// Env: RC_CYCLES (4), RC_WINDOW_S (2), RC_CONNECTIONS (50), RC_STREAM (0),
// RC_IDLE_RECLAIM (3s), RC_STORAGE (sqlite | none), RC_FLAGS (node flags for
// the gateway, e.g. `--trace-opt --trace-deopt`), RC_COUNT (patterns counted
// in the gateway's output during each window, e.g. `completed compiling`),
// RC_ENV (extra env for the gateway, `A=1 B=2`), RC_KEEP=1 keeps the logs.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startDevIdp } from '../src/dev/idp.js';
import { runLoad, type LoadRun } from './load.js';
import { freePort, killAllChildren, spawnTracked, startUpstream, stopAllChildren, untilReady, type Target } from './targets.js';

const CYCLES = Number(process.env.RC_CYCLES ?? 4);
const WINDOW_S = Number(process.env.RC_WINDOW_S ?? 2);
const CONNECTIONS = Number(process.env.RC_CONNECTIONS ?? 50);
const STREAM = process.env.RC_STREAM === '1';
const IDLE_RECLAIM = process.env.RC_IDLE_RECLAIM ?? '3s';
const STORAGE = process.env.RC_STORAGE ?? 'sqlite';
const FLAGS = (process.env.RC_FLAGS ?? '').split(/\s+/).filter(Boolean);
const EXTRA_ENV = Object.fromEntries((process.env.RC_ENV ?? '').split(' ').filter(Boolean).map((kv) => kv.split('=') as [string, string]));
const KEY = 'bench-upstream-key';

/** Nanoseconds on CPU of each thread of a process. */
function threadNs(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      out.set(Number(tid), Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]));
    } catch {
      /* ended */
    }
  }
  return out;
}

interface Window {
  run: LoadRun;
  /** µs per request by thread tid. */
  perThread: Map<number, number>;
}

/** RC_COUNT=a,b: lines of the gateway's output matching each pattern in a window (with RC_FLAGS=--trace-gc, --trace-opt...). */
const COUNTED = (process.env.RC_COUNT ?? '').split(',').filter(Boolean);
let logPath = '';
let counts: string[] = [];

async function window(target: Target, pid: number, seconds: number): Promise<Window> {
  const logFrom = statSync(logPath).size;
  const before = threadNs(pid);
  const run = await runLoad(target, { connections: CONNECTIONS, stream: STREAM, durationS: seconds });
  const after = threadNs(pid);
  if (COUNTED.length > 0) {
    await new Promise((r) => setTimeout(r, 100));
    const text = readFileSync(logPath).subarray(logFrom).toString();
    counts.push(COUNTED.map((p) => `${p}:${(text.match(new RegExp(p, 'g')) ?? []).length}`).join(' '));
  }
  const perThread = new Map<number, number>();
  for (const [tid, ns] of after) perThread.set(tid, (ns - (before.get(tid) ?? 0)) / 1000 / Math.max(1, run.ok));
  return { run, perThread };
}

const reclaims = (logPath: string): number => (readFileSync(logPath, 'utf8').match(/memory given back/g) ?? []).length;

async function main(): Promise<void> {
  process.on('exit', killAllChildren);
  const dir = mkdtempSync(join(os.tmpdir(), 'modelgate-reclaim-cost-'));
  try {
    const upstream = await startUpstream(KEY, dir);
    const idp = await startDevIdp({ audience: 'modelgate', accessTokenTtlSeconds: 3600 });
    const token = await idp.clientCredentialsToken('ci-bot');
    const port = await freePort();
    const config = {
      server: { host: '127.0.0.1', port, shutdown_grace: '2s', idle_reclaim: IDLE_RECLAIM },
      logging: { level: 'info' },
      identity: { issuers: [{ issuer: idp.issuer, audience: 'modelgate' }], max_token_lifetime: '1h' },
      connections: [{ name: 'bench', kind: 'openai', url: upstream.url, api_key: KEY, models: [{ name: 'demo-chat' }] }],
      access: [{ groups: ['ci'], connections: ['bench'], models: ['demo-chat'] }],
      ...(STORAGE === 'sqlite' ? { storage: { driver: 'sqlite', sqlite: { path: join(dir, 'audit.db') } }, recording: { enabled: true } } : { recording: { enabled: false } }),
    };
    const configPath = join(dir, 'gateway.yaml');
    writeFileSync(configPath, stringify(config));
    const proc = spawnTracked('gateway', process.execPath, [...FLAGS, 'bin/modelgate.js', 'gateway', '--config', configPath], { stdout: 'log', logDir: dir, env: EXTRA_ENV });
    const target: Target = { name: 'modelgate', url: `http://127.0.0.1:${port}`, headers: { authorization: `Bearer ${token}` } };
    logPath = proc.logPath;
    await untilReady(proc, () => fetch(`${target.url}/readyz`).then((r) => r.status === 200, () => false));
    console.log(`load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; c=${CONNECTIONS} ${STREAM ? 'streamed' : 'non-streamed'}, ${WINDOW_S} s windows, reclaim after ${IDLE_RECLAIM}, storage ${STORAGE}, flags [${FLAGS.join(' ')}] env ${JSON.stringify(EXTRA_ENV)}`);
    await runLoad(target, { connections: 50, stream: false, durationS: 5 });
    await runLoad(target, { connections: 10, stream: true, durationS: 2 });
    const rows: Array<Record<string, unknown>> = [];
    const sums = { cold: [] as number[], warm: [] as number[] };
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const seen = reclaims(proc.logPath);
      const deadline = Date.now() + 40_000;
      while (reclaims(proc.logPath) === seen && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      const reclaimed = reclaims(proc.logPath) > seen;
      await new Promise((r) => setTimeout(r, 300));
      const cold = await window(target, proc.pid, WINDOW_S);
      await runLoad(target, { connections: CONNECTIONS, stream: STREAM, durationS: 4 });
      const warm = await window(target, proc.pid, WINDOW_S);
      for (const [label, w] of [['cold', cold], ['warm', warm]] as const) {
        const main = w.perThread.get(proc.pid) ?? 0;
        const others = [...w.perThread].filter(([tid]) => tid !== proc.pid).sort((a, b) => b[1] - a[1]);
        const total = [...w.perThread.values()].reduce((s, x) => s + x, 0);
        sums[label].push(total);
        rows.push({
          cycle,
          reclaimed,
          window: label,
          rps: Math.round(w.run.rps),
          totalUs: Math.round(total),
          mainUs: Math.round(main),
          top: others
            .slice(0, 4)
            .map(([tid, us]) => `+${tid - proc.pid}:${Math.round(us)}`)
            .join(' '),
          ...(COUNTED.length > 0 && { counted: counts.shift() }),
        });
      }
    }
    console.table(rows);
    const diffs = sums.cold.map((c, i) => Math.round(c - sums.warm[i]!));
    console.log(`cold - warm, µs per request (all threads), each cycle: ${diffs.join(' ')}`);
    const lines = readFileSync(proc.logPath, 'utf8').split('\n').filter((l) => l.includes('memory given back'));
    if (process.env.RC_SHOW_RECLAIM) console.log(lines.slice(-1).join('\n'));
    await proc.stop();
    await idp.close();
  } finally {
    await stopAllChildren();
    if (process.env.RC_KEEP) console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

await main();
