// Starting what the bench measures. Every server is its own child process so
// the load generator never shares an event loop with what it measures, and
// every child is registered so it dies with the bench (normal end, error or
// Ctrl-C).
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync, readdirSync, readlinkSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { request } from 'undici';
import pg from 'pg';
import { STORE_THREAD_NAME } from '../src/audit/store-worker.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * The first file under src/ whose build in dist/ is missing or older, if any.
 * The benches run bin/modelgate.js, which loads dist/: a checkout whose src/
 * moved on since the last build would measure the old code, silently.
 */
export function staleBuild(root = ROOT): string | undefined {
  const walk = (dir: string): string | undefined => {
    for (const entry of readdirSync(join(root, 'src', dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        const stale = walk(path);
        if (stale) return stale;
      } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        const built = statSync(join(root, 'dist', path.replace(/\.ts$/, '.js')), { throwIfNoEntry: false });
        if (!built || built.mtimeMs < statSync(join(root, 'src', path)).mtimeMs) return join('src', path);
      }
    }
    return undefined;
  };
  return walk('');
}
const STARTUP_TIMEOUT_MS = 20_000;

/** One way of reaching the mock model: directly or through a proxy. */
export interface Target {
  name: string;
  /** Origin, e.g. http://127.0.0.1:1234 */
  url: string;
  /** What a client of this target sends besides content-type (credentials, routing). */
  headers: Record<string, string>;
  process?: ManagedProcess;
}

// ---------------------------------------------------------------- processes

export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  pid: number;
  /** stdout/stderr of the child (stdout may be /dev/null). */
  logPath: string;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

const running = new Set<ManagedProcess>();

/** Synchronous last resort for `exit`, signals and crashes: no child outlives the bench. */
export function killAllChildren(): void {
  for (const proc of running) {
    if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
  }
  running.clear();
}

export async function stopAllChildren(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
}

interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  /** Where stdout goes; stderr always goes to the log file so failures can be shown. */
  stdout: 'log' | 'null' | 'pipe';
  logDir: string;
}

export function spawnTracked(name: string, command: string, args: string[], options: SpawnOptions): ManagedProcess {
  const logPath = join(options.logDir, `${name}.log`);
  const logFd = openSync(logPath, 'a');
  const stdout = options.stdout === 'pipe' ? 'pipe' : options.stdout === 'log' ? logFd : 'ignore';
  // stdin is a pipe: a child we wrote ourselves (the upstream) exits when it closes.
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...options.env }, stdio: ['pipe', stdout, logFd] });
  closeSync(logFd);
  if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const proc: ManagedProcess = {
    name,
    child,
    pid: child.pid,
    logPath,
    async stop(graceMs = 3_000) {
      running.delete(proc);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  running.add(proc);
  return proc;
}

/** The URL a bench child prints on its first stdout line. */
export function firstLine(proc: ManagedProcess): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let buffered = '';
    proc.child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      if (buffered.includes('\n')) resolve(buffered.split('\n')[0]!.trim());
    });
    proc.child.once('exit', (code) => reject(new Error(`${proc.name} exited during start-up (${code})`)));
  });
}

function logTail(proc: ManagedProcess, lines = 20): string {
  try {
    return readFileSync(proc.logPath, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Fails fast with the child's own output when it exits during start-up. */
export async function untilReady(proc: ManagedProcess, ready: () => Promise<boolean>, timeoutMs = STARTUP_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      throw new Error(`${proc.name} exited during start-up (code ${proc.child.exitCode ?? proc.child.signalCode}):\n${logTail(proc)}`);
    }
    if (await ready().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${proc.name} was not ready within ${timeoutMs} ms:\n${logTail(proc)}`);
}

async function answers(url: string, okStatus?: number): Promise<boolean> {
  const res = await request(url, { headersTimeout: 1_000, bodyTimeout: 1_000 });
  await res.body.dump();
  return okStatus === undefined || res.statusCode === okStatus;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Clock ticks per second, the unit of /proc CPU times. */
export const CLK_TCK = clockTicks();

function clockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

/** A process and every descendant (a cluster's workers), from /proc. */
export function processTree(pid: number): number[] {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    try {
      for (const child of readFileSync(`/proc/${pids[i]}/task/${pids[i]}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) pids.push(Number(child));
    } catch {
      /* gone meanwhile */
    }
  }
  return pids;
}

