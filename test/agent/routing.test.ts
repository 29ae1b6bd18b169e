// Many instances: a request that arrives at an instance without an agent for
// its connection reaches the agent held by another instance, through that
// instance, over the signed internal channel. The receiving instance keeps
// guardrails and recording; the holder refuses anything not signed by a peer.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { after, afterEach, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import pg from 'pg';
import type { Agent } from '../../src/agent/agent.js';
import { checkRoute, ROUTE_PATH, ROUTE_TOKEN_LIFETIME_MS, signRoute, type RouteClaims } from '../../src/agent/router.js';
import { SseDecoder } from '../../src/protocol/sse.js';
import { errorOf, postJson, type Harness } from '../helpers/harness.js';
import { PG_URL } from '../helpers/postgres.js';
import { agentsConnected, createAgentKey, eventually, sseFrames, startAgent, startAgentHarness, until } from './helpers.js';

const SECRET = randomBytes(32).toString('base64url');
const SCHEMA = `route_${randomBytes(6).toString('hex')}`;

test('a forwarded request reaching a holder 40 s behind (a 5,000-stream burst) is still good; once its sender would have given up, it is not', () => {
  const claims: RouteClaims = { from: 'front', to: 'holder', connection: 'demo', method: 'POST', path: '/v1/chat/completions', headers: '', body: '{}' };
  const signedAt = Date.now();
  assert.equal(checkRoute(SECRET, signRoute(SECRET, claims, signedAt), claims, new Map(), signedAt + 40_000), undefined);
  assert.ok(ROUTE_TOKEN_LIFETIME_MS > 125_000, "longer than the sender's wait: a connection's default response_headers (120 s) + 5 s");
  assert.equal(checkRoute(SECRET, signRoute(SECRET, claims, signedAt), claims, new Map(), signedAt + ROUTE_TOKEN_LIFETIME_MS), 'route_token_expired');
});

