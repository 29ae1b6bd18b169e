// `node --import tsx bench/workers.ts`: throughput of `modelgate gateway
// --workers 2` against `--workers 1` (non-streaming chat at concurrency 50,
// an instant mock upstream, recording off), in alternating rounds in one
// run, and the ratio. Env: BENCH_DURATION (seconds per round, 5), BENCH_ROUNDS (3).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { startDevIdp } from '../src/dev/idp.js';
import { median, runLoad } from './load.js';
import { killAllChildren, startModelgate, startUpstream } from './targets.js';

const durationS = Number(process.env.BENCH_DURATION ?? 5);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const dir = mkdtempSync(join(os.tmpdir(), 'modelgate-bench-workers-'));
process.on('exit', () => {
  killAllChildren();
  rmSync(dir, { recursive: true, force: true });
});

const upstream = await startUpstream('bench-upstream-key', dir);
const idp = await startDevIdp({ audience: 'modelgate', accessTokenTtlSeconds: 3600 });
const token = await idp.clientCredentialsToken('ci-bot');
const base = { issuer: idp.issuer, audience: 'modelgate', upstreamUrl: upstream.url, apiKey: 'bench-upstream-key', model: 'demo-chat', group: 'ci', accessToken: token, logDir: dir, nodeFlags: [] };
const one = await startModelgate({ ...base, name: 'workers-1', workers: 1 });
const two = await startModelgate({ ...base, name: 'workers-2', workers: 2 });
const rps: Record<string, number[]> = { 'workers-1': [], 'workers-2': [] };
for (let r = 0; r < rounds; r++) {
  for (const target of r % 2 === 0 ? [one, two] : [two, one]) {
    await runLoad(target, { connections: 50, durationS: 1, stream: false });
    const run = await runLoad(target, { connections: 50, durationS, stream: false });
    rps[target.name]!.push(run.rps);
    if (run.failed > 0) console.log(`${target.name}: ${run.failed} failed`);
  }
}
const m1 = median(rps['workers-1']!);
const m2 = median(rps['workers-2']!);
console.log(`cores: ${os.availableParallelism()}, load average: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log(`--workers 1: ${m1.toFixed(0)} req/s   --workers 2: ${m2.toFixed(0)} req/s   ratio 2/1: ${(m2 / m1).toFixed(2)}   (rounds: ${JSON.stringify(rps)})`);
await idp.close();
process.exit(0);
