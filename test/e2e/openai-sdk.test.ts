// The official openai SDK, unchanged but for base URL and key, through the
// gateway to the demo model.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startHarness, type Harness } from '../helpers/harness.js';

describe('official openai SDK through the gateway', () => {
  let h: Harness;
  let alice: OpenAI;
  before(async () => {
    h = await startHarness();
    alice = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: await h.userToken('alice'), maxRetries: 0 });
  });
  after(() => h.close());

  test('non-streaming chat', async () => {
    const completion = await alice.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'Grüße aus Köln 👋' }] });
    assert.match(completion.choices[0]!.message.content!, /Grüße aus Köln 👋/);
    assert.ok(completion.usage!.total_tokens > 0);
  });

  test('streaming chat, with the usage chunk', async () => {
    const stream = await alice.chat.completions.create({
      model: 'demo-chat',
      messages: [{ role: 'user', content: 'stream please' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    assert.match(text, /stream please/);
    assert.ok(usage && usage.completion_tokens > 0);
  });

  test('an alias routes to its model, and the upstream gets its own name', async () => {
    const completion = await alice.chat.completions.create({ model: 'demo', messages: [{ role: 'user', content: 'alias' }] });
    assert.ok(completion.choices[0]!.message.content);
    assert.equal((h.model.received.at(-1)!.body as { model: string }).model, 'demo-chat');
  });

  test('streamed tool calls reassemble into valid JSON arguments', async () => {
    const stream = await alice.chat.completions.create({
      model: 'demo-chat',
      stream: true,
      messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
    });
    let args = '';
    for await (const chunk of stream) args += chunk.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? '';
    assert.doesNotThrow(() => JSON.parse(args));
  });

  test('embeddings (the SDK asks for base64 and decodes it)', async () => {
    const result = await alice.embeddings.create({ model: 'demo-embed', input: ['one', 'two'] });
    assert.equal(result.data.length, 2);
    assert.ok(result.data[0]!.embedding.length > 0);
    assert.ok(result.data[0]!.embedding.every((x) => Number.isFinite(x)));
  });

  test('legacy completions, streaming', async () => {
    const stream = await alice.completions.create({ model: 'demo-chat', prompt: 'Once upon a time', stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
    assert.ok(text.length > 0);
  });

  test('responses API, streaming typed events', async () => {
    const stream = await alice.responses.create({ model: 'demo-chat', input: 'Say hi', stream: true });
    const types = new Set<string>();
    let text = '';
    for await (const event of stream) {
      types.add(event.type);
      if (event.type === 'response.output_text.delta') text += event.delta;
    }
    assert.ok(types.has('response.completed'));
    assert.ok(text.length > 0);
  });

  test('the client token never reaches the upstream; the gateway injects the connection credential', async () => {
    await alice.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'whoami' }] });
    const seen = h.model.received.at(-1)!;
    assert.equal(seen.headers.authorization, 'Bearer demo-upstream-key');
    assert.ok(seen.headers['x-request-id'], 'request id is forwarded');
  });

  test('every response carries X-Request-Id', async () => {
    const { response } = await alice.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'id' }] }).withResponse();
    assert.match(response.headers.get('x-request-id') ?? '', /^req_[0-9a-f]{32}$/);
  });

  test('GET /v1/models lists only what the caller may use', async () => {
    const aliceModels = (await alice.models.list()).data.map((m) => m.id).sort();
    assert.deepEqual(aliceModels, ['demo-chat', 'demo-embed']);
    const bob = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: await h.userToken('bob'), maxRetries: 0 });
    assert.deepEqual((await bob.models.list()).data.map((m) => m.id), ['demo-embed']);
  });

  test('group-based deny: bob (contractors) may embed but not chat', async () => {
    const bob = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: await h.userToken('bob'), maxRetries: 0 });
    await bob.embeddings.create({ model: 'demo-embed', input: 'ok' });
    await assert.rejects(
      bob.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] }),
      (err: unknown) => {
        assert.ok(err instanceof OpenAI.PermissionDeniedError);
        assert.equal(err.status, 403);
        assert.equal(err.code, 'model_forbidden');
        assert.match(err.message, /bob.*contractors.*demo-chat/);
        return true;
      },
    );
  });

  test('a service account is allowed by its groups', async () => {
    const ci = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: await h.serviceToken('ci-bot'), maxRetries: 0 });
    const completion = await ci.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'from CI' }] });
    assert.ok(completion.choices[0]!.message.content);
    await assert.rejects(ci.embeddings.create({ model: 'demo-embed', input: 'x' }), (err: unknown) => (err as { status?: number }).status === 403);
  });

  test('access by subject', async () => {
    const bySubject = await startHarness({
      configure: (input) => {
        input.access = [{ subjects: ['bob'], connections: ['demo'], models: ['demo-chat'] }];
      },
    });
    try {
      const bob = new OpenAI({ baseURL: `${bySubject.url}/v1`, apiKey: await bySubject.userToken('bob'), maxRetries: 0 });
      assert.ok((await bob.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] })).choices.length);
      const aliceThere = new OpenAI({ baseURL: `${bySubject.url}/v1`, apiKey: await bySubject.userToken('alice'), maxRetries: 0 });
      assert.deepEqual((await aliceThere.models.list()).data, []);
    } finally {
      await bySubject.close();
    }
  });
});
