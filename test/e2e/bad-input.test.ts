// Every kind of bad input gets an OpenAI-style JSON error with the right
// status, never a stack trace, and never a request to the model.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { errorOf, postJson, startHarness, type Harness } from '../helpers/harness.js';

const chat = { model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] };

/** Sends raw bytes and returns the raw response text. */
function rawRequest(url: string, bytes: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.end(bytes));
    let text = '';
    socket.on('data', (d) => (text += d.toString()));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

describe('bad input', () => {
  let h: Harness;
  let token: string;
  before(async () => {
    h = await startHarness({
      configure: (input) => {
        input.server = { ...input.server, max_body_bytes: '64kb' };
      },
    });
    token = await h.userToken('alice');
  });
  after(() => h.close());

  async function expectError(response: Response, status: number, code: string): Promise<string> {
    assert.equal(response.status, status);
    assert.match(response.headers.get('content-type') ?? '', /application\/json/);
    assert.ok(response.headers.get('x-request-id'));
    const text = await response.text();
    assert.doesNotMatch(text, /at .*\.(ts|js):\d+|node:internal|Error: /, 'no stack trace leaks');
    const error = (JSON.parse(text) as { error: { code: string; message: string; type: string } }).error;
    assert.equal(error.code, code);
    assert.ok(error.message.length > 10);
    assert.ok(error.type);
    return error.message;
  }

  test('malformed JSON', { timeout: 60_000 }, async () => {
    const message = await expectError(await postJson(`${h.url}/v1/chat/completions`, token, '{"model": "demo-chat",'), 400, 'invalid_json');
    assert.match(message, /not valid JSON/);
  });

  test('empty body', { timeout: 60_000 }, async () => {
    await expectError(await postJson(`${h.url}/v1/chat/completions`, token, ''), 400, 'invalid_json');
  });

  test('JSON that is not an object', { timeout: 60_000 }, async () => {
    await expectError(await postJson(`${h.url}/v1/chat/completions`, token, '[1,2]'), 400, 'invalid_body');
  });

  test('wrong content type', { timeout: 60_000 }, async () => {
    const response = await fetch(`${h.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' },
      body: JSON.stringify(chat),
    });
    const message = await expectError(response, 415, 'unsupported_media_type');
    assert.match(message, /application\/json/);
  });

  test('oversized body, declared by Content-Length', { timeout: 60_000 }, async () => {
    const big = { ...chat, messages: [{ role: 'user', content: 'x'.repeat(100 * 1024) }] };
    const message = await expectError(await postJson(`${h.url}/v1/chat/completions`, token, big), 413, 'request_too_large');
    assert.match(message, /65536 bytes/);
  });

  test('oversized body, sent chunked with no Content-Length', { timeout: 60_000 }, async () => {
    const body = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 20; i++) controller.enqueue(new TextEncoder().encode('x'.repeat(8 * 1024)));
        controller.close();
      },
    });
    const response = await fetch(`${h.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body,
      duplex: 'half',
    } as RequestInit);
    await expectError(response, 413, 'request_too_large');
  });

  test('missing model', { timeout: 60_000 }, async () => {
    await expectError(await postJson(`${h.url}/v1/chat/completions`, token, { messages: chat.messages }), 400, 'missing_model');
  });

  test('invalid messages', { timeout: 60_000 }, async () => {
    await expectError(await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: 'hi' }), 400, 'invalid_messages');
  });

  test('unknown model', { timeout: 60_000 }, async () => {
    const message = await expectError(await postJson(`${h.url}/v1/chat/completions`, token, { ...chat, model: 'gpt-17' }), 404, 'model_not_found');
    assert.match(message, /\/v1\/models/);
  });

  test('unknown endpoint and wrong method', { timeout: 60_000 }, async () => {
    await expectError(await fetch(`${h.url}/v1/nope`), 404, 'unknown_endpoint');
    const wrong = await fetch(`${h.url}/v1/chat/completions`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(wrong.headers.get('allow'), 'POST');
    await expectError(wrong, 405, 'method_not_allowed');
  });

  test('Ollama API against an OpenAI-only connection', { timeout: 60_000 }, async () => {
    const openAiOnly = await startHarness({
      configure: (input) => {
        input.connections[0]!.kind = 'openai';
      },
    });
    try {
      // Ollama's error shape: the message as a string, the stable code in a header.
      const response = await postJson(`${openAiOnly.url}/api/chat`, await openAiOnly.userToken('alice'), chat);
      assert.equal(response.status, 400);
      assert.equal(response.headers.get('x-modelgate-error-code'), 'protocol_not_supported');
      assert.match(((await response.json()) as { error: string }).error, /does not speak the Ollama API/);
    } finally {
      await openAiOnly.close();
    }
  });

  test('none of the refused requests reached the model', () => {
    assert.equal(h.model.received.length, 0);
  });

  test('request smuggling: Content-Length together with Transfer-Encoding is refused', { timeout: 60_000 }, async () => {
    const body = JSON.stringify(chat);
    const text = await rawRequest(
      h.url,
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n`,
    );
    assert.match(text, /^HTTP\/1\.1 400/);
    assert.doesNotMatch(text, /"status":"ok"/, 'the smuggled request was not served');
  });

  test('request smuggling: obsolete line folding is refused', { timeout: 60_000 }, async () => {
    const text = await rawRequest(h.url, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n`);
    assert.match(text, /^HTTP\/1\.1 400/);
  });
});

