// The multi-process fault harness (issue 16's acceptance), on loopback: two
// `modelgate gateway` processes behind a round-robin TCP load balancer, two
// `modelgate agent` processes (one dialled into each instance), the demo
// model, real PostgreSQL (a fresh schema, reached through a relay the test
// can cut: the machine's server is never restarted) and real Redis (limits).
// Each fault asserts what the client saw (a completed answer or a clean,
// specific error), the session record, and, after every step, that no
// request reached the model without a session record in PostgreSQL.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import pg from 'pg';
import { openAgentKeyStore } from '../../src/agent/key-store.js';
import { AgentKeys } from '../../src/agent/registry.js';
import { storageSchema } from '../../src/audit/config.js';
import { startDemoModel, type DemoModel } from '../../src/dev/demo-model.js';
import { devConfigInput, DEV_AUDIENCE } from '../../src/dev/dev-config.js';
import { startDevIdp, type DevIdp } from '../../src/dev/idp.js';
import { Agent as UndiciAgent, fetch as undiciFetch } from 'undici';
import { errorOf } from '../helpers/harness.js';
import { startModelgate as start, type Running } from '../helpers/processes.js';
import { PG_URL } from '../helpers/postgres.js';
import { tcpBalancer, type TcpBalancer } from '../helpers/tcp-balancer.js';
import { faultyRelay, type FaultyRelay } from '../helpers/tcp-relay.js';
import { eventually, sseFrames } from './helpers.js';

const SCHEMA = `faults_${randomBytes(6).toString('hex')}`;

/** Reads an SSE response to its end (or its cut): the data of its frames. */
const sseData = async (response: Response): Promise<string[]> => (await sseFrames(response)).map((f) => f.data);

