// `npm run bench -- workers`: throughput of `modelgate gateway --workers 2`
// against `--workers 1` (non-streaming chat at concurrency 50, an instant
// mock upstream, recording off), in alternating rounds in one run, and the
// ratio. Env: BENCH_DURATION (seconds per round, 5), BENCH_ROUNDS (3).
//
// On a machine whose cores also run the load generator and the mock, two
// workers cannot double throughput: the ceiling is what the cores allow once
// every process's CPU per request is paid. So the bench also measures CPU per
// request (the gateway's processes, primary and workers; and with the mock
// and the load generator, everything one request costs this machine) and
// prints the ratio as a share of that ceiling: the scaling the gateway itself
// leaves on the table. Other work on the machine does not count against it.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { startDevIdp } from '../src/dev/idp.js';
import { median, runLoad } from './load.js';
import { CLK_TCK, cpuTicksOf, killAllChildren, machineCpuTicks, startModelgate, startUpstream, treeCpuTicks, type Target } from './targets.js';

const durationS = Number(process.env.BENCH_DURATION ?? 5);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const dir = mkdtempSync(join(os.tmpdir(), 'modelgate-bench-workers-'));
process.on('exit', () => {
  killAllChildren();
  rmSync(dir, { recursive: true, force: true });
});

const treeTicks = (target: Target) => treeCpuTicks(target.process!.pid);

const upstream = await startUpstream('bench-upstream-key', dir);
const idp = await startDevIdp({ audience: 'modelgate', accessTokenTtlSeconds: 3600 });
const token = await idp.clientCredentialsToken('ci-bot');
const base = { issuer: idp.issuer, audience: 'modelgate', upstreamUrl: upstream.url, apiKey: 'bench-upstream-key', model: 'demo-chat', group: 'ci', accessToken: token, logDir: dir, nodeFlags: [] };
const one = await startModelgate({ ...base, name: 'workers-1', workers: 1 });
const two = await startModelgate({ ...base, name: 'workers-2', workers: 2 });
type Round = { rps: number; gatewayUs: number; systemUs: number; machineBusy: number };
const results: Record<string, Round[]> = { 'workers-1': [], 'workers-2': [] };
for (let r = 0; r < rounds; r++) {
  for (const target of r % 2 === 0 ? [one, two] : [two, one]) {
    await runLoad(target, { connections: 50, durationS: 1, stream: false });
    const gateway0 = treeTicks(target);
    const others0 = cpuTicksOf(process.pid) + cpuTicksOf(upstream.process.pid);
    const machine0 = machineCpuTicks();
    const run = await runLoad(target, { connections: 50, durationS, stream: false });
    const machine1 = machineCpuTicks();
    const gateway = treeTicks(target) - gateway0;
    const others = cpuTicksOf(process.pid) + cpuTicksOf(upstream.process.pid) - others0;
    const perRequestUs = (ticks: number) => ((ticks / CLK_TCK) * 1e6) / Math.max(1, run.ok);
    results[target.name]!.push({
      rps: run.rps,
      gatewayUs: perRequestUs(gateway),
      systemUs: perRequestUs(gateway + others),
      machineBusy: (machine1.busy - machine0.busy) / Math.max(1, machine1.total - machine0.total),
    });
    if (run.failed > 0) console.log(`${target.name}: ${run.failed} failed`);
  }
}

const cores = os.availableParallelism();
const summary = (name: string) => {
  const rs = results[name]!;
  return { rps: median(rs.map((x) => x.rps)), gatewayUs: median(rs.map((x) => x.gatewayUs)), systemUs: median(rs.map((x) => x.systemUs)), busy: median(rs.map((x) => x.machineBusy)) };
};
const s1 = summary('workers-1');
const s2 = summary('workers-2');
// The most two workers could serve: every core busy, at what one request costs gateway, mock and load generator.
const ceiling = (cores * 1e6) / s2.systemUs / s1.rps;
console.log(`cores: ${cores}, load average: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
for (const [name, s] of [['--workers 1', s1], ['--workers 2', s2]] as const) {
  console.log(
    `${name}: ${s.rps.toFixed(0)} req/s, gateway CPU ${s.gatewayUs.toFixed(0)} µs/req (all its processes), with mock and load generator ${s.systemUs.toFixed(0)} µs/req, machine ${(s.busy * 100).toFixed(0)}% busy`,
  );
}
console.log(
  `ratio 2/1: ${(s2.rps / s1.rps).toFixed(2)}; the ceiling these cores allow at the measured CPU per request: ${ceiling.toFixed(2)}; ` +
    `efficiency ${((s2.rps / s1.rps / ceiling) * 100).toFixed(0)}% of it`,
);
console.log(`rounds: ${JSON.stringify(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.map((x) => Math.round(x.rps))])))}`);
await idp.close();
process.exit(0);