describe('upstream failures', () => {
  let h: Harness;
  let token: string;
  before(async () => {
    h = await startHarness({
      configure: (input) => {
        input.connections[0]!.timeouts = { response_headers: '300ms', idle: '300ms', connect: '1s' };
      },
    });
    token = await h.userToken('alice');
  });
  after(() => h.close());

  test('unreachable upstream → 502', { timeout: 60_000 }, async () => {
    const dead = await startHarness({
      configure: (input) => {
        input.connections[0]!.url = 'http://127.0.0.1:1';
      },
    });
    try {
      const response = await postJson(`${dead.url}/v1/chat/completions`, await dead.userToken('alice'), chat);
      assert.equal(response.status, 502);
      const error = await errorOf(response);
      assert.equal(error.code, 'upstream_unreachable');
      assert.match(error.message, /connection "demo"/);
    } finally {
      await dead.close();
    }
  });

  test('upstream timeout → 504', { timeout: 60_000 }, async () => {
    h.model.setFault({ kind: 'hang' }, { times: 1 });
    const response = await postJson(`${h.url}/v1/chat/completions`, token, chat);
    assert.equal(response.status, 504);
    assert.equal((await errorOf(response)).code, 'upstream_timeout');
  });

  test('upstream error status is passed on as an OpenAI-style error', { timeout: 60_000 }, async () => {
    h.model.setFault({ kind: 'status', status: 400, body: { error: { message: 'context too long', type: 'invalid_request_error', code: 'context_length_exceeded' } } }, { times: 1 });
    const response = await postJson(`${h.url}/v1/chat/completions`, token, chat);
    assert.equal(response.status, 400);
    assert.equal((await errorOf(response)).code, 'context_length_exceeded');

    h.model.setFault({ kind: 'status', status: 500, body: 'boom' }, { times: 1 });
    const broken = await postJson(`${h.url}/v1/chat/completions`, token, chat);
    assert.equal(broken.status, 500);
    assert.equal((await errorOf(broken)).code, 'upstream_http_500');
  });

  test("upstream refusing the gateway's credential is the operator's problem → 502", { timeout: 60_000 }, async () => {
    h.model.setFault({ kind: 'status', status: 401, body: { error: { message: 'bad key' } } }, { times: 1 });
    const response = await postJson(`${h.url}/v1/chat/completions`, token, chat);
    assert.equal(response.status, 502);
    assert.equal((await errorOf(response)).code, 'upstream_auth_failed');
  });

  test('upstream closing the connection without answering → 502', { timeout: 60_000 }, async () => {
    h.model.setFault({ kind: 'reset_before_response' }, { times: 1 });
    const response = await postJson(`${h.url}/v1/chat/completions`, token, chat);
    assert.equal(response.status, 502);
    assert.equal((await errorOf(response)).code, 'upstream_unreachable');
  });
});
