// A connection served via agent: requests cross the reversed HTTP/2 tunnel
// with the pipeline unchanged (guardrails, masking and recording stay in the
// gateway), agents are load-balanced and fail over, cancellation crosses
// the tunnel, a broken tunnel ends a stream with an error frame, and a
// revoked key cuts a connected agent.
import assert from 'node:assert/strict';
import http2, { type ServerHttp2Stream } from 'node:http2';
import { createServer } from 'node:net';
import { after, afterEach, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import type { Agent } from '../../src/agent/agent.js';
import { SseDecoder } from '../../src/protocol/sse.js';
import { errorOf, postJson, type Harness } from '../helpers/harness.js';
import { agentsConnected, createAgentKey, eventually, sseFrames, startAgent, startAgentHarness, until } from './helpers.js';

/** A loopback port nothing listens on: a model server that is down. */
async function closedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

describe('agent tunnel', () => {
  let h: Harness;
  let token: string;
  let client: OpenAI;
  const agents: Agent[] = [];
  const agent = (key: string | (() => string), serve?: Record<string, string>) => {
    const a = startAgent(h, key, serve);
    agents.push(a);
    return a;
  };

  before(async () => {
    h = await startAgentHarness({
      model: { chunkDelayMs: 5 },
      configure: (input) => {
        input.guardrails = { ...input.guardrails, output: [{ name: 'mask-email-out', mask: { types: ['EMAIL'], strategy: 'placeholder' } }] };
      },
    });
    token = await h.userToken('alice');
    client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: token, maxRetries: 0 });
  });
  afterEach(async () => {
    h.model.setFault(null);
    await Promise.all(agents.splice(0).map((a) => a.close(100)));
    await agentsConnected(h, 0);
  });
  after(() => h.close());

  test('without a connected agent, a clean 503 that tells SDKs to retry', { timeout: 60_000 }, async () => {
    const response = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(response.status, 503);
    assert.equal(response.headers.get('retry-after'), '5');
    assert.equal((await errorOf(response)).code, 'agent_unavailable');
  });

  test('chat, streamed and not, through the tunnel with the connection credential and request id, and recorded', { timeout: 60_000 }, async () => {
    agent(await createAgentKey(h, 'beside-model-1'));
    await agentsConnected(h, 1);
    const answer = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'hello through the tunnel' }] });
    assert.ok(answer.choices[0]!.message.content!.length > 0);
    const seen = h.model.received.at(-1)!;
    assert.equal(seen.headers.authorization, 'Bearer demo-upstream-key', 'the gateway injects the connection credential, the agent forwards it');
    assert.ok(seen.headers['x-request-id']);

    const stream = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'stream it' }], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.ok(text.length > 0);

    const requestId = seen.headers['x-request-id'] as string;
    // The session's end is written just after the answer's last byte: wait for it, not for a while.
    await eventually(async () => !!(await h.gateway.services.audit!.archive.show(requestId))?.events.some((e) => e.kind === 'session.end'), 'the session record is complete');
    const session = await h.gateway.services.audit!.archive.show(requestId);
    assert.equal(session!.session.connection, 'demo');
  });

  test('masking stays in the gateway: a secret in the model output is masked after the tunnel', { timeout: 60_000 }, async () => {
    agent(await createAgentKey(h, 'beside-model-mask'));
    await agentsConnected(h, 1);
    const email = 'leak.me@example.com';
    const frame = (content: string) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'demo-chat', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
    h.model.setFault({ kind: 'raw', contentType: 'text/event-stream', writes: [frame(`write to ${email} now`), 'data: [DONE]\n\n'] }, { times: 1 });
    const response = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'contact?' }] });
    const body = (await sseFrames(response)).map((f) => f.data).join('\n');
    assert.ok(!body.includes(email), `the email must be masked: ${body}`);
  });

  test('two agents share the load; one whose model is down never sees a request fail (not-started retry)', { timeout: 60_000 }, async () => {
    const down = agent(await createAgentKey(h, 'model-down'), { demo: await closedPort() });
    const up = agent(await createAgentKey(h, 'model-up'));
    await agentsConnected(h, 2);
    for (let i = 0; i < 6; i++) {
      const answer = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: `n${i}` }] });
      assert.ok(answer.choices[0]!.message.content);
    }
    const forwarded = async (a: Agent, outcome: string) => (await a.registry.getSingleMetric('modelgate_agent_streams_total')!.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
    assert.ok((await forwarded(down, 'upstream_unreachable')) >= 1, 'the agent with the model down was tried');
    assert.equal(await forwarded(up, 'ok'), 6);
  });

  test("an agent that will not take a stream (ENHANCE_YOUR_CALM) is passed over for another; with no other, a clean 503 agent_busy, and the model never saw it", { timeout: 60_000 }, async () => {
    const calm = agent(await createAgentKey(h, 'calm'));
    let refused = 0;
    // What node's HTTP/2 server does itself, before any JavaScript sees the stream, past its session's memory limit.
    (calm as unknown as { forward: (stream: ServerHttp2Stream) => void }).forward = (stream) => {
      refused++;
      stream.on('error', () => {}); // (here a JavaScript stream exists, and hears its own reset)
      stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    };
    const other = agent(await createAgentKey(h, 'takes-it'));
    await agentsConnected(h, 2);
    const received = h.model.received.length;
    for (let i = 0; i < 6; i++) {
      const answer = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: `n${i}` }] });
      assert.ok(answer.choices[0]!.message.content);
    }
    assert.ok(refused >= 1, 'the refusing agent was tried');
    assert.equal(h.model.received.length - received, 6, 'each request reached the model once');

    await other.close(100);
    await agentsConnected(h, 1);
    const response = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(response.status, 503);
    assert.equal(response.headers.get('retry-after'), '1');
    assert.equal((await errorOf(response)).code, 'agent_busy');
    assert.equal(h.model.received.length - received, 6, 'the refused request never reached the model');
  });

  for (const how of ['socket'] as const) test(`an agent killed mid-stream (${how} destroyed): the client gets a clean error frame, never a silent truncation`, { timeout: 60_000 }, async () => {
    const a = agent(await createAgentKey(h, 'killed'));
    await agentsConnected(h, 1);
    h.model.setFault({ kind: 'stall_mid_stream', afterChunks: 2 }, { times: 1 });
    const response = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'long answer' }] });
    assert.equal(response.status, 200);
    // The first frame has crossed the tunnel: the stream is under way.
    const reader = response.body!.getReader();
    const decoder = new SseDecoder();
    const received = decoder.push((await reader.read()).value!);
    a.destroyTunnel(how);
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true as const }));
      if (done) break;
      received.push(...decoder.push(value));
    }
    const frames = [...received, ...decoder.end()].filter((f) => f.hasData);
    assert.ok(frames.length >= 1);
    const last = frames.at(-1)!;
    assert.notEqual(last.data, '[DONE]');
    assert.ok(JSON.parse(last.data).error, `the last frame is an error frame: ${last.data}`);
  });

  test('an upstream reset mid-stream at the agent ends the stream with an error frame', { timeout: 60_000 }, async () => {
    agent(await createAgentKey(h, 'reset'));
    await agentsConnected(h, 1);
    h.model.setFault({ kind: 'reset_mid_stream', afterChunks: 2 }, { times: 1 });
    const response = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'x' }] });
    const frames = await sseFrames(response);
    assert.ok(JSON.parse(frames.at(-1)!.data).error, 'error frame last: ' + frames.map((f) => f.data).join(' | '));
  });

  test('a client that goes away cancels the model request on the far side of the tunnel, even before the model answered', { timeout: 60_000 }, async () => {
    agent(await createAgentKey(h, 'cancel'));
    await agentsConnected(h, 1);
    h.model.setFault({ kind: 'hang' }, { times: 1, path: '/v1/chat/completions' });
    const controller = new AbortController();
    const aborted = h.model.waitForAbort(5_000);
    const pending = fetch(`${h.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'x' }] }),
      signal: controller.signal,
    }).catch(() => undefined);
    await until(() => h.model.received.some((r) => r.path === '/v1/chat/completions' && !r.aborted && r === h.model.received.at(-1)), 'the model has the request');
    controller.abort();
    await pending;
    assert.equal((await aborted).aborted, true);
  });

  test('one client not reading does not stall another stream on the same tunnel (per-stream flow control)', { timeout: 60_000 }, async () => {
    agent(await createAgentKey(h, 'flow'));
    await agentsConnected(h, 1);
    const big = `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'demo-chat', choices: [{ index: 0, delta: { content: 'x'.repeat(16_000) }, finish_reason: null }] })}\n\n`;
    h.model.setFault({ kind: 'raw', contentType: 'text/event-stream', writes: Array<string>(400).fill(big) }, { times: 1 });
    const stalled = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'big' }] });
    assert.equal(stalled.status, 200); // headers only: its body is never read
    // Its first frames are in the tunnel: the stalled stream holds its window while the next request runs.
    const reader = stalled.body!.getReader();
    await reader.read();
    const answer = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'meanwhile' }] });
    assert.ok(answer.choices[0]!.message.content);
    await reader.cancel();
  });

  test('a bad key, and a key for other connections, are refused at the handshake', { timeout: 60_000 }, async () => {
    const genuine = await createAgentKey(h, 'forged');
    const bad = agent(genuine.slice(0, -4) + (genuine.endsWith('AAAA') ? 'BBBB' : 'AAAA')); // a real key id with a wrong secret
    const other = agent(await createAgentKey(h, 'other-conn', ['elsewhere']));
    // Each has been refused at least once: the gateway's handshake counter and the agents' own dial counters say so.
    const refusals = async (agentSide: Agent) => (await agentSide.registry.getSingleMetric('modelgate_agent_dials_total')!.get()).values.find((v) => v.labels.outcome === '401' || v.labels.outcome === '403')?.value ?? 0;
    await eventually(async () => (await refusals(bad)) >= 1 && (await refusals(other)) >= 1, 'both agents refused');
    assert.equal(bad.state, 'connecting');
    assert.equal(other.state, 'connecting');
    assert.equal(h.gateway.agents!.agentsFor('demo').length, 0);
    const refused = (await h.gateway.services.metrics.registry.getSingleMetric('modelgate_agent_handshakes_total')!.get()).values;
    assert.ok(refused.some((v) => v.labels.outcome === 'invalid_agent_key'));
    assert.ok(refused.some((v) => v.labels.outcome === 'agent_connection_not_allowed'));
  });

  test('revocation cuts a connected agent at once, and it cannot come back', { timeout: 60_000 }, async () => {
    const a = agent(await createAgentKey(h, 'to-revoke'));
    await agentsConnected(h, 1);
    assert.equal(await h.gateway.agents!.keys.revoke('to-revoke'), 1);
    await agentsConnected(h, 0);
    const refusedDials = async () => (await a.registry.getSingleMetric('modelgate_agent_dials_total')!.get()).values.find((v) => v.labels.outcome === '401')?.value ?? 0;
    await eventually(async () => (await refusedDials()) >= 1, 'a reconnect is refused');
    assert.equal(a.state, 'connecting', 'its reconnects are refused');
  });

  test('rotation without downtime: the agent switches to the new key before the old one lapses', { timeout: 60_000 }, async () => {
    let key = await createAgentKey(h, 'rotating');
    const a = agent(() => key);
    await agentsConnected(h, 1);
    const rotated = await h.gateway.agents!.keys.rotate('rotating', 60_000);
    key = rotated.key;
    await a.reload();
    await agentsConnected(h, 1);
    assert.equal(h.gateway.agents!.agentsFor('demo')[0]!.key.id, rotated.record.id);
    const answer = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'after rotation' }] });
    assert.ok(answer.choices[0]!.message.content);
  });

  test('a key rotated while the agent is still dialling: one tunnel, on the new key', { timeout: 60_000 }, async () => {
    let key = await createAgentKey(h, 'rotating-early');
    const a = agent(() => key);
    // The first dial is under way (the agent was just started) when the key changes.
    const rotated = await h.gateway.agents!.keys.rotate('rotating-early', 60_000);
    key = rotated.key;
    await a.reload();
    await until(() => h.gateway.agents!.agentsFor('demo').some((c) => c.key.id === rotated.record.id), 'a tunnel on the new key');
    // The tunnel the first dial opened is closed, not left beside the new one.
    await agentsConnected(h, 1);
    assert.deepEqual(h.gateway.agents!.agentsFor('demo').map((c) => c.key.id), [rotated.record.id]);
  });
});
