// Protocol coverage through a running gateway: the demo model answers with
// each published shape (test/helpers/output-shapes.ts), an entity in every
// string field, streamed (split across frames) and not; the client receives
// it masked. Also: upstream error bodies are masked, and the request
// parameters that ask for token ids or logprobs never reach the model.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  assertStreamMasked,
  BODY_SHAPES,
  decodeWire,
  ENTITY,
  leaks,
  removedLeft,
  seededFrames,
  seedEverywhere,
  STREAM_SHAPES,
  visibleStrings,
  wireOf,
  type StreamShape,
} from '../helpers/output-shapes.js';
import { postJson, startHarness, type Harness } from '../helpers/harness.js';

const REQUESTS: Record<StreamShape['operation'], { path: string; body: Record<string, unknown> }> = {
  chat: { path: '/v1/chat/completions', body: { model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] } },
  completion: { path: '/v1/completions', body: { model: 'demo-chat', prompt: 'hi' } },
  response: { path: '/v1/responses', body: { model: 'demo-chat', input: 'hi' } },
  ollama_chat: { path: '/api/chat', body: { model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] } },
  ollama_generate: { path: '/api/generate', body: { model: 'demo-chat', prompt: 'hi' } },
};

describe('protocol coverage through the gateway: every string field of every shape reaches the client masked', () => {
  let h: Harness;
  let token: string;
  before(async () => {
    h = await startHarness({
      configure: (input) => {
        input.guardrails = { output: [{ name: 'mask-email-out', mask: { types: ['EMAIL'], strategy: 'placeholder' } }] };
      },
    });
    token = await h.userToken('alice');
  });
  after(() => h.close());

  const call = (operation: StreamShape['operation'], stream: boolean, extra: Record<string, unknown> = {}): Promise<Response> =>
    postJson(`${h.url}${REQUESTS[operation].path}`, token, { ...REQUESTS[operation].body, stream, ...extra });

  for (const shape of STREAM_SHAPES) {
    test(`streamed: ${shape.name}`, async () => {
      const sent = seededFrames(shape);
      const ndjson = shape.operation.startsWith('ollama');
      // Split every 5 bytes on the wire as well, so frames reach the gateway in pieces.
      const wire = wireOf(shape.operation, sent);
      const writes = Array.from({ length: Math.ceil(wire.length / 5) }, (_, i) => wire.slice(i * 5, i * 5 + 5));
      h.model.setFault({ kind: 'raw', contentType: ndjson ? 'application/x-ndjson' : 'text/event-stream', writes }, { times: 1 });
      const response = await call(shape.operation, true);
      assert.equal(response.status, 200);
      assertStreamMasked(shape, sent, decodeWire(ndjson ? 'ndjson' : 'sse', await response.text()));
    });
  }

  for (const shape of BODY_SHAPES) {
    test(`not streamed: ${shape.name}`, async () => {
      h.model.setFault({ kind: 'raw', contentType: 'application/json', writes: [JSON.stringify(seedEverywhere(shape.body))] }, { times: 1 });
      const response = await call(shape.operation, false);
      assert.equal(response.status, 200);
      const body: unknown = await response.json();
      assert.deepEqual(leaks(visibleStrings(body)), []);
      assert.deepEqual(removedLeft(body), []);
      assert.ok(JSON.stringify(body).includes('[EMAIL_1]'));
    });
  }

  for (const [status, body] of [
    [400, { error: { message: `No account for ${ENTITY}`, type: 'invalid_request_error', param: `messages ${ENTITY}`, code: 'bad' } }],
    [500, `Traceback: user ${ENTITY} not found`],
    [404, { error: `model for ${ENTITY} not found` }],
  ] as const) {
    test(`an upstream HTTP ${status} error body is masked like a response`, async () => {
      h.model.setFault({ kind: 'status', status, body }, { times: 1 });
      const response = await call('chat', false);
      assert.equal(response.status, status);
      const text = await response.text();
      assert.ok(!text.includes('jane') && !text.includes('example.com'), text);
      assert.match(text, /\[EMAIL_1\]/);
    });
  }

  test('parameters asking for token ids or logprobs are stripped before the request reaches the model', async () => {
    const before = h.model.received.length;
    const response = await call('chat', false, { logprobs: true, top_logprobs: 5, return_token_ids: true, prompt_logprobs: 1, return_tokens_as_token_ids: true });
    assert.equal(response.status, 200);
    await response.text();
    const responses = await call('response', false, { include: ['message.output_text.logprobs', 'reasoning.encrypted_content'], top_logprobs: 3 });
    await responses.text();
    const [chat, resp] = h.model.received.slice(before).map((r) => r.body as Record<string, unknown>);
    for (const key of ['logprobs', 'top_logprobs', 'return_token_ids', 'prompt_logprobs', 'return_tokens_as_token_ids']) assert.ok(!(key in chat!), `${key} stripped`);
    assert.deepEqual(resp!.include, ['reasoning.encrypted_content']);
    assert.ok(!('top_logprobs' in resp!));
    // The session records the body the model received, not the one the client sent.
    await h.gateway.services.audit!.recorder.flush();
    const recorded = await h.gateway.services.audit!.archive.show(response.headers.get('x-request-id')!);
    assert.deepEqual(recorded?.forwarded?.body, chat, 'the forwarded record is what reached the model');
  });
});
