// `npm run bench -- routing`: what the hop between instances costs. The same
// requests, non-streamed and streamed, sent in one run
//   (a) straight to the mock model,
//   (b) through the gateway that holds the agent (gateway → agent → model),
//   (c) through another gateway, which forwards to the holder over
//       agents.routing (gateway → holder → agent → model),
// one at a time in interleaved blocks (time per request, time to first
// frame), then at concurrency in rotated rounds (throughput). Two instances
// share SQLite storage (agent keys and the route table); recording is off
// in both, so the figures are the path's own. The workers of one
// `gateway --workers N` forward to each other by the same code over
// loopback, so (c) is also the cost of landing on a worker without the tunnel.
//
// Env: BENCH_REQUESTS (sequential requests per target and kind, 400),
// BENCH_DURATION (seconds per concurrent round, 5), BENCH_ROUNDS (2),
// BENCH_CONNECTIONS (concurrency, 20).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Client } from 'undici';
import { stringify } from 'yaml';
import { startDevIdp } from '../src/dev/idp.js';
import { CHAT_PATH, chatBody, median, percentile, rotate, runLoad, streamOnce, type StreamSample } from './load.js';
import { directTarget, freePort, killAllChildren, spawnTracked, startUpstream, stopAllChildren, untilReady, type Target } from './targets.js';

const REQUESTS = Math.max(20, Number(process.env.BENCH_REQUESTS ?? 400));
const DURATION_S = Number(process.env.BENCH_DURATION ?? 5);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 2));
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 20);
const BLOCK = 20;
const UPSTREAM_KEY = 'bench-upstream-key';

const dir = mkdtempSync(join(os.tmpdir(), 'modelgate-bench-routing-'));
process.on('exit', () => {
  killAllChildren();
  rmSync(dir, { recursive: true, force: true });
});
const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');
console.log(`machine: ${os.availableParallelism()} cores, load average ${load()}, node ${process.version}`);
console.log(`settings: ${REQUESTS} sequential requests per target and kind; concurrency ${CONNECTIONS} for ${DURATION_S} s x ${ROUNDS} rounds; recording off; instant mock model`);

const upstream = await startUpstream(UPSTREAM_KEY, dir);
const idp = await startDevIdp({ audience: 'modelgate', accessTokenTtlSeconds: 3600 });
const token = await idp.clientCredentialsToken('ci-bot');
const secret = randomBytes(32).toString('base64url');
const storagePath = join(dir, 'shared.db');

async function startGateway(name: string): Promise<{ target: Target; agentsPort: number; configPath: string }> {
  const [port, agentsPort] = [await freePort(), await freePort()];
  const config = {
    server: { host: '127.0.0.1', port, shutdown_grace: '2s' },
    logging: { level: 'info' },
    identity: { issuers: [{ issuer: idp.issuer, audience: 'modelgate' }], max_token_lifetime: '1h' },
    connections: [{ name: 'bench', kind: 'openai', targets: [{ via: 'agent' }], api_key: UPSTREAM_KEY, models: [{ name: 'demo-chat' }] }],
    access: [{ description: 'the bench client may chat', groups: ['ci'], connections: ['bench'], models: ['demo-chat'] }],
    storage: { driver: 'sqlite', sqlite: { path: storagePath } },
    recording: { enabled: false },
    agents: { listen: { host: '127.0.0.1', port: agentsPort }, routing: { listen: { host: '127.0.0.1', port: 0 }, secret } },
  };
  const configPath = join(dir, `${name}.yaml`);
  writeFileSync(configPath, stringify(config));
  // stdout (one access-log line a request) goes nowhere, as in the other benches: its cost is part of what is measured.
  const proc = spawnTracked(name, process.execPath, ['bin/modelgate.js', 'gateway', '--config', configPath, '--workers', '1'], { stdout: 'null', logDir: dir });
  const url = `http://127.0.0.1:${port}`;
  await untilReady(proc, async () => (await fetch(`${url}/readyz`)).status === 200);
  return { target: { name, url, headers: { authorization: `Bearer ${token}` }, process: proc }, agentsPort, configPath };
}

// One after the other: the first creates the shared tables.
const holder = await startGateway('holder');
const forwarder = await startGateway('forwarder');
const key = /mga_[0-9a-f]{16}_[A-Za-z0-9_-]{43}/.exec(execFileSync(process.execPath, ['bin/modelgate.js', 'agents', 'create', 'bench', '--connections', 'bench', '--config', holder.configPath], { encoding: 'utf8' }))?.[0];
if (!key) throw new Error('`modelgate agents create` printed no key');
const statusPort = await freePort();
const agent = spawnTracked('agent', process.execPath, ['bin/modelgate.js', 'agent', '--gateway', `http://127.0.0.1:${holder.agentsPort}`, '--serve', `bench=${upstream.url}`, '--listen', `127.0.0.1:${statusPort}`, '--log-level', 'warn'], {
  env: { MODELGATE_AGENT_KEY: key },
  stdout: 'null',
  logDir: dir,
});
await untilReady(agent, async () => (await fetch(`http://127.0.0.1:${statusPort}/readyz`)).status === 200);

