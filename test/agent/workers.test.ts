// Every core with agents: `modelgate gateway --workers 2` as a real process,
// one `modelgate agent` process and the demo model. The agent's one tunnel
// lands on one worker; requests landing on the other are forwarded to it
// over the workers' loopback routing (SQLite storage, no agents.routing
// configured). Killing the worker that holds the tunnel: the agent
// reconnects to a worker and requests recover. After every step, each
// request the model received has a session record.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { Agent as UndiciAgent, fetch as undiciFetch } from 'undici';
import { openAgentKeyStore } from '../../src/agent/key-store.js';
import { AgentKeys } from '../../src/agent/registry.js';
import { ROUTE_PATH, signRoute, type RouteClaims } from '../../src/agent/router.js';
import { storageSchema } from '../../src/audit/config.js';
import { startDemoModel, type DemoModel } from '../../src/dev/demo-model.js';
import { devConfigInput, DEV_AUDIENCE } from '../../src/dev/dev-config.js';
import { startDevIdp, type DevIdp } from '../../src/dev/idp.js';
import { errorOf } from '../helpers/harness.js';
import { startModelgate, type Running } from '../helpers/processes.js';
import { eventually, sseFrames } from './helpers.js';

describe('gateway --workers 2 with one agent: every worker reaches the tunnel', { timeout: 180_000 }, () => {
  let dir: string;
  let model: DemoModel;
  let idp: DevIdp;
  let gateway: Running;
  let agent: Running;
  let url: string;
  let token: string;
  let db: Database.Database;
  const children: ChildProcess[] = [];

  /** One request on a connection of its own, so node:cluster hands each to the next worker in turn. */
  const chat = async (stream: boolean, content = 'hello'): Promise<{ status: number; code?: string; frames?: string[]; content?: string }> => {
    const dispatcher = new UndiciAgent();
    try {
      const r = (await undiciFetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ model: 'demo-chat', stream, messages: [{ role: 'user', content }] }),
        dispatcher,
        // A hang is a failure of its own, not a suite timeout.
        signal: AbortSignal.timeout(30_000),
      })) as unknown as Response;
      if (r.status !== 200) return { status: r.status, code: (await errorOf(r)).code };
      if (stream) return { status: 200, frames: (await sseFrames(r)).map((f) => f.data) };
      return { status: 200, content: ((await r.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content };
    } finally {
      await dispatcher.close();
    }
  };
  /** The gateway's `request` log lines so far, by how the request reached the model. */
  const targets = () => gateway.lines.filter((l) => l.msg === 'request' && l.path === '/v1/chat/completions').map((l) => String(l.target ?? l.code));
  /** Every chat request the model received has a session record. */
  const assertNothingUnaudited = () => {
    const ids = [...new Set(model.received.filter((r) => r.path === '/v1/chat/completions').map((r) => String(r.headers['x-request-id'])))];
    assert.ok(ids.length > 0);
    const recorded = new Set(db.prepare<[], { id: string }>(`SELECT id FROM sessions WHERE id IN (${ids.map((id) => `'${id.replace(/'/g, '')}'`).join(',')})`).all().map((r) => r.id));
    assert.deepEqual(ids.filter((id) => !recorded.has(id)), [], 'requests that reached the model without a session record');
  };
  /** The worker whose route claim is live: the one holding the agent's tunnel. */
  const holderPid = async (): Promise<number> => {
    const claims = () => db.prepare<[number], { instance: string }>("SELECT instance FROM agent_routes WHERE connection = 'demo' AND expires_at > ?").all(Date.now());
    // A killed worker's claim stays until its lease lapses (seconds).
    await eventually(async () => claims().length === 1, 'one worker claims "demo"');
    const line = await gateway.logLine('accepting requests routed from other instances', (l) => l.instance === claims()[0]!.instance);
    return Number(line.pid);
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'modelgate-workers-agent-'));
    model = await startDemoModel({ apiKey: 'demo-upstream-key', chunkDelayMs: 10 });
    idp = await startDevIdp({ audience: DEV_AUDIENCE });
    const input = devConfigInput({ host: '127.0.0.1', port: 0, issuer: idp.issuer, modelUrl: model.url, dataDir: dir }) as Record<string, any>;
    const demo = input.connections[0];
    delete demo.url;
    demo.targets = [{ via: 'agent' }];
    input.identity.state = { store: 'sqlite', path: join(dir, 'identity.db') };
    input.agents = { listen: { host: '127.0.0.1', port: 0 }, key_check_interval: '250ms', heartbeat_interval: '1s', heartbeat_timeout: '5s' };
    const configPath = join(dir, 'modelgate.yaml');
    await writeFile(configPath, JSON.stringify(input));
    gateway = startModelgate(['gateway', '--config', configPath, '--workers', '2']);
    children.push(gateway.child);
    const routed = await gateway.logLines('accepting requests routed from other instances', 2);
    assert.notEqual(routed[0]!.url, routed[1]!.url, 'each worker has a routing listener of its own');
    const listening = await gateway.logLines('gateway listening', 2);
    url = String(listening[0]!.url);
    assert.ok(!gateway.lines.some((l) => typeof l.msg === 'string' && l.msg.includes('an agent tunnel lands on one worker')), 'no warning: the workers route to each other');
    const storage = storageSchema.parse(input.storage);
    const keys = new AgentKeys(await openAgentKeyStore(storage));
    const { key } = await keys.create('edge', ['demo']);
    await keys.store.close();
    agent = startModelgate(['agent', '--gateway', String((await gateway.logLine('accepting agent tunnels')).url), '--serve', `demo=${model.url}`, '--listen', '127.0.0.1:0', '--heartbeat', '500', '--heartbeat-timeout', '3000', '--log-level', 'info'], {
      MODELGATE_AGENT_KEY: key,
    });
    children.push(agent.child);
    await agent.logLine('tunnel connected');
    db = new Database(join(dir, 'modelgate.db'), { readonly: true, fileMustExist: true });
    token = (await idp.loginAs('alice')).accessToken;
  });
  afterEach(async () => {
    // Recording is write-ahead, but a session's row may trail its answer by a group commit.
    await eventually(async () => {
      try {
        assertNothingUnaudited();
        return true;
      } catch {
        return false;
      }
    }, 'every request the model saw is recorded').catch(() => assertNothingUnaudited());
  });
  after(async () => {
    db?.close();
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
    await Promise.all([model?.close(), idp?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  test('requests landing on either worker reach the model through the one tunnel, streamed and not', async () => {
    await holderPid();
    const before = targets().length;
    for (let i = 0; i < 8; i++) {
      const answer = await chat(i % 2 === 1, `n${i}`);
      assert.equal(answer.status, 200, JSON.stringify(answer));
      if (answer.frames) assert.equal(answer.frames.at(-1), '[DONE]');
      else assert.ok(answer.content);
    }
    // A request's log line follows its answer.
    await eventually(async () => targets().length - before === 8, 'the 8 requests logged');
    const seen = targets().slice(before);
    assert.ok(seen.some((t) => t === 'agent:edge'), `some requests landed on the holder: ${seen.join(', ')}`);
    assert.ok(seen.some((t) => t.startsWith('instance:')), `some were forwarded from the other worker: ${seen.join(', ')}`);
  });

  test("a forged request to a worker's routing listener is refused before any agent sees it: unsigned, or signed with another secret", async () => {
    const claim = db.prepare<[number], { address: string; instance: string }>("SELECT address, instance FROM agent_routes WHERE connection = 'demo' AND expires_at > ?").all(Date.now())[0]!;
    const claims: RouteClaims = {
      from: 'a-local-attacker',
      to: claim.instance,
      connection: 'demo',
      method: 'POST',
      path: '/v1/chat/completions',
      headers: Buffer.from(JSON.stringify({ 'content-type': 'application/json', authorization: 'Bearer demo-upstream-key' })).toString('base64url'),
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'around the gateway' }] }),
    };
    const before = model.received.length;
    for (const token of [undefined, signRoute(randomBytes(32).toString('base64url'), claims)]) {
      const r = await fetch(`${claim.address}${ROUTE_PATH}`, {
        method: 'POST',
        headers: {
          ...(token ? { 'x-modelgate-route-token': token } : {}),
          'x-modelgate-route-from': claims.from,
          'x-modelgate-route-to': claims.to,
          'x-modelgate-route-connection': claims.connection,
          'x-modelgate-route-method': claims.method,
          'x-modelgate-route-path': claims.path,
          'x-modelgate-route-headers': claims.headers,
        },
        body: claims.body,
      });
      assert.equal(r.status, 403);
      assert.equal(((await r.json()) as { error: { code: string } }).error.code, token ? 'route_token_invalid' : 'route_token_missing');
    }
    assert.equal(model.received.length, before, 'nothing reached the model');
  });

  test('the worker holding the tunnel is killed: the agent reconnects to a worker, requests recover on every worker', async () => {
    const pid = await holderPid();
    const connectedBefore = agent.lines.filter((l) => l.msg === 'tunnel connected').length;
    process.kill(pid, 'SIGKILL');
    // The kernel, not a round-robin primary, hands out connections, so none is stranded with the dead worker (test/cli/workers.test.ts).
    await gateway.logLine('worker exited; starting another', (l) => l.pid === pid);
    // Meanwhile every answer is a completion or a clean, specific error; none hangs.
    const outcomes: string[] = [];
    await eventually(
      async () => {
        const answer = await chat(false, 'during');
        outcomes.push(answer.status === 200 ? 'ok' : `${answer.status} ${answer.code}`);
        return agent.lines.filter((l) => l.msg === 'tunnel connected').length > connectedBefore && answer.status === 200;
      },
      'the agent reconnects and a request completes',
      60_000,
    );
    for (const o of outcomes) assert.match(o, /^(ok|503 agent_unavailable|502 upstream_unreachable)$/, outcomes.join(', '));
    await gateway.logLines('gateway listening', 3);
    const before = targets().length;
    for (let i = 0; i < 8; i++) {
      const answer = await chat(i % 2 === 0, `after ${i}`);
      assert.equal(answer.status, 200, JSON.stringify(answer));
      if (answer.frames) assert.equal(answer.frames.at(-1), '[DONE]');
    }
    await eventually(async () => targets().length - before === 8, 'the 8 requests logged');
    const seen = targets().slice(before);
    assert.ok(seen.some((t) => t === 'agent:edge') && seen.some((t) => t.startsWith('instance:')), `both workers served again, one through the other: ${seen.join(', ')}`);
    assert.notEqual(await holderPid(), pid);
  });
});
