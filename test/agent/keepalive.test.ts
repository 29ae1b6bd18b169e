// The tunnel's known hang: the agent's HTTP/2 session dies while TCP stays
// open (the peer, or a middlebox, stops forwarding). A relay between agent
// and gateway freezes the connection without closing it. Both ends PING:
// the gateway cuts the tunnel and every request on it ends with a clean
// error (an error frame mid-stream, a 502 before the answer); the agent sees
// its PINGs go unanswered, drops the dead socket and dials again.
import assert from 'node:assert/strict';
import http from 'node:http';
import type http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Agent } from '../../src/agent/agent.js';
import { SseDecoder } from '../../src/protocol/sse.js';
import { errorOf, postJson, type Harness, type HarnessOptions } from '../helpers/harness.js';
import { faultyRelay, type FaultyRelay } from '../helpers/tcp-relay.js';
import { DEFAULT_HEARTBEAT } from '../../src/agent/heartbeat.js';
import { agentsConnected, createAgentKey, sseFrames, startAgent, startAgentHarness, until } from './helpers.js';

/** A gateway and one agent that dials it through a relay the test can freeze or stall; `heartbeat` on both ends (the gateway's default timeout when `timeoutMs` is left out). */
async function behindRelay(name: string, heartbeat: { intervalMs: number; timeoutMs?: number }, options: { model?: HarnessOptions['model']; serve?: Record<string, string> } = {}) {
  const h = await startAgentHarness({
    model: options.model,
    configure: (input) => {
      input.agents = { ...input.agents, heartbeat_interval: `${heartbeat.intervalMs}ms` };
      if (heartbeat.timeoutMs === undefined) delete (input.agents as { heartbeat_timeout?: string }).heartbeat_timeout;
      else input.agents.heartbeat_timeout = `${heartbeat.timeoutMs}ms`;
    },
  });
  const token = await h.userToken('alice');
  const relay = await faultyRelay(Number(new URL(h.gateway.agentsUrl!).port));
  const agent = startAgent(h, await createAgentKey(h, name), options.serve, {
    gateway: new URL(`http://127.0.0.1:${relay.port}`),
    heartbeat: { timeoutMs: DEFAULT_HEARTBEAT.timeoutMs, ...heartbeat },
  });
  const close = async (): Promise<void> => {
    await agent.close(100);
    await relay.close();
    await h.close();
  };
  return { h, token, relay, agent, close };
}

describe('tunnel keepalive', () => {
  let h: Harness;
  let relay: FaultyRelay;
  let agent: Agent;
  let token: string;
  let close: () => Promise<void>;

  before(async () => {
    ({ h, token, relay, agent, close } = await behindRelay('behind-relay', { intervalMs: 300, timeoutMs: 1_000 }, { model: { chunkDelayMs: 5 } }));
  });
  after(() => close());

  /** Freezes the agent's current connection, then waits for it to dial a fresh one through the relay. */
  async function freezeAndRecover(): Promise<void> {
    const dialled = relay.accepted;
    relay.freeze();
    await until(() => relay.accepted > dialled && agent.state === 'connected', 'the agent redials after its PINGs go unanswered', 30_000);
    await agentsConnected(h, 1);
  }

  test('a stream under way when the tunnel freezes ends with an error frame; the agent redials and serves again', { timeout: 60_000 }, async () => {
    await agentsConnected(h, 1);
    h.model.setFault({ kind: 'stall_mid_stream', afterChunks: 2 }, { times: 1, path: '/v1/chat/completions' });
    const response = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'long' }] });
    assert.equal(response.status, 200);
    const reader = response.body!.getReader();
    const decoder = new SseDecoder();
    const frames = decoder.push((await reader.read()).value!);
    const aborted = h.model.waitForAbort(30_000);
    const recovered = freezeAndRecover();
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true as const }));
      if (done) break;
      frames.push(...decoder.push(value));
    }
    const last = [...frames, ...decoder.end()].filter((f) => f.hasData).at(-1)!;
    assert.equal((JSON.parse(last.data) as { error?: { code: string } }).error?.code, 'upstream_stream_interrupted');
    await recovered;
    assert.equal((await aborted).aborted, true, 'the stalled model stream was cancelled, not left open');
    const after = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content: 'again' }] });
    assert.equal(after.status, 200, await after.clone().text());
  });

  test('a request waiting for the model when the tunnel freezes gets a clean 502 agent_lost', { timeout: 60_000 }, async () => {
    await agentsConnected(h, 1);
    h.model.setFault({ kind: 'hang' }, { times: 1, path: '/v1/chat/completions' });
    const before = h.model.received.length;
    const aborted = h.model.waitForAbort(30_000);
    const pending = postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content: 'waiting' }] });
    await until(() => h.model.received.length > before, 'the model has the request');
    const recovered = freezeAndRecover();
    const response = await pending;
    assert.equal(response.status, 502);
    assert.equal((await errorOf(response)).code, 'agent_lost');
    await recovered;
    assert.equal((await aborted).aborted, true, 'the agent cancelled the model request when it dropped the dead tunnel');
  });
});

