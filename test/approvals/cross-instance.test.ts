// Several gateway processes, one database: a request held on instance A is
// released when an approver decides through instance B. On PostgreSQL the
// release is pushed (LISTEN/NOTIFY), so it arrives long before the next
// poll; on SQLite (and whenever the push channel is down) polling carries
// it. Real `modelgate gateway` processes, the real dev IdP, the demo model.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { stringify } from 'yaml';
import { startDemoModel, type DemoModel } from '../../src/dev/demo-model.js';
import { DEV_AUDIENCE, devConfigInput } from '../../src/dev/dev-config.js';
import { startDevIdp, type DevIdp } from '../../src/dev/idp.js';
import { PG_URL } from '../audit/fixtures.js';
import { postJson } from '../helpers/harness.js';

const BIN = fileURLToPath(new URL('../../bin/modelgate.js', import.meta.url));

interface Instance {
  url: string;
  child: ChildProcess;
}

async function startInstance(configPath: string): Promise<Instance> {
  const child = spawn(process.execPath, [BIN, 'gateway', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise<Instance>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const url = /"url":"(http:\/\/[^"]+)".*"gateway listening"|"msg":"gateway listening".*"url":"(http:\/\/[^"]+)"/.exec(output);
      if (url) resolve({ url: (url[1] ?? url[2])!, child });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code}: ${output}`)));
  });
}

async function stopInstance(instance: Instance | undefined): Promise<void> {
  if (!instance || instance.child.exitCode !== null) return;
  const exited = new Promise((resolve) => instance.child.once('exit', resolve));
  instance.child.kill('SIGTERM');
  await exited;
}

for (const driver of ['postgres', 'sqlite'] as const) {
  describe(`two gateway processes on one ${driver} database`, () => {
    let idp: DevIdp;
    let model: DemoModel;
    let dir: string;
    let a: Instance;
    let b: Instance;
    const schema = `mgtest_xi_${process.pid}_${driver}`;
    // With PostgreSQL, polling is slowed right down so only a pushed notification can release the request quickly.
    const pollInterval = driver === 'postgres' ? '20s' : '200ms';

    before(async () => {
      model = await startDemoModel({ apiKey: 'demo-upstream-key' });
      idp = await startDevIdp({ audience: DEV_AUDIENCE });
      dir = await mkdtemp(join(tmpdir(), 'modelgate-xi-'));
      const input = devConfigInput({ host: '127.0.0.1', port: 0, issuer: idp.issuer, modelUrl: model.url, dataDir: dir, logLevel: 'info' }) as Record<string, unknown>;
      input.storage =
        driver === 'postgres' ? { driver: 'postgres', postgres: { url: PG_URL, schema, pool_size: 4 } } : { driver: 'sqlite', sqlite: { path: join(dir, 'shared.db') } };
      input.recording = { enabled: false };
      input.approvals = { wait: '30s', poll_interval: pollInterval };
      // The dev configuration's guardrails hold prompts naming "nightingale" for an approver.
      const configPath = join(dir, 'modelgate.yaml');
      await writeFile(configPath, stringify(input));
      // Started one after the other: both create the tables if missing, and must not trip over each other.
      [a, b] = await Promise.all([startInstance(configPath), startInstance(configPath)]);
    });

    after(async () => {
      await Promise.all([stopInstance(a), stopInstance(b)]);
      await Promise.all([idp?.close(), model?.close()]);
      if (driver === 'postgres') {
        const client = new pg.Client({ connectionString: PG_URL });
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await client.end();
      }
      await rm(dir, { recursive: true, force: true });
    });

    test('held on A, approved through B, released on A', async () => {
      const alice = (await idp.loginAs('alice')).accessToken;
      const carol = (await idp.loginAs('carol')).accessToken;
      const held = postJson(`${a.url}/v1/chat/completions`, alice, { model: 'demo-chat', messages: [{ role: 'user', content: `nightingale ${driver}` }] });

      let reviewId: string | undefined;
      for (let i = 0; i < 400 && !reviewId; i++) {
        await sleep(25);
        const list = (await (await fetch(`${b.url}/v1/reviews?state=pending`, { headers: { authorization: `Bearer ${carol}` } })).json()) as { data: Array<{ id: string }> };
        reviewId = list.data[0]?.id;
      }
      assert.ok(reviewId, 'instance B sees the review instance A opened');

      const decidedAt = performance.now();
      assert.equal((await postJson(`${b.url}/v1/reviews/${reviewId}/approve`, carol, { comment: 'from B' })).status, 200);
      const response = await held;
      const releaseMs = performance.now() - decidedAt;
      assert.equal(response.status, 200, `released with the model's answer: ${await response.clone().text()}`);
      assert.ok(((await response.json()) as { choices: unknown[] }).choices.length > 0, 'a completion');
      // Not a timing threshold: with polling at 20 s, only the pushed notification can release it before the next poll.
      if (driver === 'postgres') assert.ok(releaseMs < 15_000, `released by notification, not by the 20 s poll (took ${Math.round(releaseMs)} ms)`);
      console.log(`# ${driver}: held request released ${Math.round(releaseMs)} ms after the approval on the other instance`);
    });
  });
}
