// `modelgate gateway --workers 2`: two processes share the port, each a full
// pipeline on one SQLite database; SIGHUP reloads every worker; SIGTERM drains
// a stream in flight on any worker before the primary exits 0. Without
// --workers: one per core, or 1 (with a warning) while state is process-local.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startDemoModel, type DemoModel } from '../../src/dev/demo-model.js';
import { devConfigInput, DEV_AUDIENCE } from '../../src/dev/dev-config.js';
import { startDevIdp, type DevIdp } from '../../src/dev/idp.js';
import { Agent as UndiciAgent, fetch as undiciFetch } from 'undici';
import { postJson } from '../helpers/harness.js';
import { startModelgate } from '../helpers/processes.js';
import { chooseWorkers } from '../../src/cli/workers.js';
import { configSchema } from '../../src/config/schema.js';

const BIN = fileURLToPath(new URL('../../bin/modelgate.js', import.meta.url));

describe('the --workers default', () => {
  const config = (change: (input: Record<string, any>) => void = () => {}) => {
    const input = devConfigInput({ host: '127.0.0.1', port: 0, issuer: 'https://idp.example', modelUrl: 'http://127.0.0.1:9', dataDir: '/tmp/x' }) as Record<string, any>;
    input.identity.state = { store: 'sqlite', path: '/tmp/x/identity.db' };
    change(input);
    return configSchema.parse(input);
  };
  const rules = [{ name: 'per-person', requests_per_minute: 60 }];

  test('absent: one worker per core when all state is shared', () => {
    assert.deepEqual(chooseWorkers(undefined, config(), 4), { workers: 4 });
    assert.deepEqual(chooseWorkers(undefined, config((c) => (c.limits = { store: 'redis', redis: { url: 'redis://127.0.0.1:6379' }, rules })), 4), { workers: 4 });
    assert.deepEqual(chooseWorkers(undefined, config((c) => (c.identity.state = { store: 'memory' })), 1), { workers: 1 }, 'one core: nothing to warn about');
  });

  test('absent: 1 worker, and a warning naming the key, while state is process-local', () => {
    const cases: Array<[string, (c: Record<string, any>) => void]> = [
      ['identity.state', (c) => (c.identity.state = { store: 'memory' })],
      ['limits.store', (c) => (c.limits = { rules })],
      ['served through agents and storage is PostgreSQL without agents.routing', (c) => {
        viaAgent(c);
        c.storage = { driver: 'postgres', postgres: { url: 'postgres://127.0.0.1/x' } };
      }],
    ];
    for (const [key, change] of cases) {
      const choice = chooseWorkers(undefined, config(change), 4);
      assert.ok('workers' in choice && choice.workers === 1, key);
      assert.match((choice as { warning: string }).warning, new RegExp(`running 1 worker, not 4.*${key}`), key);
    }
  });

  const viaAgent = (c: Record<string, any>) => {
    delete c.connections[0].url;
    c.connections[0].targets = [{ via: 'agent' }];
    c.agents = { listen: { host: '127.0.0.1', port: 0 } };
  };

  test('agents: every core where the workers can reach each other (SQLite on a file, or agents.routing)', () => {
    assert.deepEqual(chooseWorkers(undefined, config(viaAgent), 4), { workers: 4 }, 'SQLite storage: the workers route by themselves');
    const routed = config((c) => {
      viaAgent(c);
      c.storage = { driver: 'postgres', postgres: { url: 'postgres://127.0.0.1/x' } };
      c.agents.routing = { secret: 'x'.repeat(32) };
    });
    assert.deepEqual(chooseWorkers(undefined, routed, 4), { workers: 4 }, 'PostgreSQL with agents.routing');
    const inMemory = chooseWorkers('2', config((c) => (viaAgent(c), (c.storage = { sqlite: { path: ':memory:' } }))), 4);
    assert.match((inMemory as { warning: string }).warning, /SQLite in memory without agents\.routing/, 'an explicit --workers runs, with the warning');
  });

  test('given: auto is one per core; a number is refused while identity or limits state is in memory', () => {
    assert.deepEqual(chooseWorkers('auto', config(), 3), { workers: 3 });
    assert.deepEqual(chooseWorkers('2', config(), 8), { workers: 2 });
    assert.deepEqual(chooseWorkers('1', config((c) => (c.identity.state = { store: 'memory' })), 8), { workers: 1 });
    const identity = chooseWorkers('2', config((c) => (c.identity.state = { store: 'memory' })), 8);
    assert.equal((identity as { kind: string }).kind, 'config');
    assert.match((identity as { error: string }).error, /identity\.state is in memory/);
    const limits = chooseWorkers('auto', config((c) => (c.limits = { rules })), 2);
    assert.match((limits as { error: string }).error, /limits\.store is memory/);
    assert.equal((chooseWorkers('0', config(), 2) as { kind: string }).kind, 'usage');
    assert.equal((chooseWorkers('two', config(), 2) as { kind: string }).kind, 'usage');
  });
});

