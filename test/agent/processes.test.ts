// The agent as operators run it: `modelgate agents create|list|revoke` and
// `modelgate gateway` and `modelgate agent` as real processes from the
// compiled bin. The agent dials out, serves a request, reports health and
// metrics; killed with SIGKILL mid-stream, the client gets an error frame;
// revoked, it is cut and cannot reconnect.
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { startDemoModel, type DemoModel } from '../../src/dev/demo-model.js';
import { devConfigInput, DEV_AUDIENCE } from '../../src/dev/dev-config.js';
import { startDevIdp, type DevIdp } from '../../src/dev/idp.js';
import { SseDecoder } from '../../src/protocol/sse.js';
import { errorOf, postJson } from '../helpers/harness.js';
import { BIN, startModelgate as start, type Running } from '../helpers/processes.js';
import { eventually } from './helpers.js';

const run = promisify(execFile);

describe('modelgate agent and agents, as processes', () => {
  let dir: string;
  let model: DemoModel;
  let idp: DevIdp;
  let configPath: string;
  let gateway: Running;
  let gatewayUrl: string;
  let agentsUrl: string;
  let token: string;
  const children: ChildProcess[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'modelgate-agent-proc-'));
    model = await startDemoModel({ apiKey: 'demo-upstream-key', chunkDelayMs: 20 });
    idp = await startDevIdp({ audience: DEV_AUDIENCE });
    const input = devConfigInput({ host: '127.0.0.1', port: 0, issuer: idp.issuer, modelUrl: model.url, dataDir: dir });
    const demo = input.connections![0]! as Record<string, unknown>;
    delete demo.url;
    demo.targets = [{ via: 'agent' }];
    input.agents = { listen: { host: '127.0.0.1', port: 0 }, key_check_interval: '250ms' };
    configPath = join(dir, 'modelgate.yaml');
    await writeFile(configPath, JSON.stringify(input));
    gateway = start(['gateway', '--config', configPath]);
    children.push(gateway.child);
    agentsUrl = String((await gateway.logLine('accepting agent tunnels')).url);
    gatewayUrl = String((await gateway.logLine('gateway listening')).url);
    token = (await idp.loginAs('alice')).accessToken;
  });
  after(async () => {
    for (const child of children) child.kill('SIGKILL');
    await Promise.all([model.close(), idp.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  const cli = async (...args: string[]) => {
    try {
      const { stdout } = await run(process.execPath, [BIN, ...args, '--config', configPath]);
      return { code: 0, stdout };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout + e.stderr };
    }
  };
  const startAgent = async (key: string) => {
    const agent = start(['agent', '--gateway', agentsUrl, '--serve', `demo=${model.url}`, '--listen', '127.0.0.1:0', '--log-level', 'info'], { MODELGATE_AGENT_KEY: key });
    children.push(agent.child);
    const status = String((await agent.logLine('agent starting')).status);
    await agent.logLine('tunnel connected');
    return { ...agent, status };
  };
  const chat = (stream = false) => postJson(`${gatewayUrl}/v1/chat/completions`, token, { model: 'demo-chat', stream, messages: [{ role: 'user', content: 'hello' }] });

  test('create shows the key once; the agent serves requests and reports health and metrics; SIGKILL mid-stream ends the stream with an error frame', { timeout: 120_000 }, async () => {
    const created = await cli('agents', 'create', 'edge-1', '--connections', 'demo');
    assert.equal(created.code, 0, created.stdout);
    const key = /mga_[0-9a-f]{16}_[A-Za-z0-9_-]{43}/.exec(created.stdout)?.[0];
    assert.ok(key, 'the key is printed');
    const listed = await cli('agents', 'list');
    assert.match(listed.stdout, /edge-1\s+mga_[0-9a-f]{16}_…\s+demo\s+\S+\s+live/);
    assert.ok(!listed.stdout.includes(key), 'list never shows the key');
    assert.equal((await cli('agents', 'create', 'edge-x', '--connections', 'nope')).code, 2, 'unknown connection is a usage error');

    const agent = await startAgent(key);
    const answer = await chat();
    assert.equal(answer.status, 200, await answer.clone().text());
    assert.ok(((await answer.json()) as { choices: unknown[] }).choices.length > 0);
    assert.equal((await fetch(`${agent.status}/readyz`)).status, 200);
    assert.match(await (await fetch(`${agent.status}/metrics`)).text(), /modelgate_agent_streams_total\{connection="demo",outcome="ok"\} 1/);

    model.setFault({ kind: 'stall_mid_stream', afterChunks: 2 }, { times: 1, path: '/v1/chat/completions' });
    const streaming = await chat(true);
    assert.equal(streaming.status, 200);
    const decoder = new SseDecoder();
    const reader = streaming.body!.getReader();
    const frames = [];
    const first = await reader.read();
    frames.push(...decoder.push(first.value!));
    agent.child.kill('SIGKILL');
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) break;
      frames.push(...decoder.push(value!));
    }
    frames.push(...decoder.end());
    const last = frames.filter((f) => f.hasData).at(-1)!;
    assert.equal((JSON.parse(last.data) as { error?: { code: string } }).error?.code, 'upstream_stream_interrupted');
    await eventually(async () => (await chat()).status === 503, 'the gateway notices the agent is gone');
  });

  test('revoke cuts a running agent at once; its reconnects are refused and requests get a clean 503', { timeout: 120_000 }, async () => {
    const key = /mga_\S+/.exec((await cli('agents', 'create', 'edge-2', '--connections', 'demo')).stdout)![0];
    const agent = await startAgent(key);
    assert.equal((await chat()).status, 200);
    const revoked = await cli('agents', 'revoke', 'edge-2');
    assert.equal(revoked.code, 0, revoked.stdout);
    await eventually(async () => (await fetch(`${agent.status}/readyz`)).status === 503, 'the agent loses its tunnel');
    const refused = await chat();
    assert.equal(refused.status, 503);
    assert.equal((await errorOf(refused)).code, 'agent_unavailable');
    assert.match((await cli('agents', 'list')).stdout, /edge-2\s.*revoked/);
    agent.child.kill('SIGTERM');
  });
});