// The soak's lost agent: at thousands of streams the tunnel is alive but
// busy, and a heartbeat that judged by the clock alone cut it. Here the
// process's event loop is blocked, right after a PING went out, for longer
// than the heartbeat's deadline (gateway and agent share this process). Node
// runs the expired deadline before it reads the answer waiting on the socket:
// the tunnel must survive, and the stream on it complete.
describe('a tunnel whose event loop is blocked past the heartbeat deadline', () => {
  let h: Harness;
  let agent: Agent;
  let token: string;

  before(async () => {
    h = await startAgentHarness({
      model: { chunkDelayMs: 100, replyWords: 60 },
      configure: (input) => {
        input.agents = { ...input.agents, heartbeat_interval: '200ms', heartbeat_timeout: '500ms' };
      },
    });
    token = await h.userToken('alice');
    const key = await createAgentKey(h, 'blocked');
    agent = startAgent(h, key, undefined, { heartbeat: { intervalMs: 200, timeoutMs: 500 } });
  });
  after(async () => {
    await agent.close(100);
    await h.close();
  });

  /** The next PING `session` sends is followed by a synchronous block of 3 heartbeat deadlines; resolves once it ran. */
  function blockAfterNextPing(session: http2.Http2Session): Promise<void> {
    return new Promise((resolve) => {
      const ping = session.ping.bind(session);
      session.ping = ((...args: Parameters<typeof session.ping>) => {
        const sent = ping(...args);
        session.ping = ping;
        const until = Date.now() + 1_500;
        while (Date.now() < until); // the event loop does nothing else meanwhile, as under a burst
        resolve();
        return sent;
      }) as typeof session.ping;
    });
  }

  test('the tunnel survives a blocked loop on either end, and the stream on it completes', { timeout: 60_000 }, async () => {
    await agentsConnected(h, 1);
    // The gateway lists the tunnel as soon as its end is up; the agent takes its end a few turns later (under load, later still).
    await until(() => agent.state === 'connected', "the agent's end of the tunnel");
    const [tunnel] = h.gateway.agents!.list();
    const agentSession = (agent as unknown as { session: http2.Http2Session }).session;
    const response = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'a long answer please, with many words in it' }] });
    assert.equal(response.status, 200);
    const frames = sseFrames(response);
    await blockAfterNextPing(tunnel!.session);
    await blockAfterNextPing(agentSession);
    const data = (await frames).map((f) => f.data);
    assert.equal(data.at(-1), '[DONE]');
    assert.ok(!data.some((d) => d.includes('"error"')), data.join('\n'));
    assert.deepEqual(h.gateway.agents!.list(), [tunnel], 'the gateway kept the same tunnel');
    assert.equal((agent as unknown as { session: http2.Http2Session }).session, agentSession, 'the agent kept the same tunnel');
  });
});

