// `npm run bench -- stream-cost`: what a streamed frame costs the gateway,
// in instructions, next to the HTTP pipe floor (bench/soak-floor.ts), so a
// change to the data path can be judged on two shared cores whatever else
// runs on them. Timings there swing with load; instruction counts do not.
//
// Each proxy runs under valgrind's callgrind with instrumentation off, is
// warmed up, then counted only while COST_STREAMS streams of the soak's mock
// (bench/soak-mock.ts: SOAK_FRAMES frames SOAK_INTERVAL_MS apart) pass
// through it at once. Every thread of the proxy is counted (the GC's
// helpers too); the kernel's side of each syscall is not (count those with
// `strace -c -f`). The soak's own per-stream CPU stays the figure to report;
// this one is for deciding what to change.
//
// Env: COST_STREAMS (default 100), COST_TARGETS (gateway,pipe),
// COST_MASKING / COST_RECORDING (off by default: the bare path; `on` to add
// them), COST_WARMUP (rounds of 20 streams first, 8), SOAK_FRAMES (50), SOAK_INTERVAL_MS (100), COST_OUT (a directory to
// keep the callgrind dumps in, for callgrind_annotate), COST_NODE_FLAGS (node
// flags for the gateway, e.g. `--no-memory-reducer`), COST_THREADS (`on`: counted per thread
// too, `--separate-threads=yes`; thread 1 is the main thread).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startDevIdp } from '../src/dev/idp.js';
import { BENCH_GUARDRAILS, firstLine, freePort, killAllChildren, spawnTracked, stopAllChildren, untilReady, type ManagedProcess } from './targets.js';

const STREAMS = Number(process.env.COST_STREAMS ?? 100);
const FRAMES = Number(process.env.SOAK_FRAMES ?? 50);
const INTERVAL_MS = Number(process.env.SOAK_INTERVAL_MS ?? 100);
const TARGETS = (process.env.COST_TARGETS ?? 'gateway,pipe').split(',').filter(Boolean);
const MASKING = process.env.COST_MASKING === 'on';
const RECORDING = process.env.COST_RECORDING === 'on';
const KEEP = process.env.COST_OUT;
const NODE_FLAGS = (process.env.COST_NODE_FLAGS ?? '').split(' ').filter(Boolean);
const BY_THREAD = process.env.COST_THREADS === 'on';
/** Rounds of 20 streams before counting, so the JIT's tiering is mostly done (compiling shows up as v8::internal::compiler in the dump). */
const WARMUP_ROUNDS = Number(process.env.COST_WARMUP ?? 8);
const KEYS = { direct: 'soak-direct', gateway: 'soak-gateway' } as const;
/** Under callgrind a process runs some 30-50 times slower: start-up and streams get room. */
const SLOW_START_MS = 10 * 60_000;

/** One stream; resolves with the number of frames seen (FRAMES + [DONE] when whole). */
function runStream(url: URL, headers: Record<string, string>, body: string): Promise<number> {
  return new Promise((resolve) => {
    let frames = 0;
    let tail = '';
    const req = http.request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers } });
    req.on('error', () => resolve(-1));
    req.on('response', (res) => {
      res.setEncoding('utf8');
      res.on('data', (text: string) => {
        const scan = tail + text;
        for (let i = scan.indexOf('data: ', tail.length === 0 ? 0 : 1); i !== -1; i = scan.indexOf('data: ', i + 6)) frames++;
        tail = scan.slice(-6);
      });
      res.on('end', () => resolve(res.statusCode === 200 ? frames : -res.statusCode!));
      res.on('error', () => resolve(-1));
    });
    req.end(body);
  });
}

async function streams(n: number, url: string, headers: Record<string, string>, model: string): Promise<number> {
  const body = JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: 'Write a long answer for the soak test.' }] });
  const frames = await Promise.all(Array.from({ length: n }, () => runStream(new URL('/v1/chat/completions', url), headers, body)));
  const bad = frames.filter((f) => f !== FRAMES + 1);
  if (bad.length > 0) throw new Error(`${bad.length} of ${n} streams did not end whole (e.g. ${bad[0]})`);
  return n * (FRAMES + 1);
}

const callgrind = (outDir: string): string[] => [
  'valgrind',
  '--tool=callgrind',
  '--instr-atstart=no',
  ...(BY_THREAD ? ['--separate-threads=yes'] : []),
  `--callgrind-out-file=${join(outDir, 'callgrind.%p.out')}`,
];

