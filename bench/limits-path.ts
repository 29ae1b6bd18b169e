// `npm run bench -- limits-path`: what limits add to one request
// through the whole gateway process (token check, access, admission, the
// x-ratelimit-* headers, settling after the response, the access log), as
// the throughput benchmark sees it, but counted rather than timed: limits
// off against limits on (bench/targets.ts benchLimits: five checks a call).
//
//   - CPU time of the gateway process per request (utime + stime from
//     /proc), over rounds that alternate the targets;
//   - with BENCH_CALLGRIND=1, instructions per request, counted by valgrind's
//     callgrind in the gateway process: repeatable on a machine whose load
//     makes throughput ratios swing by ±25 %.
//
// Env: BENCH_REQUESTS (measured requests per target and round; default 20000,
// 3000 under callgrind), BENCH_WARMUP_REQUESTS (5000; 3000 under callgrind),
// BENCH_ROUNDS (3; 1 under callgrind), BENCH_CONNECTIONS (10),
// BENCH_LIMIT_STORES (memory, or memory,redis; off adds a second limits-off gateway), BENCH_GATEWAY_NODE_FLAGS (e.g. --cpu-prof).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { startDevIdp } from '../src/dev/idp.js';
import { median, runLoad } from './load.js';
import { benchLimits, cpuTicksOf, startModelgate, startUpstream, stopAllChildren, type Target } from './targets.js';

const callgrind = process.env.BENCH_CALLGRIND === '1';
const requests = Number(process.env.BENCH_REQUESTS ?? (callgrind ? 3_000 : 20_000));
const warmup = Number(process.env.BENCH_WARMUP_REQUESTS ?? (callgrind ? 3_000 : 5_000));
const rounds = Number(process.env.BENCH_ROUNDS ?? (callgrind ? 1 : 3));
const connections = Number(process.env.BENCH_CONNECTIONS ?? 10);
const stores = (process.env.BENCH_LIMIT_STORES ?? 'memory').split(',') as Array<'memory' | 'redis' | 'off'>;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

const dir = mkdtempSync(join(os.tmpdir(), 'modelgate-limits-path-'));
console.log(`load average at start: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
const upstream = await startUpstream('bench-upstream-key', dir);
const idp = await startDevIdp({ audience: 'modelgate', accessTokenTtlSeconds: 3600 });
try {
  const options = {
    issuer: idp.issuer,
    audience: 'modelgate',
    upstreamUrl: upstream.url,
    apiKey: 'bench-upstream-key',
    model: 'demo-chat',
    group: 'ci',
    accessToken: await idp.clientCredentialsToken('ci-bot'),
    logDir: dir,
    nodeFlags: (process.env.BENCH_GATEWAY_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean),
  };
  const variants: Array<{ name: string; limits?: Record<string, unknown> }> = [
    { name: 'limits off' },
    // `off` again is an A/A check: what two identical gateways differ by on this machine.
    ...stores.map((store) => (store === 'off' ? { name: 'limits off-again' } : { name: `limits ${store}`, limits: benchLimits(store) })),
  ];

  if (callgrind) {
    // One gateway at a time under valgrind; its counters are zeroed after the warm-up and dumped after the measured requests.
    for (const v of variants) {
      const target = await startModelgate({
        ...options,
        name: v.name.replace(' ', '-'),
        ...(v.limits && { limits: v.limits }),
        wrap: { command: ['valgrind', '--tool=callgrind', `--callgrind-out-file=${join(dir, 'callgrind.%p')}`, '--dump-line=no'], startupMs: 300_000 },
      });
      await load(target, warmup, { warmup: true });
      execFileSync('callgrind_control', ['--zero', String(target.process!.pid)], { stdio: 'ignore' });
      await load(target, requests);
      execFileSync('callgrind_control', ['--dump', String(target.process!.pid)], { stdio: 'ignore' });
      const pid = target.process!.pid;
      const dumps = readdirSync(dir).filter((f) => f.startsWith(`callgrind.${pid}.`));
      const totals = /^(?:summary|totals): (\d+)/m.exec(readFileSync(join(dir, dumps.sort().at(-1)!), 'utf8'));
      const perRequest = Number(totals?.[1]) / requests;
      console.log(`${v.name}: ${(perRequest / 1e6).toFixed(3)} M instructions per request (callgrind, ${requests} requests at c=${connections} after ${warmup} warm-up)`);
      await target.process!.stop(60_000);
    }
  } else {
    const targets: Target[] = [];
    for (const v of variants) targets.push(await startModelgate({ ...options, name: v.name.replace(' ', '-'), ...(v.limits && { limits: v.limits }) }));
    for (const t of targets) await load(t, warmup, { warmup: true });
    const cpu = new Map<string, number[]>(targets.map((t) => [t.name, []]));
    for (let round = 0; round < rounds; round++) {
      // Rotated each round, so a busy moment on the machine does not land on one target.
      for (const t of [...targets.slice(round % targets.length), ...targets.slice(0, round % targets.length)]) {
        const before = cpuTicksOf(t.process!.pid);
        const done = await load(t, requests);
        cpu.get(t.name)!.push((((cpuTicksOf(t.process!.pid) - before) / CLK_TCK) * 1e6) / done);
      }
    }
    const off = median(cpu.get(targets[0]!.name)!);
    for (const t of targets) {
      const us = median(cpu.get(t.name)!);
      console.log(
        `${t.name}: ${us.toFixed(1)} µs CPU per request (median of ${rounds} rounds: ${cpu.get(t.name)!.map((x) => x.toFixed(1)).join(', ')})` +
          (t === targets[0] ? '' : `, ${(us - off).toFixed(1)} µs (${((us / off - 1) * 100).toFixed(1)} %) more than limits off`),
      );
    }
  }
} finally {
  await stopAllChildren();
  await idp.close();
  rmSync(dir, { recursive: true, force: true });
  console.log(`load average at end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}

async function load(target: Target, amount: number, { warmup = false } = {}): Promise<number> {
  const run = await runLoad(target, { connections, stream: false, amount });
  // Under valgrind the first requests wait on the compiler and may time out; measured ones may not.
  if (run.failed > 0 && !warmup) throw new Error(`${target.name}: ${run.failed} of ${amount} requests failed`);
  return run.ok;
}