/** utime + stime of a process and its descendants, in clock ticks. */
export const treeCpuTicks = (pid: number): number => processTree(pid).reduce((sum, p) => sum + (cpuTicksOf(p) || 0), 0);

/** utime + stime of a process (all its threads), in clock ticks; NaN once it is gone. */
export function cpuTicksOf(pid: number, tid?: number, only?: 'system'): number {
  try {
    // Fields 14 and 15 of /proc/<pid>/stat (or one thread's, /proc/<pid>/task/<tid>/stat), counted after the parenthesised command name.
    const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return only === 'system' ? Number(fields[12]) : Number(fields[11]) + Number(fields[12]);
  } catch {
    return NaN;
  }
}

/** CPU ticks of each thread of a process, by thread id, with its name (`comm`): to say which threads a cost lands on. */
export function threadTicksOf(pid: number): Map<number, { name: string; ticks: number; systemTicks: number; switches: number }> {
  const threads = new Map<number, { name: string; ticks: number; systemTicks: number; switches: number }>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return threads;
  }
  for (const tid of tids) {
    const ticks = cpuTicksOf(pid, Number(tid));
    const systemTicks = cpuTicksOf(pid, Number(tid), 'system');
    try {
      // Voluntary context switches: how often the thread went to sleep (each one a wake-up later).
      const switches = Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))?.[1] ?? NaN);
      if (Number.isFinite(ticks)) threads.set(Number(tid), { name: readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim(), ticks, systemTicks, switches });
    } catch {
      /* ended meanwhile */
    }
  }
  return threads;
}

/** A gateway process's CPU ticks by thread: its main thread (the event loop), its audit store thread (by name), and the rest (V8's helpers, libuv). */
export function gatewayThreadTicks(pid: number): { main: number; store: number; other: number } {
  const ticks = { main: 0, store: 0, other: 0 };
  for (const [tid, thread] of threadTicksOf(pid)) {
    if (tid === pid) ticks.main += thread.ticks;
    else if (thread.name === STORE_THREAD_NAME) ticks.store += thread.ticks;
    else ticks.other += thread.ticks;
  }
  return ticks;
}

/** The query `postgresBackendsOf` runs, over a short-lived connection to `url`. */
export function backendQuery(url: string): (sql: string) => Promise<Array<{ pid: number; client_port: number }>> {
  return async (sql) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query<{ pid: number; client_port: number }>(sql)).rows;
    } finally {
      await client.end();
    }
  };
}

/**
 * PIDs of the PostgreSQL backends serving a process's connections: its TCP
 * sockets' local ports, matched with pg_stat_activity's client_port. Their
 * CPU is what storing costs the database server.
 */
export async function postgresBackendsOf(pid: number, query: (sql: string) => Promise<Array<{ pid: number; client_port: number }>>): Promise<number[]> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      /* closed meanwhile */
    }
  }
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && inodes.has(cols[9]!)) ports.add(parseInt(cols[1]!.split(':')[1]!, 16));
    }
  }
  const rows = await query('SELECT pid, client_port FROM pg_stat_activity WHERE client_port IS NOT NULL');
  return rows.filter((r) => ports.has(Number(r.client_port))).map((r) => Number(r.pid));
}

/** CPU ticks of the bench itself and every child it still runs. */
export function benchCpuTicks(): number {
  let ticks = cpuTicksOf(process.pid);
  for (const proc of running) ticks += cpuTicksOf(proc.pid) || 0;
  return ticks;
}

/** Machine-wide busy and total CPU ticks, all cores (first line of /proc/stat). */
export function machineCpuTicks(): { busy: number; total: number } {
  const [user, nice, system, idle, iowait, irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number) as number[];
  const busy = user! + nice! + system! + irq! + softirq! + steal!;
  return { busy, total: busy + idle! + iowait! };
}

/** VmRSS and VmHWM (peak) of a process, in MB. */
export function memoryOf(pid: number): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

// ------------------------------------------------------------------ targets

