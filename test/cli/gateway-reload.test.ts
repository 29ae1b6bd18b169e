// `modelgate gateway` as an operator runs it: `--watch` reloads the file when
// it changes, SIGHUP reloads it on demand, and an invalid file is refused
// in the log with its file:line message while the old rules stay in force.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { ConfigInput } from '../../src/config/schema.js';
import { startDemoModel, type DemoModel } from '../../src/dev/demo-model.js';
import { DEV_AUDIENCE, devConfigInput } from '../../src/dev/dev-config.js';
import { startDevIdp, type DevIdp } from '../../src/dev/idp.js';
import { postJson } from '../helpers/harness.js';

const BIN = fileURLToPath(new URL('../../bin/modelgate.js', import.meta.url));

describe('modelgate gateway --watch and SIGHUP', () => {
  let idp: DevIdp;
  let model: DemoModel;
  let dir: string;
  let file: string;
  let input: ConfigInput;
  let child: ChildProcess;
  let output = '';
  let url: string;

  before(async () => {
    [idp, model] = await Promise.all([startDevIdp({ audience: DEV_AUDIENCE }), startDemoModel({ apiKey: 'demo-upstream-key' })]);
    dir = await mkdtemp(join(tmpdir(), 'modelgate-watch-'));
    file = join(dir, 'modelgate.yaml');
    input = devConfigInput({ host: '127.0.0.1', port: 0, issuer: idp.issuer, modelUrl: model.url, dataDir: dir });
    await writeFile(file, stringify(input));
    child = spawn(process.execPath, [BIN, 'gateway', '--config', file, '--watch'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    url = (await logged(/"msg":"gateway listening"/)).match(/"url":"(http:\/\/[^"]+)"/)![1]!;
  });
  after(async () => {
    child?.kill('SIGTERM');
    if (child && child.exitCode === null) await new Promise((r) => child.once('exit', r));
    await Promise.all([idp?.close(), model?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  /** Waits for the next log line (after those seen so far) matching `pattern`. */
  let seen = 0;
  async function logged(pattern: RegExp): Promise<string> {
    for (let i = 0; i < 400; i++) {
      const lines = output.split('\n');
      for (let n = seen; n < lines.length - 1; n++) {
        if (pattern.test(lines[n]!)) {
          seen = n + 1;
          return lines[n]!;
        }
      }
      if (child.exitCode !== null) throw new Error(`gateway exited: ${output}`);
      await sleep(25);
    }
    throw new Error(`no log line matched ${pattern}: ${output}`);
  }

  const bobEmbeds = async (): Promise<number> =>
    (await postJson(`${url}/v1/embeddings`, (await idp.loginAs('bob')).accessToken, { model: 'demo-embed', input: 'x' })).status;

  test('--watch: a changed file is reloaded', async () => {
    assert.equal(await bobEmbeds(), 200);
    const withoutContractors = { ...input, access: input.access!.filter((r) => !r.groups?.includes('contractors')) };
    await writeFile(file, stringify(withoutContractors));
    const line = await logged(/"msg":"configuration reloaded"/);
    assert.match(line, /"trigger":"watch"/);
    assert.match(line, /"applied":\["access"\]/);
    assert.equal(await bobEmbeds(), 403);
  });

  test('an invalid file is refused with its file:line message; the running rules stay', async () => {
    await writeFile(file, stringify(input).replace(/^access:/m, 'acess:'));
    const line = await logged(/configuration reload rejected/);
    assert.ok(line.includes(`${file}:`), line);
    assert.match(line, /modelgate\.yaml:\d+:\d+: /);
    assert.equal(await bobEmbeds(), 403, 'still the rules of the last valid file');
  });

  test('SIGHUP reloads on demand', async () => {
    // Written while the watcher is told to ignore nothing: wait for its reload first, then ask again by signal.
    await writeFile(file, stringify(input));
    await logged(/"msg":"configuration reloaded".*"trigger":"watch"|"trigger":"watch".*"msg":"configuration reloaded"/);
    child.kill('SIGHUP');
    const line = await logged(/"msg":"configuration reloaded"/);
    assert.match(line, /"trigger":"SIGHUP"/);
    assert.equal(await bobEmbeds(), 200);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /modelgate_config_reloads_total\{result="applied"\} [2-9]/);
    assert.match(metrics, /modelgate_config_reloads_total\{result="rejected"\} 1/);
  });
});
