// Attacks on the gateway's HTTP surface, sent as an attacker would send them
// (raw sockets where a well-behaved client would not produce the bytes), with
// the gateway's own log captured so a test can show what never lands in it.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { errorOf, postJson, startHarness, type Harness } from '../helpers/harness.js';

/** Sends raw bytes (optionally leaving the request unfinished) and resolves with all the server wrote before closing. */
function rawExchange(url: string, bytes: string, options: { end?: boolean } = {}): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(Number(port), hostname, () => (options.end === false ? socket.write(bytes) : socket.end(bytes)));
    let text = '';
    socket.on('data', (d) => (text += d.toString()));
    socket.on('close', () => resolve(text));
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? resolve(text) : reject(err)));
  });
}

const statusOf = (raw: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1]);
const codeOf = (raw: string) => (JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as { error: { code: string } }).error.code;

describe('attacks on the HTTP surface', () => {
  let h: Harness;
  let token: string;
  let host: string;
  const logs: string[] = [];
  before(async () => {
    h = await startHarness({
      logs,
      configure: (input) => {
        input.server = { ...input.server, headers_timeout: '400ms', request_timeout: '1200ms' };
      },
    });
    token = await h.userToken('alice');
    host = new URL(h.url).host;
  });
  after(() => h.close());

  test('two Authorization headers are refused with 400, not resolved first-wins', async () => {
    const other = await h.userToken('bob');
    const raw = await rawExchange(
      h.url,
      `GET /v1/models HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\nAuthorization: Bearer ${other}\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(statusOf(raw), 400, raw);
    assert.equal(codeOf(raw), 'duplicate_authorization');
  });

  test('a token in the query string is never accepted, and the query string never reaches the log', async () => {
    for (const name of ['access_token', 'token', 'api_key']) {
      const response = await fetch(`${h.url}/v1/models?${name}=${token}`);
      assert.equal(response.status, 401, name);
      await response.body?.cancel();
    }
    const requestLines = logs.filter((l) => l.includes('"msg":"request"') && l.includes('/v1/models?'));
    assert.ok(requestLines.length >= 3, 'the requests were logged');
    for (const line of requestLines) assert.match(line, /"path":"\/v1\/models\?\[redacted\]"/);
    assert.ok(!logs.some((l) => l.includes(token)), 'the token appears in no log line');
  });

  test('no token, upstream key or prompt appears in any log line, at debug level', async () => {
    const prompt = 'the quarterly numbers are 7731 and 2209, keep them between us';
    const response = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content: prompt }] });
    assert.equal(response.status, 200);
    const answer = ((await response.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content;
    const stream = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: prompt }] });
    await stream.text();
    const refused = await postJson(`${h.url}/v1/chat/completions`, `${token}x`, { model: 'demo-chat', messages: [{ role: 'user', content: prompt }] });
    assert.equal(refused.status, 401);
    await refused.body?.cancel();
    assert.ok(logs.length > 0);
    const all = logs.join('\n');
    assert.ok(!all.includes(token.split('.')[2]!), 'no token signature');
    assert.ok(!all.includes('demo-upstream-key'), 'no upstream key');
    assert.ok(!all.includes('7731'), 'no prompt text');
    if (answer.length > 20) assert.ok(!all.includes(answer.slice(0, 20)), 'no model output');
  });

  test('an internal error answers a generic 500 with the request ID, and leaks neither message nor stack', async () => {
    const guardrails = h.gateway.services.guardrails;
    const inspect = guardrails.inspect.bind(guardrails);
    guardrails.inspect = () => {
      throw new Error('secret detail: connection string postgres://admin:hunter2@db');
    };
    try {
      const response = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(response.status, 500);
      const requestId = response.headers.get('x-request-id');
      assert.ok(requestId);
      const text = await response.text();
      assert.doesNotMatch(text, /hunter2|secret detail|at .*\.(ts|js):\d+|node:internal/);
      assert.equal((JSON.parse(text) as { error: { code: string } }).error.code, 'internal_error');
      const logged = logs.find((l) => l.includes(requestId) && l.includes('"level":"error"'));
      assert.ok(logged?.includes('secret detail'), 'the detail goes to the log for the operator');
    } finally {
      guardrails.inspect = inspect;
    }
  });

  test('headers over 32 KiB get 431; headers under it are served', async () => {
    const request = (size: number) => `GET /v1/models HTTP/1.1\r\nHost: ${host}\r\nX-Pad: ${'a'.repeat(size)}\r\nConnection: close\r\n\r\n`;
    const big = await rawExchange(h.url, request(40 * 1024));
    assert.equal(statusOf(big), 431, big);
    assert.equal(codeOf(big), 'headers_too_large');
    const fits = await rawExchange(h.url, request(24 * 1024));
    assert.equal(statusOf(fits), 401, 'read and answered (no token)');
  });

  test('headers that never finish are cut with 408 (slowloris)', { timeout: 20_000 }, async () => {
    const raw = await rawExchange(h.url, `GET /v1/models HTTP/1.1\r\nHost: ${host}\r\nX-Slow: a`, { end: false });
    assert.equal(statusOf(raw), 408, raw);
    assert.equal(codeOf(raw), 'request_timeout');
  });

  test('a body that never finishes is cut (slow body) and nothing reaches the model', { timeout: 20_000 }, async () => {
    const before = h.model.received.length;
    const raw = await rawExchange(
      h.url,
      `POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model":"demo-chat",`,
      { end: false },
    );
    assert.equal(statusOf(raw), 408, raw);
    assert.equal(h.model.received.length, before);
  });

  test("an upstream error body that echoes the request headers reaches the client without the connection's key", async () => {
    const echoes: unknown[] = [
      { error: { message: 'invalid request; headers: {"authorization":"Bearer demo-upstream-key"}', type: 'invalid_request_error' } },
      'bad request. authorization: Bearer demo-upstream-key, x-api-key: demo-upstream-key',
    ];
    for (const [i, body] of echoes.entries()) {
      h.model.setFault({ kind: 'status', status: i === 0 ? 400 : 500, body }, { times: 1, path: '/v1/chat/completions' });
      const response = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(response.status, i === 0 ? 400 : 500);
      const text = await response.text();
      assert.doesNotMatch(text, /demo-upstream-key/, text);
      assert.match(text, /\[redacted\]/, 'the rest of the message is kept');
    }
  });

  describe('deeply nested JSON', () => {
    const chat = (content: unknown) => ({ model: 'demo-chat', messages: [{ role: 'user', content }] });
    const nested = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);

    test('2 million levels (4 MB) are refused with 400 json_too_deep before they are parsed', async () => {
      const response = await postJson(`${h.url}/v1/chat/completions`, token, nested(2_000_000));
      assert.equal(response.status, 400);
      assert.equal((await errorOf(response)).code, 'json_too_deep');
    });

    test('the limit is 64 levels by default: 65 refused, 64 read', async () => {
      // {"model":…,"messages":[{…,"content":[[…]]}]} puts the content array at depth 4.
      const at = (depth: number) => `{"model":"demo-chat","messages":[{"role":"user","content":${nested(depth - 3)}}]}`;
      const deep = await postJson(`${h.url}/v1/chat/completions`, token, at(65));
      assert.equal((await errorOf(deep)).code, 'json_too_deep');
      const fits = await postJson(`${h.url}/v1/chat/completions`, token, at(64));
      assert.notEqual((await errorOf(fits)).code, 'json_too_deep', 'read, then refused for its content shape');
    });

    test('brackets inside strings (also after escaped quotes) do not count', async () => {
      const response = await postJson(`${h.url}/v1/chat/completions`, token, chat(`\\"${nested(500)} {{{{ and ${'['.repeat(200)}`));
      assert.equal(response.status, 200);
      await response.body?.cancel();
    });
  });
});