export async function startUpstream(apiKey: string, logDir: string, chunkDelayMs = 0): Promise<{ url: string; process: ManagedProcess }> {
  const proc = spawnTracked(chunkDelayMs > 0 ? 'upstream-paced' : 'upstream', process.execPath, ['--import', 'tsx', 'bench/upstream.ts'], {
    env: { BENCH_UPSTREAM_KEY: apiKey, BENCH_CHUNK_DELAY_MS: String(chunkDelayMs) },
    stdout: 'pipe',
    logDir,
  });
  const url = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error(`upstream did not start:\n${logTail(proc)}`)), STARTUP_TIMEOUT_MS);
    proc.child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const newline = buffered.indexOf('\n');
      if (newline === -1) return;
      clearTimeout(timer);
      resolve(buffered.slice(0, newline).trim());
    });
    proc.child.once('exit', () => reject(new Error(`upstream exited during start-up:\n${logTail(proc)}`)));
  });
  return { url, process: proc };
}

export function directTarget(upstreamUrl: string, apiKey: string): Target {
  return { name: 'direct', url: upstreamUrl, headers: { authorization: `Bearer ${apiKey}` } };
}

export interface ModelgateOptions {
  issuer: string;
  audience: string;
  upstreamUrl: string;
  apiKey: string;
  model: string;
  /** The group the bench's service client is in; the only one the access rule allows. */
  group: string;
  accessToken: string;
  logDir: string;
  /** Extra node flags, e.g. --cpu-prof (from BENCH_GATEWAY_NODE_FLAGS). */
  nodeFlags: string[];
  /** A guardrails section: the same gateway with input inspection and output masking on. */
  guardrails?: Record<string, unknown>;
  /** Session recording: off, or on with this storage section (default off, so the data path alone is measured). */
  storage?: Record<string, unknown>;
  /** A limits section: the same gateway admitting every request against limits (memory or Redis). */
  limits?: Record<string, unknown>;
  /** Target name in the report; default `modelgate`. */
  name?: string;
  /** `modelgate gateway --workers N` (identity state moves to SQLite so the workers share it). */
  workers?: number;
  /** A command to run node under, e.g. `valgrind --tool=callgrind …` (bench/limits-path.ts); start-up may then take this long (ms). */
  wrap?: { command: string[]; startupMs: number };
}

/**
 * Limits every request is checked against and charged to, set high enough
 * that none is refused: what admission and settlement cost, not refusals.
 */
export function benchLimits(store: 'memory' | 'redis'): Record<string, unknown> {
  return {
    store,
    ...(store === 'redis' && { redis: { url: 'redis://127.0.0.1:6379', key_prefix: `bench:${process.pid}:` } }),
    rules: [
      { name: 'per-caller', per: ['subject'], requests_per_minute: 100_000_000, tokens_per_minute: 1_000_000_000, tokens_per_day: 1_000_000_000, concurrent_requests: 10_000 },
      { name: 'per-model', per: ['model'], tokens_per_month: 1_000_000_000_000 },
    ],
  };
}

/** A typical policy: secrets blocked and PII masked in prompts; PII masked and private keys stopped in responses. */
export const BENCH_GUARDRAILS = {
  input: [
    { name: 'no-secrets', detect: ['secrets'], action: 'block' },
    { name: 'mask-pii', detect: ['pii'], action: 'mask' },
    { name: 'injection', detect: ['injection'], action: 'block' },
  ],
  output: [
    { name: 'mask-pii-out', mask: { types: ['pii'] } },
    { name: 'no-private-keys', end_stream_on: ['PRIVATE_KEY'] },
  ],
};

/**
 * The gateway's idle reclaim (`server.idle_reclaim`, 10 s by default) is off in the benches unless
 * BENCH_IDLE_RECLAIM sets it. Their rounds rotate over every target, so each one sits idle ~14 s between
 * its turns: with the reclaim on, every measured round was the first moments after a reclaim, not the
 * steady load of a gateway in service (2026-12-03: recording 0.36x / 0.30x of off with it, 0.71x / 0.53x
 * without, in two runs minutes apart). The soak sets its own (SOAK_IDLE_RECLAIM), since memory after a
 * burst is what it measures.
 */
export const BENCH_IDLE_RECLAIM = process.env.BENCH_IDLE_RECLAIM ?? '0s';