describe('routing between instances', () => {
  /** `front` never holds an agent; `holder` does. They share PostgreSQL. */
  let front: Harness;
  let holder: Harness;
  let token: string;
  const agents: Agent[] = [];

  const instance = (secret = SECRET) =>
    startAgentHarness({
      model: { chunkDelayMs: 5 },
      configure: (input) => {
        input.storage = { driver: 'postgres', postgres: { url: PG_URL, schema: SCHEMA } };
        input.agents = { ...input.agents, routing: { listen: { host: '127.0.0.1', port: 0 }, secret, lease: '2s' } };
        input.guardrails = { ...input.guardrails, output: [{ name: 'mask-email-out', mask: { types: ['EMAIL'], strategy: 'placeholder' } }] };
      },
    });
  const holders = () => front.gateway.agents!.router!.holders('demo');

  before(async () => {
    [front, holder] = await Promise.all([instance(), instance()]);
    token = await front.userToken('alice');
  });
  afterEach(async () => {
    front.model.setFault(null);
    await Promise.all(agents.splice(0).map((a) => a.close(100)));
    await agentsConnected(holder, 0);
  });
  after(async () => {
    await Promise.all([front?.close(), holder?.close()]);
    const db = new pg.Client({ connectionString: PG_URL });
    await db.connect();
    await db.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
    await db.end();
  });

  /** An agent at `holder` serving the front's model, and the front seeing its claim. */
  async function agentAtHolder(name: string): Promise<Agent> {
    const a = startAgent(holder, await createAgentKey(holder, name), { demo: front.model.url });
    agents.push(a);
    await agentsConnected(holder, 1);
    await eventually(async () => (await holders()).length === 1, 'the front sees the holder claim "demo"');
    return a;
  }

  test('without an agent anywhere, the front answers a clean 503 agent_unavailable', { timeout: 60_000 }, async () => {
    const response = await postJson(`${front.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(response.status, 503);
    assert.equal((await errorOf(response)).code, 'agent_unavailable');
  });

  test("a dead instance's claim that lapsed a moment ago is tried, and the client still gets 503 agent_unavailable, not upstream_unreachable", { timeout: 60_000 }, async () => {
    const db = new pg.Client({ connectionString: PG_URL });
    await db.connect();
    try {
      // Nothing listens there any more: the connection is refused, as a killed instance's would be.
      const closed = await new Promise<number>((resolve) => {
        const server = createServer().listen(0, '127.0.0.1', () => {
          const { port } = server.address() as AddressInfo;
          server.close(() => resolve(port));
        });
      });
      const lapseNow = () => db.query(`INSERT INTO ${SCHEMA}.agent_routes (instance, connection, address, agents, expires_at) VALUES ('killed', 'demo', $1, 1, $2)
        ON CONFLICT (instance, connection) DO UPDATE SET expires_at = excluded.expires_at`, [`http://127.0.0.1:${closed}`, Date.now() - 1]);
      await eventually(async () => (await lapseNow(), (await holders()).some((h) => h.instance === 'killed' && h.lapsed)), 'the front reads the lapsed claim');
      const response = await postJson(`${front.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(response.status, 503);
      assert.equal((await errorOf(response)).code, 'agent_unavailable');
    } finally {
      await db.query(`DELETE FROM ${SCHEMA}.agent_routes WHERE instance = 'killed'`);
      await db.end();
      // The next test counts the holders the front sees: not this one from its cache.
      await eventually(async () => !(await holders()).some((h) => h.instance === 'killed'), 'the front forgets the claim');
    }
  });

  test('a request at the front reaches the agent at the holder, streamed and not, masked and recorded by the front', { timeout: 60_000 }, async () => {
    await agentAtHolder('routed-1');
    const client = new OpenAI({ baseURL: `${front.url}/v1`, apiKey: token, maxRetries: 0 });
    const answer = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'hello across instances' }] });
    assert.ok(answer.choices[0]!.message.content);
    const seen = front.model.received.at(-1)!;
    assert.equal(seen.headers.authorization, 'Bearer demo-upstream-key');
    const requestId = seen.headers['x-request-id'] as string;
    // The session's end is written just after the answer's last byte.
    await eventually(async () => !!(await front.gateway.services.audit!.archive.show(requestId))?.events.some((e) => e.kind === 'session.end'), 'the front records the session, complete');
    assert.equal(holder.gateway.agents!.agentsFor('demo').length, 1);

    const email = 'routed.leak@example.com';
    const frame = (content: string) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'demo-chat', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
    front.model.setFault({ kind: 'raw', contentType: 'text/event-stream', writes: [frame(`mail ${email}`), frame(' done'), 'data: [DONE]\n\n'] }, { times: 1 });
    const streamed = await postJson(`${front.url}/v1/chat/completions`, token, { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'contact?' }] });
    assert.equal(streamed.status, 200);
    const frames = await sseFrames(streamed);
    assert.equal(frames.at(-1)!.data, '[DONE]');
    assert.ok(!frames.some((f) => f.data.includes(email)), 'the front masks output that came through the holder');
  });

  test('an agent killed mid-stream at the holder: the client at the front gets an error frame, not a truncated answer', { timeout: 60_000 }, async () => {
    const a = await agentAtHolder('routed-killed');
    front.model.setFault({ kind: 'stall_mid_stream', afterChunks: 2 }, { times: 1, path: '/v1/chat/completions' });
    const response = await postJson(`${front.url}/v1/chat/completions`, token, { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'long' }] });
    assert.equal(response.status, 200);
    const reader = response.body!.getReader();
    const decoder = new SseDecoder();
    const frames = decoder.push((await reader.read()).value!);
    a.destroyTunnel('socket');
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true as const }));
      if (done) break;
      frames.push(...decoder.push(value));
    }
    const last = [...frames, ...decoder.end()].filter((f) => f.hasData).at(-1)!;
    assert.equal((JSON.parse(last.data) as { error?: { code: string } }).error?.code, 'upstream_stream_interrupted');
  });

  test('a client leaving the front cancels the model request behind the holder', { timeout: 60_000 }, async () => {
    await agentAtHolder('routed-cancel');
    front.model.setFault({ kind: 'hang' }, { times: 1, path: '/v1/chat/completions' });
    const aborted = front.model.waitForAbort(15_000);
    const controller = new AbortController();
    const before = front.model.received.length;
    const pending = fetch(`${front.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'x' }] }),
      signal: controller.signal,
    }).catch(() => undefined);
    await until(() => front.model.received.length > before, 'the model has the request');
    controller.abort();
    await pending;
    assert.equal((await aborted).aborted, true);
  });

  test('the holder withdraws its claim when its agent goes; the front then answers 503', { timeout: 60_000 }, async () => {
    const a = await agentAtHolder('routed-gone');
    await a.close(100);
    agents.splice(agents.indexOf(a), 1);
    await eventually(async () => (await holders()).length === 0, 'the holder withdraws its claim');
    const response = await postJson(`${front.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal((await errorOf(response)).code, 'agent_unavailable');
  });

  test('forged internal requests are refused before any agent sees them: no token, wrong secret, altered body, replay, misaddressed', { timeout: 60_000 }, async () => {
    await agentAtHolder('routed-forged');
    const router = holder.gateway.agents!.router!;
    const url = `${router.address}${ROUTE_PATH}`;
    const body = JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'smuggled past the front' }] });
    const claims: RouteClaims = {
      from: 'attacker',
      to: router.instance,
      connection: 'demo',
      method: 'POST',
      path: '/v1/chat/completions',
      headers: Buffer.from(JSON.stringify({ 'content-type': 'application/json', authorization: 'Bearer demo-upstream-key' })).toString('base64url'),
      body,
    };
    const send = (token: string | undefined, c: RouteClaims = claims, sentBody = body) =>
      fetch(url, {
        method: 'POST',
        headers: {
          ...(token ? { 'x-modelgate-route-token': token } : {}),
          'x-modelgate-route-from': c.from,
          'x-modelgate-route-to': c.to,
          'x-modelgate-route-connection': c.connection,
          'x-modelgate-route-method': c.method,
          'x-modelgate-route-path': c.path,
          'x-modelgate-route-headers': c.headers,
        },
        body: sentBody,
      });
    const before = front.model.received.length;
    const refusal = async (response: Response) => ({ status: response.status, code: ((await response.json()) as { error: { code: string } }).error.code });

    assert.deepEqual(await refusal(await send(undefined)), { status: 403, code: 'route_token_missing' });
    assert.deepEqual(await refusal(await send(signRoute(randomBytes(32).toString('base64url'), claims))), { status: 403, code: 'route_token_invalid' });
    assert.deepEqual(await refusal(await send(signRoute(SECRET, claims), claims, body.replace('smuggled', 'altered!'))), { status: 403, code: 'route_token_invalid' });
    assert.deepEqual(await refusal(await send(signRoute(SECRET, claims, Date.now() - ROUTE_TOKEN_LIFETIME_MS - 1))), { status: 403, code: 'route_token_expired' });
    const elsewhere = { ...claims, to: 'another-instance' };
    // Genuine but for a previous holder of this address (a replaced worker): not taken, so the sender tries another holder.
    assert.deepEqual(await refusal(await send(signRoute(SECRET, elsewhere), elsewhere)), { status: 503, code: 'route_misaddressed' });
    assert.equal(front.model.received.length, before, 'no forged request reached the model');

    // A genuine one is served once; the same token again is a replay.
    const genuine = signRoute(SECRET, claims);
    const served = await send(genuine);
    assert.equal(served.status, 200, await served.clone().text());
    await served.text();
    assert.deepEqual(await refusal(await send(genuine)), { status: 403, code: 'route_token_replayed' });
    assert.equal(front.model.received.length, before + 1);
    assert.equal(router.refused.get('route_token_invalid'), 2);
  });
});