const direct: Target = { ...directTarget(upstream.url, UPSTREAM_KEY), name: 'direct' };
const targets: Target[] = [direct, { ...holder.target, name: 'via holder' }, { ...forwarder.target, name: 'via forwarder' }];
// The forwarder answers once it sees the holder's claim in the route table.
await untilReady(forwarder.target.process!, async () => {
  const res = await fetch(forwarder.target.url + CHAT_PATH, { method: 'POST', headers: { 'content-type': 'application/json', ...forwarder.target.headers }, body: chatBody(false) });
  await res.arrayBuffer();
  return res.status === 200;
});

/** One non-streamed request; throws unless it is a 200. */
async function requestOnce(client: Client, target: Target): Promise<number> {
  const started = performance.now();
  const res = await client.request({ path: CHAT_PATH, method: 'POST', headers: { 'content-type': 'application/json', ...target.headers }, body: chatBody(false) });
  const body = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${target.name}: answered ${res.statusCode}: ${body.slice(0, 200)}`);
  return performance.now() - started;
}

// Warm-up: every path's connections and code, then the measured blocks.
const clients = new Map(targets.map((t) => [t.name, new Client(t.url, { keepAliveTimeout: 30_000 })]));
for (const t of targets) for (let i = 0; i < 50; i++) await requestOnce(clients.get(t.name)!, t), await streamOnce(clients.get(t.name)!, t);
const plain = new Map<string, number[]>(targets.map((t) => [t.name, []]));
const streamed = new Map<string, StreamSample[]>(targets.map((t) => [t.name, []]));
for (let done = 0, round = 0; done < REQUESTS; done += BLOCK, round++) {
  for (const t of rotate(targets, round)) {
    const client = clients.get(t.name)!;
    for (let i = 0; i < Math.min(BLOCK, REQUESTS - done); i++) {
      plain.get(t.name)!.push(await requestOnce(client, t));
      streamed.get(t.name)!.push(await streamOnce(client, t));
    }
  }
}
await Promise.all([...clients.values()].map((c) => c.close()));

const rps = new Map<string, number[]>(targets.map((t) => [t.name, []]));
const p99 = new Map<string, number[]>(targets.map((t) => [t.name, []]));
let failed = 0;
for (let r = 0; r < ROUNDS; r++) {
  for (const t of rotate(targets, r)) {
    const run = await runLoad(t, { connections: CONNECTIONS, durationS: DURATION_S, stream: false });
    rps.get(t.name)!.push(run.rps);
    p99.get(t.name)!.push(run.p99Ms);
    failed += run.failed;
  }
}

const ms = (v: number) => `${v.toFixed(2)} ms`;
const plus = (v: number) => `${v >= 0 ? '+' : '−'}${ms(Math.abs(v))}`;
const stats = (name: string) => {
  const p = plain.get(name)!;
  const first = streamed.get(name)!.map((s) => s.ttftMs);
  const total = streamed.get(name)!.map((s) => s.totalMs);
  return { p50: percentile(p, 50), p99: percentile(p, 99), ff50: percentile(first, 50), ff99: percentile(first, 99), st50: percentile(total, 50), rps: median(rps.get(name)!), cp99: median(p99.get(name)!) };
};
const [a, b, c] = targets.map((t) => stats(t.name)) as [ReturnType<typeof stats>, ReturnType<typeof stats>, ReturnType<typeof stats>];
console.log(`\nload average after: ${load()}`);
console.log('\n| path | non-streamed p50 / p99 | first frame p50 / p99 | stream end p50 | c=' + CONNECTIONS + ' req/s, p99 |');
console.log('|---|---|---|---|---|');
for (const [t, s] of targets.map((t, i) => [t, [a, b, c][i]!] as const)) {
  console.log(`| ${t.name} | ${ms(s.p50)} / ${ms(s.p99)} | ${ms(s.ff50)} / ${ms(s.ff99)} | ${ms(s.st50)} | ${s.rps.toFixed(0)}, ${ms(s.cp99)} |`);
}
console.log(`\nadded by the holder (b - a): non-streamed p50 ${plus(b.p50 - a.p50)}, p99 ${plus(b.p99 - a.p99)}; first frame p50 ${plus(b.ff50 - a.ff50)}, p99 ${plus(b.ff99 - a.ff99)}`);
console.log(`added by the hop (c - b):    non-streamed p50 ${plus(c.p50 - b.p50)}, p99 ${plus(c.p99 - b.p99)}; first frame p50 ${plus(c.ff50 - b.ff50)}, p99 ${plus(c.ff99 - b.ff99)}`);
console.log(`first-frame ratio p50: holder/direct ${(b.ff50 / a.ff50).toFixed(2)}x, forwarder/direct ${(c.ff50 / a.ff50).toFixed(2)}x, forwarder/holder ${(c.ff50 / b.ff50).toFixed(2)}x`);
console.log(`throughput ratio at c=${CONNECTIONS}: holder/direct ${(b.rps / a.rps).toFixed(2)}x, forwarder/holder ${(c.rps / b.rps).toFixed(2)}x; failed requests under load: ${failed}`);
await stopAllChildren();
await idp.close();
