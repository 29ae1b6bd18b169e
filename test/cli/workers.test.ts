// `modelgate gateway --workers 2`: two processes share the port, each a full
// pipeline on one SQLite database; SIGHUP reloads every worker; SIGTERM drains
// a stream in flight on any worker before the primary exits 0.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startDemoModel, type DemoModel } from '../../src/dev/demo-model.js';
import { devConfigInput, DEV_AUDIENCE } from '../../src/dev/dev-config.js';
import { startDevIdp, type DevIdp } from '../../src/dev/idp.js';
import { postJson } from '../helpers/harness.js';

const BIN = fileURLToPath(new URL('../../bin/modelgate.js', import.meta.url));

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
      const deadline = Date.now() + 30_000;
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
});