describe('gateway --workers', () => {
  let dir: string;
  let model: DemoModel;
  let idp: DevIdp;
  let configPath: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'modelgate-workers-'));
    model = await startDemoModel({ apiKey: 'demo-upstream-key', chunkDelayMs: 50 });
    idp = await startDevIdp({ audience: DEV_AUDIENCE });
    const input = devConfigInput({ host: '127.0.0.1', port: 0, issuer: idp.issuer, modelUrl: model.url, dataDir: dir });
    input.identity!.state = { store: 'sqlite', path: join(dir, 'identity.db') };
    configPath = join(dir, 'modelgate.yaml');
    await writeFile(configPath, JSON.stringify(input));
  });
  after(async () => {
    await Promise.all([model.close(), idp.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  test('without --workers, one worker per core serves the port; SIGTERM stops them all', async () => {
    const child = spawn(process.execPath, [BIN, 'gateway', '--config', configPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines: Array<Record<string, unknown>> = [];
    createInterface({ input: child.stdout! }).on('line', (l) => {
      try {
        lines.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        /* not a log line */
      }
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      // Generous: several engineers share this machine's two cores; the wait ends at the event.
      const deadline = Date.now() + 90_000;
      while (lines.filter((l) => l.msg === 'gateway listening').length < availableParallelism()) {
        assert.ok(Date.now() < deadline, `timed out waiting for ${availableParallelism()} workers`);
        await new Promise((r) => setTimeout(r, 50));
      }
      if (availableParallelism() > 1) assert.equal(lines.find((l) => l.msg === 'gateway primary started its workers')?.workers, availableParallelism());
      const url = String(lines.find((l) => l.msg === 'gateway listening')!.url);
      const token = (await idp.loginAs('alice')).accessToken;
      assert.equal((await postJson(`${url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] })).status, 200);
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  test('two workers serve one port and one database; SIGHUP reloads both; SIGTERM drains a stream, then exits 0', async () => {
    const child = spawn(process.execPath, [BIN, 'gateway', '--config', configPath, '--workers', '2'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines: Array<Record<string, unknown>> = [];
    createInterface({ input: child.stdout! }).on('line', (l) => {
      try {
        lines.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        /* not a log line */
      }
    });
    const count = (msg: string) => lines.filter((l) => l.msg === msg).length;
    const until = async (check: () => boolean, what: string) => {
      const deadline = Date.now() + 90_000;
      while (!check()) {
        assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      await until(() => count('gateway listening') === 2, 'two workers listening');
      const urls = new Set(lines.filter((l) => l.msg === 'gateway listening').map((l) => l.url));
      assert.equal(urls.size, 1, 'both workers share one address');
      const url = [...urls][0] as string;
      const token = (await idp.loginAs('alice')).accessToken;
      const statuses = await Promise.all(Array.from({ length: 10 }, () => postJson(`${url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] }).then((r) => r.status)));
      assert.deepEqual(new Set(statuses), new Set([200]));

      child.kill('SIGHUP');
      await until(() => count('configuration reloaded') === 2, 'both workers reloaded');

      const stream = await postJson(`${url}/v1/chat/completions`, token, { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'a long answer please' }] });
      assert.equal(stream.status, 200);
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      const body = await stream.text();
      assert.match(body, /data: \[DONE\]/, 'the stream in flight finished during the drain');
      assert.equal(await exited, 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  test('a worker killed from outside (SIGKILL, the OOM killer) strands no connection: every one is answered by a live worker', async () => {
    const gateway = startModelgate(['gateway', '--config', configPath, '--workers', '2']);
    try {
      const workers = await gateway.logLines('gateway listening', 2);
      const url = String(workers[0]!.url);
      const victim = Number(execFileSync('pgrep', ['-P', String(gateway.child.pid)], { encoding: 'utf8' }).split('\n')[0]);
      // Stopped, it cannot take a connection it is handed: node:cluster's round robin then hands it the next one and
      // waits for its answer, holding the socket. Killed then, that socket was stranded in the primary (never answered,
      // never reset: the client hung until its own timeout). The kernel hands a connection only to a process that accepts.
      process.kill(victim, 'SIGSTOP');
      const answers = Array.from({ length: 4 }, () =>
        undiciFetch(`${url}/healthz`, { dispatcher: new UndiciAgent({ pipelining: 0 }), signal: AbortSignal.timeout(45_000) }).then(
          (r) => String(r.status),
          (err: Error) => err.name,
        ),
      );
      await new Promise((r) => setTimeout(r, 1_000));
      process.kill(victim, 'SIGKILL');
      await gateway.logLine('worker exited; starting another', (l) => l.pid === victim);
      assert.deepEqual(await Promise.all(answers), ['200', '200', '200', '200']);
    } finally {
      gateway.child.kill('SIGKILL');
      await gateway.exited;
    }
  });
});