export async function startModelgate(o: ModelgateOptions): Promise<Target> {
  const port = await freePort();
  const config = {
    server: { host: '127.0.0.1', port, shutdown_grace: '2s', idle_reclaim: BENCH_IDLE_RECLAIM },
    // Access logs stay at info (one JSON line per request) with stdout sent to
    // /dev/null: the logging cost is part of what is measured.
    logging: { level: 'info' },
    identity: {
      issuers: [{ issuer: o.issuer, audience: o.audience }],
      max_token_lifetime: '1h',
      ...(o.workers && o.workers > 1 && { state: { store: 'sqlite', path: join(o.logDir, `${o.name ?? 'modelgate'}-identity.db`) } }),
    },
    connections: [{ name: 'bench', kind: 'openai', url: o.upstreamUrl, api_key: o.apiKey, models: [{ name: o.model }] }],
    access: [{ description: 'the bench client may chat', groups: [o.group], connections: ['bench'], models: [o.model] }],
    ...(o.guardrails && { guardrails: o.guardrails }),
    ...(o.limits && { limits: o.limits }),
    ...(o.storage ? { storage: o.storage, recording: { enabled: true } } : { recording: { enabled: false } }),
  };
  const name = o.name ?? 'modelgate';
  const configPath = join(o.logDir, `${name}.yaml`);
  writeFileSync(configPath, stringify(config));
  const node = [process.execPath, ...o.nodeFlags, 'bin/modelgate.js', 'gateway', '--config', configPath, ...(o.workers ? ['--workers', String(o.workers)] : [])];
  const [command, ...args] = [...(o.wrap?.command ?? []), ...node];
  const proc = spawnTracked(name, command!, args, { stdout: 'null', logDir: o.logDir });
  const url = `http://127.0.0.1:${port}`;
  // /readyz turns 200 only once the IdP's JWKS is loaded.
  await untilReady(proc, () => answers(`${url}/readyz`, 200), o.wrap?.startupMs);
  return { name, url, headers: { authorization: `Bearer ${o.accessToken}` }, process: proc };
}

export async function startPortkey(upstreamUrl: string, apiKey: string, logDir: string): Promise<Target> {
  const port = await freePort();
  const proc = spawnTracked(
    'portkey',
    process.execPath,
    // See portkey-fetch-fix.mjs: without it every streamed request fails on this dependency set.
    ['--import', './bench/portkey-fetch-fix.mjs', 'node_modules/@portkey-ai/gateway/build/start-server.js', `--port=${port}`, '--headless'],
    { env: { NODE_ENV: 'production' }, stdout: 'null', logDir },
  );
  const url = `http://127.0.0.1:${port}`;
  await untilReady(proc, () => answers(url));
  return {
    name: 'portkey',
    url,
    headers: { 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `${upstreamUrl}/v1`, authorization: `Bearer ${apiKey}` },
    process: proc,
  };
}

export function nginxAvailable(): boolean {
  return spawnSync('sh', ['-c', 'command -v nginx'], { stdio: 'ignore' }).status === 0;
}

/** A minimal reverse proxy with a keep-alive upstream pool: the floor for any L7 hop. */
export async function startNginx(upstreamUrl: string, apiKey: string, logDir: string): Promise<Target> {
  const port = await freePort();
  const prefix = join(logDir, 'nginx');
  mkdirSync(join(prefix, 'logs'), { recursive: true });
  mkdirSync(join(prefix, 'tmp'), { recursive: true });
  const upstream = new URL(upstreamUrl);
  // master_process off: one process, one event loop, like the Node gateways; nothing left to orphan.
  const conf = `daemon off;
master_process off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  upstream model {
    server ${upstream.host};
    keepalive 128;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://model;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
`;
  const confPath = join(prefix, 'nginx.conf');
  writeFileSync(confPath, conf);
  const proc = spawnTracked('nginx', 'nginx', ['-p', prefix, '-c', confPath], { stdout: 'log', logDir });
  const url = `http://127.0.0.1:${port}`;
  await untilReady(proc, () => answers(`${url}/health`, 200));
  return { name: 'nginx', url, headers: { authorization: `Bearer ${apiKey}` }, process: proc };
}
