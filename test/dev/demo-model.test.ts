import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startDemoModel, type DemoModel, type DemoModelOptions } from '../../src/dev/demo-model.js';

const API_KEY = 'upstream-test-key';
const GERMAN = 'Grüße aus München 👋';

function sdk(model: DemoModel, apiKey = API_KEY): OpenAI {
  return new OpenAI({ baseURL: `${model.url}/v1`, apiKey, maxRetries: 0 });
}

async function withModel(options: DemoModelOptions, run: (model: DemoModel) => Promise<void>): Promise<void> {
  const model = await startDemoModel(options);
  try {
    await run(model);
  } finally {
    await model.close();
  }
}

/** Polls a condition; used to know the upstream has seen a request before the client gives up on it. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

async function ndjsonLines(response: Response): Promise<Array<Record<string, unknown>>> {
  const text = await response.text();
  assert.ok(text.endsWith('\n'), 'NDJSON ends with a newline');
  return text.trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
}

const weatherTool = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['city', 'unit'],
    },
  },
};

describe('demo model, OpenAI wire format through the official SDK', () => {
  let model: DemoModel;
  let client: OpenAI;
  before(async () => {
    model = await startDemoModel({ apiKey: API_KEY });
    client = sdk(model);
  });
  after(() => model.close());

  test('lists models in the OpenAI list format', async () => {
    const ids: string[] = [];
    for await (const entry of client.models.list()) ids.push(entry.id);
    assert.deepEqual(ids, ['demo-chat', 'demo-embed']);
  });

  test('chat completion: friendly reply that echoes non-ASCII input, with usage', async () => {
    const completion = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: GERMAN }] });
    assert.equal(completion.object, 'chat.completion');
    const content = completion.choices[0]?.message.content ?? '';
    assert.match(content, /modelgate demo model/);
    assert.ok(content.includes(`"${GERMAN}"`), content);
    assert.equal(completion.choices[0]?.finish_reason, 'stop');
    assert.ok(completion.usage && completion.usage.total_tokens === completion.usage.prompt_tokens + completion.usage.completion_tokens);

    const seen = model.received.at(-1);
    assert.equal(seen?.path, '/v1/chat/completions');
    assert.equal(seen?.headers.authorization, `Bearer ${API_KEY}`);
    assert.deepEqual((seen?.body as { messages: unknown }).messages, [{ role: 'user', content: GERMAN }]);
  });

  test('chat completion honours n and max_tokens', async () => {
    const completion = await client.chat.completions.create({
      model: 'demo-chat',
      n: 3,
      max_tokens: 2,
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.deepEqual(completion.choices.map((choice) => choice.index), [0, 1, 2]);
    for (const choice of completion.choices) {
      assert.equal(choice.finish_reason, 'length');
      assert.equal(choice.message.content?.split(' ').length, 2);
    }
  });

  test('chat streaming: role first, one delta per word, finish_reason, usage chunk, [DONE]', async () => {
    const messages = [{ role: 'user' as const, content: GERMAN }];
    const whole = await client.chat.completions.create({ model: 'demo-chat', messages });
    const stream = await client.chat.completions.create({ model: 'demo-chat', messages, stream: true, stream_options: { include_usage: true } });
    const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);

    assert.equal(chunks[0]?.choices[0]?.delta.role, 'assistant');
    const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
    assert.equal(text, whole.choices[0]?.message.content);
    const contentChunks = chunks.filter((chunk) => chunk.choices[0]?.delta.content);
    assert.equal(contentChunks.length, text.split(' ').length);
    assert.equal(chunks.at(-2)?.choices[0]?.finish_reason, 'stop');
    const usageChunk = chunks.at(-1);
    assert.deepEqual(usageChunk?.choices, []);
    assert.equal(usageChunk?.usage?.completion_tokens, contentChunks.length);
    assert.ok(chunks.every((chunk) => chunk.object === 'chat.completion.chunk' && chunk.id === chunks[0]?.id));
  });

  test('chat streaming without include_usage has no usage chunk', async () => {
    const stream = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'hello' }], stream: true });
    const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.ok(chunks.every((chunk) => chunk.choices.length === 1 && !('usage' in chunk)));
  });

  test('tool call: non-streaming message.tool_calls', async () => {
    const completion = await client.chat.completions.create({
      model: 'demo-chat',
      tools: [weatherTool],
      messages: [{ role: 'user', content: 'What is the weather in São Paulo?' }],
    });
    const choice = completion.choices[0];
    assert.equal(choice?.finish_reason, 'tool_calls');
    const call = choice?.message.tool_calls?.[0];
    assert.ok(call && call.type === 'function');
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: 'São Paulo', unit: 'celsius' });
  });

  test('tool call streaming reassembles into valid JSON arguments', async () => {
    const request = {
      model: 'demo-chat',
      tools: [weatherTool],
      messages: [{ role: 'user' as const, content: "How's the weather in Zürich today?" }],
    };
    // By hand, the way a client accumulates deltas.
    const stream = await client.chat.completions.create({ ...request, stream: true });
    let name = '';
    let id = '';
    let args = '';
    let fragments = 0;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      for (const delta of choice?.delta.tool_calls ?? []) {
        assert.equal(delta.index, 0);
        if (delta.id) id = delta.id;
        if (delta.function?.name) name = delta.function.name;
        if (delta.function?.arguments) {
          args += delta.function.arguments;
          fragments++;
        }
      }
      finish = choice?.finish_reason ?? finish;
    }
    assert.match(id, /^call_/);
    assert.equal(name, 'get_weather');
    assert.ok(fragments > 1, 'arguments arrive in several fragments');
    assert.deepEqual(JSON.parse(args), { city: 'Zürich', unit: 'celsius' });
    assert.equal(finish, 'tool_calls');

    // And through the SDK's own stream helper, which validates the chunk sequence.
    const final = await client.chat.completions.stream(request).finalChatCompletion();
    assert.deepEqual(JSON.parse(final.choices[0]?.message.tool_calls?.[0]?.type === 'function' ? final.choices[0].message.tool_calls[0].function.arguments : ''), {
      city: 'Zürich',
      unit: 'celsius',
    });
  });

  test('tools without a weather question get a normal reply', async () => {
    const completion = await client.chat.completions.create({ model: 'demo-chat', tools: [weatherTool], messages: [{ role: 'user', content: 'tell me a joke' }] });
    assert.equal(completion.choices[0]?.finish_reason, 'stop');
    assert.equal(completion.choices[0]?.message.tool_calls, undefined);
  });

  test('completions: text_completion objects, streaming ends with [DONE]', async () => {
    const completion = await client.completions.create({ model: 'demo-chat', prompt: ['first prompt', 'second'] });
    assert.equal(completion.object, 'text_completion');
    assert.deepEqual(completion.choices.map((choice) => choice.index), [0, 1]);
    assert.ok(completion.choices[0]?.text.includes('"first prompt"'));
    assert.ok(completion.usage);

    const stream = await client.completions.create({ model: 'demo-chat', prompt: GERMAN, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let finish: string | null | undefined;
    let usage;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'text_completion');
      text += chunk.choices[0]?.text ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    assert.ok(text.includes(GERMAN));
    assert.equal(finish, 'stop');
    assert.ok(usage && usage.completion_tokens > 0);
  });

  test('embeddings: SDK default base64 decodes to the same vector as float', async () => {
    const viaBase64 = await client.embeddings.create({ model: 'demo-embed', input: ['alpha', GERMAN] });
    assert.equal(model.received.at(-1)?.body && (model.received.at(-1)?.body as { encoding_format?: string }).encoding_format, 'base64');
    const viaFloat = await client.embeddings.create({ model: 'demo-embed', input: ['alpha', GERMAN], encoding_format: 'float' });
    assert.equal(viaBase64.data.length, 2);
    for (const [index, item] of viaBase64.data.entries()) {
      assert.equal(item.index, index);
      assert.equal(item.embedding.length, 16);
      assert.deepEqual(item.embedding, viaFloat.data[index]?.embedding);
    }
    assert.notDeepEqual(viaFloat.data[0]?.embedding, viaFloat.data[1]?.embedding);
    const norm = Math.hypot(...(viaFloat.data[0]?.embedding ?? []));
    assert.ok(Math.abs(norm - 1) < 1e-5, 'vectors are unit length');
    assert.ok(viaFloat.usage.prompt_tokens > 0);

    const again = await client.embeddings.create({ model: 'demo-embed', input: 'alpha', encoding_format: 'float', dimensions: 40 });
    assert.equal(again.data[0]?.embedding.length, 40);
  });

  test('responses: non-streaming output_text', async () => {
    const response = await client.responses.create({ model: 'demo-chat', input: GERMAN, instructions: 'be nice' });
    assert.equal(response.object, 'response');
    assert.equal(response.status, 'completed');
    assert.ok(response.output_text.includes(GERMAN));
    assert.equal(response.instructions, 'be nice');
    assert.ok(response.usage && response.usage.output_tokens > 0);
  });

  test('responses streaming: typed events with increasing sequence numbers', async () => {
    const stream = await client.responses.create({
      model: 'demo-chat',
      input: [{ role: 'user', content: [{ type: 'input_text', text: GERMAN }] }],
      stream: true,
    });
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    const types = events.map((event) => event.type);
    assert.equal(types[0], 'response.created');
    assert.equal(types.at(-1), 'response.completed');
    assert.ok(types.includes('response.output_text.done'));
    assert.deepEqual(events.map((event) => event.sequence_number), events.map((_, index) => index));
    const deltas = events.flatMap((event) => (event.type === 'response.output_text.delta' ? [event.delta] : []));
    const done = events.find((event) => event.type === 'response.output_text.done');
    assert.ok(deltas.length > 1);
    assert.equal(deltas.join(''), done?.type === 'response.output_text.done' ? done.text : undefined);

    // The SDK's accumulating helper checks that items and parts were announced before their deltas.
    const final = await client.responses.stream({ model: 'demo-chat', input: 'hi' }).finalResponse();
    assert.ok(final.output_text.includes('"hi"'));
  });

  test('unknown model: 404 model_not_found', async () => {
    await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }), (err: unknown) => {
      assert.ok(err instanceof OpenAI.NotFoundError);
      assert.equal(err.code, 'model_not_found');
      assert.equal(err.type, 'invalid_request_error');
      return true;
    });
  });

  test('malformed JSON is a 400 and unknown paths are 404, both OpenAI-style', async () => {
    const headers = { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' };
    const bad = await fetch(`${model.url}/v1/chat/completions`, { method: 'POST', headers, body: '{"model":' });
    assert.equal(bad.status, 400);
    const badBody = (await bad.json()) as { error: { type: string; message: string } };
    assert.equal(badBody.error.type, 'invalid_request_error');
    assert.equal(model.received.at(-1)?.body, '{"model":');

    const missing = await fetch(`${model.url}/v1/nothing-here`, { headers });
    assert.equal(missing.status, 404);
    assert.ok(((await missing.json()) as { error: { message: string } }).error.message.includes('/v1/nothing-here'));
  });

  test('health answers 200', async () => {
    const response = await fetch(`${model.url}/health`);
    assert.equal(response.status, 200);
  });
});

describe('demo model, Ollama native API', () => {
  let model: DemoModel;
  before(async () => {
    model = await startDemoModel();
  });
  after(() => model.close());
  const post = (path: string, body: unknown): Promise<Response> =>
    fetch(`${model.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  test('/api/chat streams NDJSON by default', async () => {
    const response = await post('/api/chat', { model: 'demo-chat', messages: [{ role: 'user', content: GERMAN }] });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'application/x-ndjson');
    assert.equal(response.headers.get('content-length'), null);
    const lines = await ndjsonLines(response);
    const last = lines.at(-1)!;
    const partial = lines.slice(0, -1);
    assert.ok(partial.length > 1);
    for (const line of partial) {
      assert.equal(line.done, false);
      assert.equal(line.model, 'demo-chat');
      assert.equal(typeof line.created_at, 'string');
      assert.equal((line.message as { role: string }).role, 'assistant');
    }
    const text = partial.map((line) => (line.message as { content: string }).content).join('');
    assert.ok(text.includes(GERMAN));
    assert.equal(last.done, true);
    assert.equal(last.done_reason, 'stop');
    assert.equal(last.eval_count, partial.length);
    for (const field of ['total_duration', 'load_duration', 'prompt_eval_count', 'prompt_eval_duration', 'eval_duration']) {
      assert.equal(typeof last[field], 'number', field);
    }
  });

  test('/api/chat with stream:false answers one JSON object', async () => {
    const response = await post('/api/chat', { model: 'demo-chat:latest', stream: false, messages: [{ role: 'user', content: 'hi' }] });
    const body = (await response.json()) as { model: string; done: boolean; message: { content: string } };
    assert.equal(body.model, 'demo-chat:latest');
    assert.equal(body.done, true);
    assert.match(body.message.content, /modelgate demo model.*"hi"/);
  });

  test('/api/chat tool call', async () => {
    const response = await post('/api/chat', {
      model: 'demo-chat',
      stream: false,
      tools: [weatherTool],
      messages: [{ role: 'user', content: 'weather in Oslo please' }],
    });
    const body = (await response.json()) as { message: { tool_calls: Array<{ function: { name: string; arguments: unknown } }> } };
    assert.deepEqual(body.message.tool_calls, [{ function: { name: 'get_weather', arguments: { city: 'Oslo', unit: 'celsius' } } }]);
  });

  test('/api/generate streams and answers once', async () => {
    const lines = await ndjsonLines(await post('/api/generate', { model: 'demo-chat', prompt: GERMAN }));
    assert.ok(lines.slice(0, -1).map((line) => line.response).join('').includes(GERMAN));
    assert.equal(lines.at(-1)?.done, true);
    assert.ok(Array.isArray(lines.at(-1)?.context));

    const single = (await (await post('/api/generate', { model: 'demo-chat', prompt: 'x', stream: false })).json()) as { response: string; done: boolean };
    assert.equal(single.done, true);
    assert.match(single.response, /"x"/);
  });

  test('/api/tags, /api/version and the Ollama-style unknown model error', async () => {
    const tags = (await (await fetch(`${model.url}/api/tags`)).json()) as { models: Array<{ name: string }> };
    assert.deepEqual(tags.models.map((entry) => entry.name), ['demo-chat:latest', 'demo-embed:latest']);
    const version = (await (await fetch(`${model.url}/api/version`)).json()) as { version: string };
    assert.equal(typeof version.version, 'string');
    const missing = await post('/api/chat', { model: 'llama9', messages: [] });
    assert.equal(missing.status, 404);
    assert.match(((await missing.json()) as { error: string }).error, /llama9/);
  });
});

describe('demo model, API key enforcement', () => {
  test('requires the configured bearer key, except on /health', () =>
    withModel({ apiKey: API_KEY }, async (model) => {
      await assert.rejects(sdk(model, 'wrong-key').models.list(), (err: unknown) => err instanceof OpenAI.AuthenticationError);
      const bare = await fetch(`${model.url}/v1/models`);
      assert.equal(bare.status, 401);
      assert.equal(((await bare.json()) as { error: { code: string } }).error.code, 'invalid_api_key');
      const ollama = await fetch(`${model.url}/api/tags`);
      assert.equal(ollama.status, 401);
      assert.equal((await fetch(`${model.url}/health`)).status, 200);
      const ok = await sdk(model).models.list();
      assert.equal(ok.data.length, 2);
    }));
});

describe('demo model, faults', () => {
  const chat = { model: 'demo-chat', messages: [{ role: 'user' as const, content: GERMAN }] };

  test('status: answers with the status and body for `times` requests', () =>
    withModel({}, async (model) => {
      const client = sdk(model);
      model.setFault({ kind: 'status', status: 503, body: { error: { message: 'overloaded', type: 'server_error' } } }, { times: 1 });
      await assert.rejects(client.chat.completions.create(chat), (err: unknown) => {
        assert.ok(err instanceof OpenAI.APIError);
        assert.equal(err.status, 503);
        assert.match(err.message, /overloaded/);
        return true;
      });
      const completion = await client.chat.completions.create(chat);
      assert.equal(completion.choices.length, 1);
    }));

  test('a fault scoped to a path leaves other paths alone', () =>
    withModel({}, async (model) => {
      model.setFault({ kind: 'status', status: 500 }, { path: '/v1/chat/completions' });
      assert.equal((await fetch(`${model.url}/health`)).status, 200);
      await assert.rejects(sdk(model).chat.completions.create(chat), (err: unknown) => err instanceof OpenAI.InternalServerError);
      model.setFault(null);
      await sdk(model).chat.completions.create(chat);
    }));

  test('hang: never answers; the client giving up is recorded as an abort', () =>
    withModel({}, async (model) => {
      model.setFault({ kind: 'hang' });
      const controller = new AbortController();
      const pending = sdk(model).chat.completions.create(chat, { signal: controller.signal });
      await until(() => model.received.length === 1);
      controller.abort();
      await assert.rejects(pending, (err: unknown) => err instanceof OpenAI.APIUserAbortError);
      const aborted = await model.waitForAbort();
      assert.equal(aborted.aborted, true);
      assert.equal(aborted.path, '/v1/chat/completions');
    }));

  test('slow_headers: the answer still arrives intact', () =>
    withModel({}, async (model) => {
      model.setFault({ kind: 'slow_headers', delayMs: 30 }, { times: 1 });
      const completion = await sdk(model).chat.completions.create(chat);
      assert.ok(completion.choices[0]?.message.content?.includes(GERMAN));
    }));

  test('reset_before_response: the SDK sees a connection error', () =>
    withModel({}, async (model) => {
      model.setFault({ kind: 'reset_before_response' }, { times: 1 });
      await assert.rejects(sdk(model).chat.completions.create(chat), (err: unknown) => err instanceof OpenAI.APIConnectionError);
      assert.equal(model.received[0]?.aborted, false, 'a server-side reset is not a client abort');
      assert.deepEqual((model.received[0]?.body as { model: string }).model, 'demo-chat');
    }));

  test('reset_mid_stream: N chunks arrive, then the SDK stream throws', () =>
    withModel({}, async (model) => {
      model.setFault({ kind: 'reset_mid_stream', afterChunks: 3 });
      const stream = await sdk(model).chat.completions.create({ ...chat, stream: true });
      let chunks = 0;
      await assert.rejects(async () => {
        for await (const _chunk of stream) chunks++;
      });
      assert.equal(chunks, 3);
    }));

  test('reset_mid_stream on a non-streaming answer cuts the body', () =>
    withModel({}, async (model) => {
      model.setFault({ kind: 'reset_mid_stream', afterChunks: 0 });
      await assert.rejects(sdk(model).chat.completions.create(chat));
    }));

  test('stall_mid_stream: N chunks arrive, then silence until the client aborts', () =>
    withModel({}, async (model) => {
      model.setFault({ kind: 'stall_mid_stream', afterChunks: 2 });
      const controller = new AbortController();
      const stream = await sdk(model).chat.completions.create({ ...chat, stream: true }, { signal: controller.signal });
      let chunks = 0;
      for await (const _chunk of stream) {
        chunks++;
        if (chunks === 2) controller.abort();
      }
      assert.equal(chunks, 2);
      const aborted = await model.waitForAbort();
      assert.equal(aborted.aborted, true);
    }));

  test('wire: CRLF, keep-alive comments and 3-byte writes still parse in the SDK', () =>
    withModel({}, async (model) => {
      const client = sdk(model);
      const expected = (await client.chat.completions.create(chat)).choices[0]?.message.content;
      model.setFault({ kind: 'wire', lineEnding: '\r\n', comments: true, splitEveryBytes: 3 });

      const raw = await fetch(`${model.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ ...chat, stream: true }) });
      const rawText = await raw.text();
      assert.ok(rawText.startsWith(': keep-alive\r\n\r\ndata: '));
      assert.ok(rawText.includes('\r\n\r\ndata: [DONE]\r\n\r\n'));

      const stream = await client.chat.completions.create({ ...chat, stream: true, stream_options: { include_usage: true } });
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      assert.equal(text, expected);

      const nonStreaming = await client.chat.completions.create(chat);
      assert.equal(nonStreaming.choices[0]?.message.content, expected);

      const final = await client.responses.stream({ model: 'demo-chat', input: GERMAN }).finalResponse();
      assert.ok(final.output_text.includes(GERMAN));

      const lines = await ndjsonLines(
        await fetch(`${model.url}/api/chat`, { method: 'POST', body: JSON.stringify({ model: 'demo-chat', messages: chat.messages }) }),
      );
      assert.ok(lines.map((line) => (line.message as { content: string }).content).join('').includes(GERMAN));
    }));

  test('waitForAbort: a client abort mid-stream stops the stream and is recorded', () =>
    withModel({ chunkDelayMs: 5, replyWords: 10_000 }, async (model) => {
      const controller = new AbortController();
      const stream = await sdk(model).chat.completions.create({ ...chat, stream: true }, { signal: controller.signal });
      for await (const _chunk of stream) {
        controller.abort();
      }
      const aborted = await model.waitForAbort();
      assert.equal(aborted.aborted, true);
      assert.equal(model.received.at(-1), aborted);
    }));

  test('waitForAbort rejects when nothing aborts', () =>
    withModel({}, async (model) => {
      await assert.rejects(model.waitForAbort(20), /No client abort/);
    }));
});

describe('demo model, streaming volume and bookkeeping', () => {
  test('a long reply streams completely through backpressure', () =>
    withModel({ replyWords: 20_000 }, async (model) => {
      const stream = await sdk(model).chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'go' }], stream: true });
      let words = 0;
      for await (const chunk of stream) if (chunk.choices[0]?.delta.content) words++;
      assert.equal(words, 20_000);
    }));

  test('received keeps the last 100 requests', () =>
    withModel({}, async (model) => {
      for (let index = 0; index < 105; index++) await (await fetch(`${model.url}/health?n=${index}`)).arrayBuffer();
      assert.equal(model.received.length, 100);
      assert.equal(model.received[0]?.path, '/health?n=5');
      assert.equal(model.received.at(-1)?.path, '/health?n=104');
    }));

  test('close() ends idle keep-alive connections and stalled streams', () =>
    withModel({}, async (model) => {
      const client = sdk(model);
      await client.models.list();
      model.setFault({ kind: 'stall_mid_stream', afterChunks: 1 });
      const stream = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'x' }], stream: true });
      const iterator = stream[Symbol.asyncIterator]();
      await iterator.next();
      const rest = iterator.next().catch((err: unknown) => err);
      await model.close();
      await rest;
      assert.equal(model.received.every((request) => !request.aborted), true, 'closing is not a client abort');
    }));
});
