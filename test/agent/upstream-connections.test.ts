// The agent's connections to its model server are the gateway's own
// UpstreamConnections: a burst opens what it needs, the agent's metrics
// show how many it holds, and once the model server closes the idle ones
// nothing is held (undici's Pool kept every Client it had ever opened).
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Agent } from '../../src/agent/agent.js';
import { postJson, type Harness } from '../helpers/harness.js';
import { agentsConnected, createAgentKey, startAgent, startAgentHarness, until, within } from './helpers.js';

/** An answer far larger than the buffers between the model server and a client that does not read yet. */
const BIG_ANSWER_BYTES = 24 * 1024 * 1024;

/** SSE frames up to BIG_ANSWER_BYTES, honouring the socket's backpressure; `written` once the last byte is handed to the kernel. */
function streamBig(res: http.ServerResponse, written: () => void): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const frame = `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 0, model: 'demo-chat', choices: [{ index: 0, delta: { content: 'lorem ipsum dolor sit amet '.repeat(300) }, finish_reason: null }] })}\n\n`;
  let sent = 0;
  const more = (): void => {
    while (sent <= BIG_ANSWER_BYTES) {
      sent += frame.length;
      if (!res.write(frame)) return void res.once('drain', more);
    }
    res.end('data: [DONE]\n\n', written);
  };
  more();
}

describe("the agent's connections to its model server", () => {
  let h: Harness;
  let token: string;
  let agent: Agent;
  let model: http.Server;
  let modelConnections = 0;
  /** Answers are held until released, so a burst really has that many requests at the model at once. */
  const holding: Array<(written?: () => void) => void> = [];
  /** The next answer is BIG_ANSWER_BYTES of SSE frames. */
  let bigAnswer = false;

  before(async () => {
    model = http.createServer((req, res) => {
      req.resume();
      req.on('end', () =>
        holding.push((written) => {
          if (bigAnswer) return void streamBig(res, written!);
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ id: 'c1', object: 'chat.completion', created: 0, model: 'demo-chat', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }] }));
        }),
      );
    });
    // Longer than any wait here, so only the agent can drop an idle connection.
    model.keepAliveTimeout = 60_000;
    model.on('connection', () => modelConnections++);
    await new Promise<void>((resolve) => model.listen(0, '127.0.0.1', resolve));
    h = await startAgentHarness();
    token = await h.userToken('alice');
    agent = startAgent(h, await createAgentKey(h, 'beside-node-http'), { demo: `http://127.0.0.1:${(model.address() as AddressInfo).port}` });
    await agentsConnected(h, 1);
  });
  after(async () => {
    await agent.close(100);
    await h.close();
    await new Promise<void>((resolve) => model.close(() => resolve()));
  });

  const held = async (): Promise<number> => {
    const text = await agent.registry.metrics();
    const match = /^modelgate_agent_upstream_connections\{connection="demo"\} (\d+)$/m.exec(text);
    assert.ok(match, 'the agent exposes modelgate_agent_upstream_connections for the connection');
    return Number(match[1]);
  };
  const heldBecomes = async (n: number, what: string): Promise<void> => {
    let last = -1;
    const deadline = Date.now() + 10_000;
    while ((last = await held()) !== n) {
      assert.ok(Date.now() < deadline, `${what} (held: ${last})`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const burst = async (n: number): Promise<void> => {
    const requests = Array.from({ length: n }, () => postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] }));
    await until(() => holding.length === n, `${n} requests reach the model`);
    assert.equal(await held(), n, 'one connection per request at the model');
    for (const answer of holding.splice(0)) answer();
    for (const response of await Promise.all(requests)) assert.equal(response.status, 200, await response.text());
  };

  test('an answer the agent had to hold for a slow reader does not leave its connection for reuse: the model server may already be closing it', { timeout: 60_000 }, async () => {
    model.closeIdleConnections();
    await heldBecomes(0, 'no idle connection before');
    bigAnswer = true;
    try {
      const answer = postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'hi' }] });
      await until(() => holding.length === 1, 'the request reaches the model');
      const written = new Promise<void>((resolve) => holding.shift()!(resolve));
      const response = await within(answer, 'the answer\'s headers');
      assert.equal(response.status, 200);
      // Not read yet: the model writes what the buffers take, and the agent pauses it once the tunnel stream is full.
      await Promise.race([written, new Promise((r) => setTimeout(r, 500))]);
      const read = (async () => {
        let bytes = 0;
        for await (const chunk of response.body!) bytes += (chunk as Uint8Array).byteLength;
        return bytes;
      })();
      // 24 MB through the whole path: 31 s alone at load 17, so its deadline is for a hang, not for speed.
      const bytes = await within(read, 'the whole answer read by the client', 120_000);
      await within(written, 'the model server handing its last byte to the kernel');
      assert.ok(bytes > BIG_ANSWER_BYTES, `the whole answer arrived (${bytes} bytes)`);
      await heldBecomes(0, 'the connection is dropped, not kept idle');
    } finally {
      bigAnswer = false;
    }
  });

  test('after a burst, the connections the model server closes while idle are dropped, down to none; then new requests open fresh ones and reuse a warm one', { timeout: 60_000 }, async () => {
    await burst(20);
    assert.equal(await held(), 20, 'idle, still open: held');

    model.closeIdleConnections();
    await heldBecomes(0, 'every idle connection is dropped once the model server closes it');

    const before = modelConnections;
    for (let i = 0; i < 5; i++) await burst(1);
    assert.equal(modelConnections - before, 1, 'sequential requests reuse one warm connection');
    assert.equal(await held(), 1);
  });
});
