// The agent asks its model server only once a request's whole body has come
// through the tunnel. undici writes a request with a streamed body when its
// first chunk is there, so a connection opened at once sat idle in the model
// server's eyes while a gateway running behind sent the body: node's server
// answered 408 after its headers timeout (248 of 5,000 soak streams), and a
// kept-alive connection could be closed as idle ("other side closed").
// The gateway here is a bare HTTP/2 client on the agent's upgraded socket,
// so the body can come late on purpose.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { HEADER } from '../../src/agent/protocol.js';
import { startAgentOnBareGateway } from './helpers.js';

/** The model server's headers timeout, and the body's delay: longer. */
const HEADERS_TIMEOUT_MS = 1_000;
const BODY_DELAY_MS = 2_500;

let model: http.Server;
let modelConnections = 0;
let bare: Awaited<ReturnType<typeof startAgentOnBareGateway>>;
let tunnel: typeof bare.tunnel;

before(async () => {
  model = http.createServer({ headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: HEADERS_TIMEOUT_MS * 2, connectionsCheckingInterval: 100 }, (req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d));
    req.on('end', () => res.end(JSON.stringify({ got: body })));
  });
  model.on('connection', () => modelConnections++);
  await new Promise<void>((r) => model.listen(0, '127.0.0.1', r));

  bare = await startAgentOnBareGateway(model);
  tunnel = bare.tunnel;
});
after(() => bare.close());

test("a body that comes late through the tunnel: the model server is not asked until it is here, and answers it", { timeout: 60_000 }, async () => {
  const session = await tunnel;
  const stream = session.request({ ':method': 'POST', ':path': '/v1/chat/completions', [HEADER.connection]: 'demo', 'content-type': 'application/json' }, { endStream: false });
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    let body = '';
    stream.on('response', (headers) => {
      stream.on('data', (d: Buffer) => (body += d));
      stream.on('end', () => resolve({ status: Number(headers[':status']), body }));
    });
    stream.on('error', reject);
  });
  await new Promise((r) => setTimeout(r, BODY_DELAY_MS));
  assert.equal(modelConnections, 0, 'no connection to the model server while the body is on its way');
  stream.end('{"messages":[]}');
  assert.deepEqual(await answer, { status: 200, body: JSON.stringify({ got: '{"messages":[]}' }) });
});
