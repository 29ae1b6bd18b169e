// The multi-process fault harness (issue 16's acceptance), on loopback: two
// `modelgate gateway --workers 2` instances behind a round-robin TCP load
// balancer, two `modelgate agent` processes (one dialled into each instance,
// so onto one of its workers), the demo model, real PostgreSQL (a fresh
// schema, reached through a relay the test can cut: the machine's server is
// never restarted) and real Redis (limits). The four workers reach the
// agents through `agents.routing` on PostgreSQL: the first tests run with
// one agent only, so every worker but one must forward to it.
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
import { ROUTE_PATH, routeHeaders, signRoute, type RouteClaims } from '../../src/agent/router.js';
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
const ROUTING_SECRET = 'harness-secret-'.padEnd(40, 'x');
/** A client's own deadline: a hang is a failure of its own, not the suite's timeout. */
const CLIENT_DEADLINE_MS = 30_000;

/** Reads an SSE response to its end (or its cut): the data of its frames. */
const sseData = async (response: Response): Promise<string[]> => (await sseFrames(response)).map((f) => f.data);

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const errorCode = (frame: string | undefined): string | undefined => {
  try {
    return (JSON.parse(frame ?? '') as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
};

describe('fault harness: two instances of two workers each behind a load balancer, two agents, PostgreSQL and Redis', { timeout: 120_000 }, () => {
  let dir: string;
  let model: DemoModel;
  let idp: DevIdp;
  let pgRelay: FaultyRelay;
  let lb: TcpBalancer;
  let keys: AgentKeys;
  let token: string;
  let db: pg.Client;
  /** Each instance: its primary and its two workers (pid and routing instance id of each). */
  const gateways: Array<{ proc: Running; url: string; agentsUrl: string; port: number; workers: Array<{ pid: number; instance: string }> }> = [];
  const agents = new Map<string, { proc: Running; status: string }>();
  const children: ChildProcess[] = [];
  let storage: { driver: 'postgres'; postgres: { url: string; schema: string; connect_timeout: string } };

  /**
   * Each request on a connection of its own, as separate clients would be: the balancer alternates
   * instances and node:cluster alternates workers, so every fault meets requests at every worker.
   */
  const dispatchers = new Set<UndiciAgent>();
  const freshConnection = () => {
    const own = new UndiciAgent();
    dispatchers.add(own);
    return own;
  };
  const chat = (stream: boolean, content = 'hello') => {
    const dispatcher = freshConnection();
    return undiciFetch(`${lb.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ model: 'demo-chat', stream, messages: [{ role: 'user', content }] }),
      dispatcher,
      signal: AbortSignal.timeout(CLIENT_DEADLINE_MS),
    }).then(
      (r) => r as unknown as Response,
      (err: Error) => {
        throw new Error(`${err.message}: ${String((err.cause as Error | undefined)?.message ?? '')}`);
      },
    );
  };
  /** The official SDK, on a connection of its own per request. */
  const sdk = () => {
    const dispatcher = freshConnection();
    return new OpenAI({
      baseURL: `${lb.url}/v1`,
      apiKey: token,
      maxRetries: 0,
      timeout: CLIENT_DEADLINE_MS,
      fetch: (url, init) => undiciFetch(url as string, { ...(init as object), dispatcher }) as unknown as Promise<Response>,
    });
  };
  const startGateway = async (i: number) => {
    const input = devConfigInput({ host: '127.0.0.1', port: 0, issuer: idp.issuer, modelUrl: model.url, dataDir: join(dir, `gw${i}`) }) as Record<string, unknown> & {
      connections: Array<Record<string, unknown>>;
      identity: Record<string, unknown>;
    };
    const demo = input.connections[0]!;
    delete demo.url;
    demo.targets = [{ via: 'agent' }];
    demo.timeouts = { response_headers: '3s', idle: '5s' };
    input.storage = storage;
    // Workers share signing keys and revocations: in PostgreSQL too, through the same relay (a restart takes both away).
    input.identity.state = { store: 'postgres', url: storage.postgres.url, schema: SCHEMA };
    // Port 0: each worker's routing listener takes a free port of its own (the configured port + slot only applies to a fixed port).
    input.agents = { listen: { host: '127.0.0.1', port: 0 }, key_check_interval: '250ms', heartbeat_interval: '1s', heartbeat_timeout: '5s', routing: { listen: { host: '127.0.0.1', port: 0 }, secret: ROUTING_SECRET, lease: '3s' } };
    input.limits = { store: 'redis', redis: { key_prefix: `modelgate-${SCHEMA}:` }, rules: [{ name: 'generous', requests_per_minute: 100_000 }] };
    const configPath = join(dir, `gw${i}.yaml`);
    await writeFile(configPath, JSON.stringify(input));
    const proc = start(['gateway', '--config', configPath, '--workers', '2']);
    children.push(proc.child);
    const routed = await proc.logLines('accepting requests routed from other instances', 2);
    const listening = await proc.logLines('gateway listening', 2);
    assert.equal(listening[0]!.url, listening[1]!.url, 'the two workers share the client port');
    const agentsUrl = String((await proc.logLine('accepting agent tunnels')).url);
    const url = String(listening[0]!.url);
    const workers = routed.map((l) => ({ pid: Number(l.pid), instance: String(l.instance) }));
    return { proc, url, agentsUrl, port: Number(new URL(url).port), workers };
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
  /** Live claims on "demo" in the route table: which worker of which instance holds an agent, and its routing listener. */
  const claims = async () =>
    (await db.query<{ instance: string; address: string }>(`SELECT instance, address FROM ${SCHEMA}.agent_routes WHERE connection = 'demo' AND expires_at > $1`, [Date.now()])).rows;
  /** The sessions of `ids`, each with the pid of the worker that received (and recorded) it. */
  const recordedBy = async (ids: string[]) =>
    (
      await db.query<{ id: string; state: string; pid: number }>(
        `SELECT s.id, s.state, r.pid FROM ${SCHEMA}.sessions s JOIN ${SCHEMA}.recorder_instances r ON r.id = s.instance_id WHERE s.id = ANY($1)`,
        [ids],
      )
    ).rows;
  /** Every log line of every instance (the workers write to their primary's stdout). */
  const logLines = () => gateways.flatMap((g) => g.proc.lines);

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
    // Both at once, four workers creating the schema's tables: each store serialises that with an advisory lock.
    gateways.push(...(await Promise.all([startGateway(1), startGateway(2)])));
    keys = new AgentKeys(await openAgentKeyStore(storageSchema.parse({ driver: 'postgres', postgres: { url: PG_URL, schema: SCHEMA } })));
    lb = await tcpBalancer(gateways.map((g) => g.port));
    token = (await idp.loginAs('alice')).accessToken;
    // One agent, on one worker of instance 1, for the routing tests; agent-b joins instance 2 after them.
    await startAgent('agent-a', 0);
  });
  afterEach(async () => {
    model.setFault(null);
    await Promise.all([...dispatchers].map((d) => d.destroy()));
    dispatchers.clear();
    await assertNothingUnaudited();
  });
  after(async () => {
    await Promise.all([...dispatchers].map((d) => d.destroy()));
    for (const child of children) child.kill('SIGKILL');
    // Workers are not our children: a worker whose primary is gone would drain on its own, after this file ends.
    for (const pid of gateways.flatMap((g) => g.workers.map((w) => w.pid))) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await Promise.all([...children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined))]);
    await keys?.store.close();
    await lb?.close();
    await pgRelay?.close();
    await Promise.all([model?.close(), idp?.close()]);
    await db?.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
    await db?.end();
    await rm(dir, { recursive: true, force: true });
  });

  test('workers routing on PostgreSQL: one agent on one worker; requests arriving at each of the four workers of both instances reach it, each recorded by the worker it arrived at', async () => {
    await eventually(async () => (await claims()).length === 1, 'one worker claims "demo"');
    const [holder] = await claims();
    const workerPids = gateways.flatMap((g) => g.workers.map((w) => w.pid));
    assert.ok(gateways[0]!.workers.some((w) => w.instance === holder!.instance), "the agent's tunnel is on a worker of instance 1");
    const ids: string[] = [];
    const seen = new Set<number>();
    // Bounded: 40 requests to meet 4 workers (the balancer and node:cluster each alternate).
    for (let i = 0; i < 40 && seen.size < workerPids.length; i++) {
      const answer = await sdk().chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: `w${i}` }] });
      assert.ok(answer.choices[0]!.message.content);
      ids.push(lastRequestId());
      for (const row of await recordedBy([ids.at(-1)!])) seen.add(row.pid);
    }
    assert.deepEqual([...seen].sort(), [...workerPids].sort(), 'requests were received and recorded by every worker of both instances');
    await eventually(async () => (await recordedBy(ids)).every((r) => r.state === 'completed'), 'every session is complete');
    assert.equal((await recordedBy(ids)).length, ids.length, 'each request the model saw has its session');
    // How each reached the agent: directly on the holder, forwarded by every other worker.
    await eventually(async () => ids.every((id) => logLines().some((l) => l.msg === 'request' && l.reqId === id)), 'every request logged');
    const targets = new Set(logLines().filter((l) => l.msg === 'request' && ids.includes(String(l.reqId))).map((l) => String(l.target)));
    assert.deepEqual([...targets].sort(), ['agent:agent-a', `instance:${holder!.instance}`], 'the holder uses its tunnel; the three other workers forward to it');
  });

  test("a forged inter-instance request is refused before the agent sees it: unsigned, signed with another secret, or a real signature over another body", async () => {
    const [holder] = await claims();
    const forged: RouteClaims = {
      from: gateways[1]!.workers[0]!.instance,
      to: holder!.instance,
      connection: 'demo',
      method: 'POST',
      path: '/v1/chat/completions',
      headers: Buffer.from(JSON.stringify({ 'content-type': 'application/json' })).toString('base64url'),
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'around the gateway' }] }),
    };
    const seenByModel = model.received.length;
    const attempts: Array<[string | undefined, string, string]> = [
      [undefined, forged.body, 'route_token_missing'],
      [signRoute(randomBytes(32).toString('base64url'), forged), forged.body, 'route_token_invalid'],
      // A token taken from a genuine forwarded request does not carry another prompt.
      [signRoute(ROUTING_SECRET, forged), JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'swapped' }] }), 'route_token_invalid'],
    ];
    for (const [routeToken, body, code] of attempts) {
      const r = await fetch(`${holder!.address}${ROUTE_PATH}`, {
        method: 'POST',
        headers: routeHeaders(forged, routeToken),
        body,
        signal: AbortSignal.timeout(CLIENT_DEADLINE_MS),
      });
      assert.equal(r.status, 403);
      assert.equal(((await r.json()) as { error: { code: string } }).error.code, code);
    }
    assert.equal(model.received.length, seenByModel, 'nothing reached the model');
  });

  test('baseline: a second agent joins instance 2; requests through the balancer complete on both instances, each recorded', async () => {
    await startAgent('agent-b', 1);
    await eventually(async () => (await claims()).length === 2, 'a worker of each instance claims "demo"');
    for (let i = 0; i < 4; i++) {
      const answer = await sdk().chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: `n${i}` }] });
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

  test('one gateway instance killed behind the balancer (its primary and both workers): the balancer skips it and requests complete on the other', async () => {
    const killed = gateways[0]!;
    // The whole instance at once, as when its host or container dies.
    for (const pid of [killed.proc.child.pid!, ...killed.workers.map((w) => w.pid)]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    await killed.proc.exited;
    await eventually(async () => killed.workers.every((w) => !alive(w.pid)), "the instance's workers are gone");
    for (let i = 0; i < 6; i++) {
      const r = await chat(false);
      assert.equal(r.status, 200, await r.clone().text());
    }
  });

  test('PostgreSQL restarted under load, down past the route leases: streams under way and requests during the outage each complete or end cleanly, each under way recorded; service resumes on every worker', async () => {
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
    // Down longer than the routing lease, as a restart that takes a while: every claim lapses (read past the relay).
    await eventually(async () => (await claims()).length === 0, 'the route claims have lapsed');
    pgRelay.restore();
    const outcomes = [...(await Promise.all(reading)), ...during];
    for (const o of outcomes) assert.match(o, /^(complete|5\d\d [a-z_]+|frame [a-z_]+)$/, `each outcome is a completed answer or a clean error: ${outcomes.join(', ')}`);
    assert.ok(during.every((o) => o === '503 recording_unavailable'), `nothing is forwarded while it cannot be recorded: ${during.join(', ')}`);
    // Each stream under way has its session, closed once the database is back. A stream the client saw complete is recorded
    // completed, or incomplete when the commit of its last frames failed in the outage (the answer is not write-ahead; the
    // prompt is); a stream cut for the client is never recorded completed.
    const ids = underWay.map((r) => r?.headers.get('x-request-id')).filter((id): id is string => Boolean(id));
    assert.equal(ids.length, underWay.length, 'every stream under way had its headers');
    await eventually(async () => (await recordedBy(ids)).every((r) => r.state !== 'open') && (await recordedBy(ids)).length === ids.length, 'the sessions under way are closed', 30_000);
    const states = new Map((await recordedBy(ids)).map((r) => [r.id, r.state]));
    (await Promise.all(reading)).forEach((o, i) => {
      const state = states.get(ids[i]!);
      if (o === 'complete') assert.ok(state === 'completed' || state === 'incomplete', `${ids[i]}: complete for the client, ${state} in the record`);
      else assert.notEqual(state, 'completed', `${ids[i]}: ${o} for the client, completed in the record`);
    });
    // Service resumes, on both workers of the surviving instance: the one holding the agent and the one that forwards to it, whose
    // route read right after the restart finds the holder's claim lapsed (it renews only once the database is back).
    const resumed: string[] = [];
    await eventually(async () => (resumed.push(await outcome(send(20 + resumed.length))), resumed.at(-1) === 'complete'), 'a request completes once PostgreSQL is back', 30_000);
    for (let i = 0; i < 4; i++) resumed.push(await outcome(send(40 + i)));
    assert.deepEqual(resumed.slice(-4), ['complete', 'complete', 'complete', 'complete'], resumed.join(', '));
    assert.ok(resumed.every((o) => o === 'complete' || o === '503 recording_unavailable'), `no request is told that no agent is connected while one is: ${resumed.join(', ')}`);
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
