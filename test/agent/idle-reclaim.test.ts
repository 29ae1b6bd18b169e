// The agent gives memory back after a burst as the gateway does
// (ops/idle-reclaim.ts): once no stream has been open for its quiet time,
// after traffic that grew RSS. The model server here holds 64 MB while it
// answers, so the agent's process grows past the reclaim's threshold.
// The gateway is a bare HTTP/2 client on the agent's upgraded socket.
import assert from 'node:assert/strict';
import http from 'node:http';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { HEADER } from '../../src/agent/protocol.js';
import { createLogger } from '../../src/ops/logger.js';
import { startAgentOnBareGateway } from './helpers.js';

let model: http.Server;
let bare: Awaited<ReturnType<typeof startAgentOnBareGateway>>;
let tunnel: typeof bare.tunnel;
let ballast: Buffer | undefined;
const logLines: string[] = [];

before(async () => {
  model = http.createServer((_req, res) => {
    // Touched memory (alloc zero-fills it), held until the test has seen the reclaim.
    ballast = Buffer.alloc(64 * 2 ** 20, 1);
    res.end('{"ok":true}');
  });
  await new Promise<void>((r) => model.listen(0, '127.0.0.1', r));
  const logs = new PassThrough();
  logs.setEncoding('utf8').on('data', (line: string) => logLines.push(line));
  bare = await startAgentOnBareGateway(model, { log: createLogger('info', logs), idleReclaimMs: 200 });
  tunnel = bare.tunnel;
});
after(() => bare.close());

test('once the streams of a burst that grew RSS have ended, the agent gives memory back and says what it gave', { timeout: 60_000 }, async () => {
  const session = await tunnel;
  const stream = session.request({ ':method': 'POST', ':path': '/v1/chat/completions', [HEADER.connection]: 'demo', 'content-type': 'application/json' });
  stream.end('{}');
  let answer = '';
  stream.setEncoding('utf8').on('data', (d: string) => (answer += d));
  await new Promise((r) => stream.once('close', r));
  assert.equal(answer, '{"ok":true}');
  const deadline = Date.now() + 20_000;
  while (!logLines.some((l) => l.includes('idle after a burst: memory given back')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  ballast = undefined;
  const line = logLines.find((l) => l.includes('idle after a burst'));
  assert.ok(line, `no reclaim logged; the agent logged:\n${logLines.join('')}`);
  const logged = JSON.parse(line) as { rssMb: number[]; heapCollection: { how: string } };
  assert.equal(logged.rssMb.length, 2);
  assert.ok(logged.heapCollection.how, 'the heap collection says how it ran');
});