/** Counts `run` in the process under callgrind: instrumentation on, run, off, dump; returns the instructions counted. */
async function counted(pid: number, outDir: string, run: () => Promise<unknown>): Promise<number> {
  execFileSync('callgrind_control', ['-i', 'on', String(pid)], { stdio: 'ignore' });
  await run();
  execFileSync('callgrind_control', ['-i', 'off', String(pid)], { stdio: 'ignore' });
  execFileSync('callgrind_control', ['-d', String(pid)], { stdio: 'ignore' });
  let total = 0;
  const byThread: Record<string, number> = {};
  for (const file of readdirSync(outDir).filter((f) => f.startsWith(`callgrind.${pid}.out`))) {
    // `summary` is what instrumentation saw at the dump (none: it is off by then); `totals`, everything counted.
    const totals = /^totals: (\d+)/m.exec(readFileSync(join(outDir, file), 'utf8'));
    total += Number(totals?.[1] ?? 0);
    // With --separate-threads=yes each thread's dump ends in -NN (thread 1 is the main thread).
    const thread = /-(\d+)$/.exec(file)?.[1];
    if (thread !== undefined && Number(totals?.[1] ?? 0) > 0) byThread[`thread ${Number(thread)}`] = (byThread[`thread ${Number(thread)}`] ?? 0) + Number(totals![1]);
  }
  if (BY_THREAD) console.log(`instructions per stream by thread: ${Object.entries(byThread).map(([thread, n]) => `${thread} ${(n / STREAMS / 1e6).toFixed(2)} M`).join(', ')}`);
  return total;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(os.tmpdir(), 'modelgate-bench-cost-'));
  process.on('exit', () => {
    killAllChildren();
    rmSync(dir, { recursive: true, force: true });
  });
  console.log(`machine: ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, node ${process.version}`);
  console.log(`settings: ${STREAMS} streams at once, ${FRAMES} frames ${INTERVAL_MS} ms apart; masking ${MASKING ? 'on' : 'off'}, recording ${RECORDING ? 'on (SQLite)' : 'off'}; counted under callgrind`);
  const mock = spawnTracked('soak-mock', process.execPath, ['--import', 'tsx', 'bench/soak-mock.ts'], {
    env: { SOAK_KEYS: Object.values(KEYS).join(','), SOAK_FRAMES: String(FRAMES), SOAK_INTERVAL_MS: String(INTERVAL_MS) },
    stdout: 'pipe',
    logDir: dir,
  });
  const mockUrl = await firstLine(mock);
  const results: Array<{ proxy: string; streams: number; frames: number; instructionsPerStream: number; instructionsPerFrame: number }> = [];

  for (const target of TARGETS) {
    const outDir = KEEP ? join(KEEP, target) : mkdtempSync(join(dir, `${target}-`));
    mkdirSync(outDir, { recursive: true });
    let proc: ManagedProcess;
    let url: string;
    let headers: Record<string, string>;
    let model: string;
    let idp: Awaited<ReturnType<typeof startDevIdp>> | undefined;
    if (target === 'pipe') {
      const [bin, ...args] = callgrind(outDir);
      proc = spawnTracked('floor-http', bin!, [...args, process.execPath, '--import', 'tsx', 'bench/soak-floor.ts', 'http', mockUrl], { stdout: 'pipe', logDir: dir });
      url = await firstLine(proc);
      headers = { authorization: `Bearer ${KEYS.direct}` };
      model = 'direct';
    } else {
      idp = await startDevIdp({ audience: 'modelgate', accessTokenTtlSeconds: 3600 });
      const port = await freePort();
      const config = {
        // Under callgrind the gateway runs tens of times slower: a burst of requests must not hit node's request timeouts.
        server: { host: '127.0.0.1', port, shutdown_grace: '5s', headers_timeout: '300s', request_timeout: '600s' },
        logging: { level: 'info' },
        identity: { issuers: [{ issuer: idp.issuer, audience: 'modelgate' }], max_token_lifetime: '1h' },
        connections: [{ name: 'soak-gateway', kind: 'openai', url: mockUrl, api_key: KEYS.gateway, models: [{ name: 'soak-gateway' }], max_connections_per_target: STREAMS + 100, max_queued: STREAMS }],
        access: [{ description: 'the bench client', groups: ['ci'], connections: ['soak-gateway'], models: ['soak-gateway'] }],
        ...(MASKING && { guardrails: BENCH_GUARDRAILS }),
        storage: { sqlite: { path: join(dir, 'audit.db') } },
        recording: { enabled: RECORDING },
      };
      const configPath = join(dir, 'modelgate.yaml');
      writeFileSync(configPath, stringify(config));
      const [bin, ...args] = callgrind(outDir);
      proc = spawnTracked('gateway', bin!, [...args, process.execPath, ...NODE_FLAGS, 'bin/modelgate.js', 'gateway', '--config', configPath], { stdout: 'log', logDir: dir });
      url = `http://127.0.0.1:${port}`;
      await untilReady(proc, async () => (await fetch(`${url}/readyz`)).status === 200, SLOW_START_MS);
      headers = { authorization: `Bearer ${await idp.clientCredentialsToken('ci-bot')}` };
      model = 'soak-gateway';
    }
    // Warm the JIT and the pools first, as the soak does; the counted streams then run at once.
    for (let i = 0; i < WARMUP_ROUNDS; i++) await streams(20, url, headers, model);
    const started = performance.now();
    let frames = 0;
    const instructions = await counted(proc.pid, outDir, async () => (frames = await streams(STREAMS, url, headers, model)));
    console.log(`${target}: ${STREAMS} streams in ${((performance.now() - started) / 1000).toFixed(0)} s under callgrind`);
    results.push({
      proxy: target === 'pipe' ? 'floor: http pipe' : `modelgate${MASKING ? ' +masking' : ''}${RECORDING ? ' +recording' : ''}`,
      streams: STREAMS,
      frames,
      instructionsPerStream: Math.round(instructions / STREAMS),
      instructionsPerFrame: Math.round(instructions / frames),
    });
    await proc.stop(60_000);
    await idp?.close();
  }
  console.table(results);
  const gateway = results.find((r) => r.proxy.startsWith('modelgate'));
  const pipe = results.find((r) => r.proxy.startsWith('floor'));
  if (gateway && pipe) console.log(`gateway / pipe, instructions per stream: ${(gateway.instructionsPerStream / pipe.instructionsPerStream).toFixed(2)}x`);
  console.log(JSON.stringify({ streams: STREAMS, frames: FRAMES, masking: MASKING, recording: RECORDING, results }));
  await stopAllChildren();
}

await main();
process.exit(0);