const errorCode = (frame: string | undefined): string | undefined => {
  try {
    return (JSON.parse(frame ?? '') as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
};

describe('fault harness: two instances behind a load balancer, two agents, PostgreSQL and Redis', { timeout: 120_000 }, () => {
  let dir: string;
  let model: DemoModel;
  let idp: DevIdp;
  let pgRelay: FaultyRelay;
  let lb: TcpBalancer;
  let keys: AgentKeys;
  let token: string;
  let db: pg.Client;
  const gateways: Array<{ proc: Running; url: string; agentsUrl: string; port: number }> = [];
  const agents = new Map<string, { proc: Running; status: string }>();
  const children: ChildProcess[] = [];
  let storage: { driver: 'postgres'; postgres: { url: string; schema: string; connect_timeout: string } };

  /** Client connections of one step: a step that kills an instance must not leave the next one pooled sockets to it. */
  let dispatcher = new UndiciAgent();
  const chat = (stream: boolean, content = 'hello') =>
    undiciFetch(`${lb.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ model: 'demo-chat', stream, messages: [{ role: 'user', content }] }),
      dispatcher,
    }).then(
      (r) => r as unknown as Response,
      (err: Error) => {
        throw new Error(`${err.message}: ${String((err.cause as Error | undefined)?.message ?? '')}`);
      },
    );
  const startGateway = async (i: number) => {
    const input = devConfigInput({ host: '127.0.0.1', port: 0, issuer: idp.issuer, modelUrl: model.url, dataDir: join(dir, `gw${i}`) }) as Record<string, unknown> & { connections: Array<Record<string, unknown>> };
    const demo = input.connections[0]!;
    delete demo.url;
    demo.targets = [{ via: 'agent' }];
    demo.timeouts = { response_headers: '3s', idle: '5s' };
    input.storage = storage;
    input.agents = { listen: { host: '127.0.0.1', port: 0 }, key_check_interval: '250ms', heartbeat_interval: '1s', heartbeat_timeout: '5s', routing: { listen: { host: '127.0.0.1', port: 0 }, secret: 'harness-secret-'.padEnd(40, 'x'), lease: '3s' } };
    input.limits = { store: 'redis', redis: { key_prefix: `modelgate-${SCHEMA}:` }, rules: [{ name: 'generous', requests_per_minute: 100_000 }] };
    const configPath = join(dir, `gw${i}.yaml`);
    await writeFile(configPath, JSON.stringify(input));
    const proc = start(['gateway', '--config', configPath, '--workers', '1']);
    children.push(proc.child);
    const agentsUrl = String((await proc.logLine('accepting agent tunnels')).url);
    const url = String((await proc.logLine('gateway listening')).url);
    return { proc, url, agentsUrl, port: Number(new URL(url).port) };
  };
  const startAgent = async (name: string, gatewayIndex: number, key?: string) => {
    key ??= (await keys.create(name, ['demo'])).key;
    const proc = start(['agent', '--gateway', gateways[gatewayIndex]!.agentsUrl, '--serve', `demo=${model.url}`, '--listen', '127.0.0.1:0', '--heartbeat', '500', '--heartbeat-timeout', '3000', '--log-level', 'info'], { MODELGATE_AGENT_KEY: key });
    children.push(proc.child);
    const status = String((await proc.logLine('agent starting')).status);
    await proc.logLine('tunnel connected');
    agents.set(name, { proc, status });
    return { key, status };
  };
  const agentMetric = async (name: string, pattern: RegExp) => {
    const text = await (await fetch(`${agents.get(name)!.status}/metrics`)).text();
    return Number(pattern.exec(text)?.[1] ?? 0);
  };
  /** Every chat request the model received carries a request id with a session (and its request event) in PostgreSQL. */
  const assertNothingUnaudited = async () => {
    const ids = [...new Set(model.received.filter((r) => r.path === '/v1/chat/completions').map((r) => String(r.headers['x-request-id'])))];
    const { rows } = await db.query<{ id: string }>(`SELECT id FROM ${SCHEMA}.sessions WHERE id = ANY($1)`, [ids]);
    const recorded = new Set(rows.map((r) => r.id));
    assert.deepEqual(ids.filter((id) => !recorded.has(id)), [], 'requests that reached the model without a session record');
  };
  const session = async (id: string) => (await db.query<{ state: string; status: number | null; error_code: string | null }>(`SELECT state, status, error_code FROM ${SCHEMA}.sessions WHERE id = $1`, [id])).rows[0];
  const lastRequestId = () => String(model.received.filter((r) => r.path === '/v1/chat/completions').at(-1)!.headers['x-request-id']);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'modelgate-faults-'));
    model = await startDemoModel({ apiKey: 'demo-upstream-key', chunkDelayMs: 20 });
    idp = await startDevIdp({ audience: DEV_AUDIENCE });
    pgRelay = await faultyRelay(Number(new URL(PG_URL).port || 5432));
    const relayed = new URL(PG_URL);
    relayed.port = String(pgRelay.port);
    storage = { driver: 'postgres', postgres: { url: relayed.href, schema: SCHEMA, connect_timeout: '2s' } };
    db = new pg.Client({ connectionString: PG_URL });
    await db.connect();
    // Instances one after the other: the first creates the schema's tables.
    gateways.push(await startGateway(1));
    gateways.push(await startGateway(2));
    keys = new AgentKeys(await openAgentKeyStore(storageSchema.parse({ driver: 'postgres', postgres: { url: PG_URL, schema: SCHEMA } })));
    lb = await tcpBalancer(gateways.map((g) => g.port));
    token = (await idp.loginAs('alice')).accessToken;
    await Promise.all([startAgent('agent-a', 0), startAgent('agent-b', 1)]);
  });
  afterEach(async () => {
    model.setFault(null);
    await dispatcher.close();
    dispatcher = new UndiciAgent();
    await assertNothingUnaudited();
  });
  after(async () => {
    await dispatcher.close();
    for (const child of children) child.kill('SIGKILL');
    await Promise.all([...children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined))]);
    await keys?.store.close();
    await lb?.close();
    await pgRelay?.close();
    await Promise.all([model?.close(), idp?.close()]);
    await db?.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
    await db?.end();
    await rm(dir, { recursive: true, force: true });
  });

  test('baseline: requests through the balancer complete on both instances, each recorded', async () => {
    const client = new OpenAI({ baseURL: `${lb.url}/v1`, apiKey: token, maxRetries: 0 });
    for (let i = 0; i < 4; i++) {
      const answer = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: `n${i}` }] });
      assert.ok(answer.choices[0]!.message.content);
    }
    assert.ok([...lb.sent.values()].every((n) => n >= 1), 'the balancer used both instances');
    await eventually(async () => (await session(lastRequestId()))?.state === 'completed', 'the last session is complete');
  });

  test('an agent killed mid-stream: an error frame, the session ends interrupted, and the next requests complete through the other agent', async () => {
    model.setFault({ kind: 'stall_mid_stream', afterChunks: 2 }, { times: 1, path: '/v1/chat/completions' });
    const response = await chat(true, 'long');
    assert.equal(response.status, 200);
    const reading = sseData(response);
    // Whichever agent carries the stream is killed.
    let carrier: string | undefined;
    await eventually(async () => {
      for (const name of agents.keys()) if ((await agentMetric(name, /^modelgate_agent_active_streams (\d+)/m)) > 0) carrier = name;
      return carrier !== undefined;
    }, 'one agent carries the stream');
    const id = lastRequestId();
    agents.get(carrier!)!.proc.child.kill('SIGKILL');
    const frames = await reading;
    assert.equal(errorCode(frames.at(-1)), 'upstream_stream_interrupted');
    await eventually(async () => (await session(id))?.state !== 'open', 'the session is closed');
    assert.equal((await session(id))!.error_code, 'upstream_stream_interrupted');
    // Requests landing on the killed agent's instance are routed to the other's agent.
    for (let i = 0; i < 4; i++) {
      const r = await chat(false);
      assert.equal(r.status, 200, await r.clone().text());
    }
    // The agent comes back (same key): it reconnects and serves again.
    const instance = carrier === 'agent-a' ? 0 : 1;
    const survivor = carrier === 'agent-a' ? 'agent-b' : 'agent-a';
    agents.delete(carrier!);
    await startAgent(carrier!, instance, undefined).catch(async () => startAgent(`${carrier}-again`, instance));
    const restarted = agents.has(carrier!) ? carrier! : `${carrier}-again`;
    for (let i = 0; i < 4; i++) assert.equal((await chat(false)).status, 200);
    assert.ok((await agentMetric(restarted, /^modelgate_agent_streams_total\{connection="demo",outcome="ok"\} (\d+)/m)) >= 1, 'the reconnected agent serves requests');
    assert.ok(agents.has(survivor));
  });

  test('a revoked agent is cut at once; every request still completes through the other instance', async () => {
    const [victim] = [...agents.keys()].filter((n) => n !== 'agent-b');
    await keys.revoke(victim!);
    await eventually(async () => (await fetch(`${agents.get(victim!)!.status}/readyz`)).status === 503, 'the revoked agent loses its tunnel');
    const served = await agentMetric(victim!, /^modelgate_agent_streams_total\{connection="demo",outcome="ok"\} (\d+)/m);
    for (let i = 0; i < 6; i++) {
      const r = await chat(i % 2 === 0);
      assert.equal(r.status, 200, await r.clone().text());
      if (i % 2 === 0) assert.equal((await sseData(r)).at(-1), '[DONE]');
    }
    assert.equal(await agentMetric(victim!, /^modelgate_agent_streams_total\{connection="demo",outcome="ok"\} (\d+)/m), served, 'the revoked agent served nothing more');
    agents.get(victim!)!.proc.child.kill('SIGKILL');
    agents.delete(victim!);
  });

  test('one gateway instance killed behind the balancer: the balancer skips it and requests complete on the other', async () => {
    gateways[0]!.proc.child.kill('SIGKILL');
    await new Promise((r) => gateways[0]!.proc.child.once('exit', r));
    for (let i = 0; i < 6; i++) {
      const r = await chat(false);
      assert.equal(r.status, 200, await r.clone().text());
    }
  });

  test('PostgreSQL restarted under load: streams under way and requests during the outage each complete or end cleanly; service resumes', async () => {
    const outcome = async (pending: Promise<Response | undefined>): Promise<string> => {
      const r = await pending;
      if (!r) return 'connection reset';
      if (r.status !== 200) return `${r.status} ${(await errorOf(r)).code}`;
      const frames = await sseData(r);
      return frames.at(-1) === '[DONE]' ? 'complete' : `frame ${errorCode(frames.at(-1))}`;
    };
    const send = (i: number) => chat(true, `load ${i}`).catch(() => undefined);
    // Streams under way (their headers are here) when the database goes.
    const underWay = await Promise.all(Array.from({ length: 6 }, (_, i) => send(i)));
    pgRelay.cut();
    const reading = underWay.map((r) => outcome(Promise.resolve(r)));
    const during = await Promise.all(Array.from({ length: 4 }, (_, i) => outcome(send(10 + i))));
    pgRelay.restore();
    const outcomes = [...(await Promise.all(reading)), ...during];
    for (const o of outcomes) assert.match(o, /^(complete|5\d\d [a-z_]+|frame [a-z_]+)$/, `each outcome is a completed answer or a clean error: ${outcomes.join(', ')}`);
    assert.ok(during.every((o) => o === '503 recording_unavailable'), `nothing is forwarded while it cannot be recorded: ${during.join(', ')}`);
    await eventually(async () => (await chat(false)).status === 200, 'requests complete again once PostgreSQL is back', 30_000);
  });

  test('an upstream reset mid-stream ends the stream with an error frame and an interrupted record', async () => {
    model.setFault({ kind: 'reset_mid_stream', afterChunks: 2 }, { times: 1, path: '/v1/chat/completions' });
    const response = await chat(true);
    assert.equal(response.status, 200, await response.clone().text());
    const frames = await sseData(response);
    assert.equal(errorCode(frames.at(-1)), 'upstream_stream_interrupted');
    const id = lastRequestId();
    await eventually(async () => (await session(id))?.state !== 'open', 'the session is closed');
    assert.equal((await session(id))!.error_code, 'upstream_stream_interrupted');
  });

  test('an upstream that hangs: 504 upstream_timeout after the connection\'s response_headers timeout, recorded', async () => {
    model.setFault({ kind: 'hang' }, { times: 1, path: '/v1/chat/completions' });
    const r = await chat(false);
    assert.equal(r.status, 504, await r.clone().text());
    assert.equal((await errorOf(r)).code, 'upstream_timeout');
    const id = lastRequestId();
    await eventually(async () => (await session(id))?.state !== 'open', 'the session is closed');
    assert.equal((await session(id))!.error_code, 'upstream_timeout');
  });
});