// The soak's dead agent: at 5,000 streams the agent's writes backed up in
// its socket when its heartbeat gave up on the gateway. The HTTP/2 session
// then closes only once that write is done, and its `socket` is node's
// guard proxy, which throws on `destroy`: the agent process crashed instead
// of dropping the tunnel and dialling again.
describe('the gateway stops reading while the agent has answers to write', () => {
  let h: Harness;
  let relay: FaultyRelay;
  let agent: Agent;
  let token: string;
  let close: () => Promise<void>;
  let model: http.Server;
  const holding: Array<() => void> = [];

  before(async () => {
    // Each held answer, once released, is a frame bigger than a stream's flow-control window.
    const frame = `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'demo-chat', choices: [{ index: 0, delta: { content: 'x'.repeat(70_000) }, finish_reason: null }] })}\n\n`;
    model = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const answer = () => {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.end(`${frame}data: [DONE]\n\n`);
        };
        if (body.includes('hold')) holding.push(answer);
        else answer();
      });
    });
    await new Promise<void>((resolve) => model.listen(0, '127.0.0.1', resolve));
    const serve = { demo: `http://127.0.0.1:${(model.address() as AddressInfo).port}` };
    ({ h, token, relay, agent, close } = await behindRelay('backed-up', { intervalMs: 300, timeoutMs: 1_000 }, { serve }));
    await agentsConnected(h, 1);
  });
  after(async () => {
    await close();
    model.closeAllConnections();
    await new Promise<void>((resolve) => model.close(() => resolve()));
  });

  test('the agent drops the stalled tunnel without crashing, dials again and serves', { timeout: 60_000 }, async () => {
    const streams = 100;
    const pending = Array.from({ length: streams }, () =>
      postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'hold this' }] }).then(
        (r) => r.text(),
        () => '',
      ),
    );
    await until(() => holding.length === streams, `${streams} requests at the model`);
    const dialled = relay.accepted;
    relay.stall();
    // 100 windows of 64 KiB: more than the loopback socket buffers hold, so the agent's write is still under way.
    for (const answer of holding.splice(0)) answer();
    await until(() => relay.accepted > dialled && agent.state === 'connected', 'the agent dials again after its PINGs go unanswered', 30_000);
    await agentsConnected(h, 1);
    await Promise.all(pending);
    const after = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'again' }] });
    assert.equal(after.status, 200);
    assert.ok((await after.text()).includes('[DONE]'));
  });
});

// A busy peer is not a dead one: under a 5,000-stream burst on two cores the
// gateway went more than the old 5 s default without a byte for the tunnel,
// and the agent cut it, ending every stream. With the default timeout on
// both ends, a tunnel whose bytes stop for 8 s (nothing read either way,
// then everything delivered) survives, and the stream on it completes.
describe('a tunnel silent for 8 s, with the default heartbeat timeout on both ends', () => {
  let h: Harness;
  let relay: FaultyRelay;
  let token: string;
  let close: () => Promise<void>;

  before(async () => {
    // PINGs often, so one is always outstanding while the tunnel is silent; the timeout is the default on both ends.
    ({ h, token, relay, close } = await behindRelay('silent-for-a-while', { intervalMs: 300 }, { model: { chunkDelayMs: 100, replyWords: 120 } }));
    await agentsConnected(h, 1);
  });
  after(() => close());

  test('the tunnel and the stream on it survive', { timeout: 60_000 }, async () => {
    const [tunnel] = h.gateway.agents!.list();
    const dialled = relay.accepted;
    const response = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'a long answer please' }] });
    assert.equal(response.status, 200);
    const frames = sseFrames(response);
    relay.stall();
    await new Promise((r) => setTimeout(r, 8_000));
    relay.resume();
    const data = (await frames).map((f) => f.data);
    assert.equal(data.at(-1), '[DONE]', data.slice(-3).join('\n'));
    assert.ok(!data.some((d) => d.includes('"error"')), data.join('\n'));
    assert.deepEqual(h.gateway.agents!.list(), [tunnel], 'the gateway kept the same tunnel');
    assert.equal(relay.accepted, dialled, 'the agent did not dial again');
  });
});
