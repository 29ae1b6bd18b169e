// The usage meter over each wire format's frames, the sliding-window
// arithmetic on a controlled clock, and the cost table: the pieces the
// end-to-end tests rely on, with the edge cases spelled out.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseOpenAiRequest } from '../../src/protocol/openai.js';
import { parseOllamaRequest } from '../../src/protocol/ollama.js';
import { SseDecoder } from '../../src/protocol/sse.js';
import { NdjsonDecoder } from '../../src/protocol/ndjson.js';
import { CostTable } from '../../src/usage/costs.js';
import { randomUUID } from 'node:crypto';
import { MemoryLimitStore, slidingWindow, type LimitStore } from '../../src/usage/limit-store.js';
import { RedisLimitStore } from '../../src/usage/redis-limit-store.js';
import { needsUsageRequested, requestedMaxTokens, UsageMeter } from '../../src/usage/meter.js';

const sse = (...events: unknown[]) => new SseDecoder().push(events.map((e) => `data: ${typeof e === 'string' ? e : JSON.stringify(e)}\n\n`).join(''));

describe('usage meter', () => {
  test('OpenAI stream, usage added by the gateway: the usage-only chunk is dropped, `usage: null` removed, the numbers kept', () => {
    const request = parseOpenAiRequest('chat', { model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(needsUsageRequested(request), true);
    const meter = new UsageMeter(request, { stripUsage: true });
    const frames = sse(
      { id: 'c', choices: [{ index: 0, delta: { content: 'Hello' } }], usage: null },
      { id: 'c', choices: [], usage: { prompt_tokens: 7, completion_tokens: 2, total_tokens: 9 } },
      '[DONE]',
    );
    const out = frames.map((f) => meter.frame(f));
    assert.deepEqual(JSON.parse(out[0]!.data), { id: 'c', choices: [{ index: 0, delta: { content: 'Hello' } }] });
    assert.equal(out[1], undefined);
    assert.equal(out[2], frames[2]);
    assert.deepEqual(meter.result(), { prompt_tokens: 7, completion_tokens: 2, total_tokens: 9, estimated: false });
  });

  test('the client asked for usage itself: nothing is stripped', () => {
    const request = parseOpenAiRequest('chat', { model: 'm', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(needsUsageRequested(request), false);
    const meter = new UsageMeter(request, { stripUsage: false });
    const frames = sse({ id: 'c', choices: [], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } });
    assert.equal(meter.frame(frames[0]!), frames[0]);
  });

  test('Responses events: usage from response.completed', () => {
    const meter = new UsageMeter(parseOpenAiRequest('response', { model: 'm', stream: true, input: 'hi' }), { stripUsage: false });
    for (const f of sse({ type: 'response.output_text.delta', delta: 'abcd' }, { type: 'response.completed', response: { usage: { input_tokens: 3, output_tokens: 5, total_tokens: 8 } } })) meter.frame(f);
    assert.deepEqual(meter.result(), { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8, estimated: false });
  });

  test('Ollama lines: prompt_eval_count and eval_count from the last line', () => {
    const meter = new UsageMeter(parseOllamaRequest('ollama_chat', { model: 'm', messages: [{ role: 'user', content: 'hi' }] }), { stripUsage: false });
    const lines = new NdjsonDecoder().push('{"message":{"content":"a"},"done":false}\n{"message":{"content":""},"done":true,"prompt_eval_count":11,"eval_count":4}\n');
    for (const l of lines) assert.equal(meter.frame(l), l);
    assert.deepEqual(meter.result(), { prompt_tokens: 11, completion_tokens: 4, total_tokens: 15, estimated: false });
  });

  test('nothing reported: estimated from the prompt and the text that went by, and marked', () => {
    const meter = new UsageMeter(parseOpenAiRequest('chat', { model: 'm', messages: [{ role: 'user', content: 'x'.repeat(40) }] }), { stripUsage: false });
    meter.bodyChunk(Buffer.from(JSON.stringify({ choices: [{ message: { content: 'y'.repeat(20) } }] })));
    meter.body();
    assert.deepEqual(meter.result(), { prompt_tokens: 14, completion_tokens: 5, total_tokens: 19, estimated: true });
  });

  test('a non-streamed body reporting only total and prompt: completion is derived', () => {
    const meter = new UsageMeter(parseOpenAiRequest('chat', { model: 'm', messages: [{ role: 'user', content: 'hi' }] }), { stripUsage: false });
    meter.body({ usage: { prompt_tokens: 4, total_tokens: 10 } });
    assert.deepEqual(meter.result(), { prompt_tokens: 4, completion_tokens: 6, total_tokens: 10, estimated: false });
  });

  test('max_tokens in every dialect spelling', () => {
    assert.equal(requestedMaxTokens(parseOpenAiRequest('chat', { model: 'm', max_completion_tokens: 9, messages: [{ role: 'user', content: 'x' }] })), 9);
    assert.equal(requestedMaxTokens(parseOpenAiRequest('response', { model: 'm', max_output_tokens: 8, input: 'x' })), 8);
    assert.equal(requestedMaxTokens(parseOllamaRequest('ollama_generate', { model: 'm', prompt: 'x', options: { num_predict: 7 } })), 7);
    assert.equal(requestedMaxTokens(parseOpenAiRequest('chat', { model: 'm', messages: [{ role: 'user', content: 'x' }] })), undefined);
  });
});

describe('sliding window', () => {
  const W = 60_000;
  test('the previous window counts in proportion to how much of it still overlaps', () => {
    // 10 used in the previous minute, half-way through this one: 5 still count.
    const r = slidingWindow(100 * W + W / 2, W, 10, 5, 10, 0);
    assert.equal(r.allowed, true);
    assert.equal(r.remaining, 0);
    assert.equal(slidingWindow(100 * W + W / 2, W, 10, 6, 10, 0).allowed, false);
  });

  test('retry time: until enough of the previous window has slid out, or -1 when the cost can never fit', () => {
    const r = slidingWindow(100 * W, W, 10, 1, 10, 0);
    assert.equal(r.allowed, false);
    assert.equal(r.retryMs, W / 10); // one tenth of the previous window must slide out
    assert.equal(slidingWindow(100 * W, W, 10, 11, 0, 0).retryMs, -1);
    // The current window is full: wait for it to become the previous one and decay enough.
    const full = slidingWindow(100 * W + W / 4, W, 10, 1, 0, 10);
    assert.equal(full.retryMs, (3 * W) / 4 + W / 10);
  });

  test('the memory store moves windows with its clock and forgets what slid out', async () => {
    let now = 100 * W;
    const store = new MemoryLimitStore(() => now);
    const check = { kind: 'window' as const, key: 'k', windowMs: W, limit: 2, cost: 1 };
    assert.equal((await store.acquire([check], 'a', 1000)).allowed, true);
    assert.equal((await store.acquire([check], 'b', 1000)).allowed, true);
    assert.equal((await store.acquire([check], 'c', 1000)).allowed, false);
    now += W + W / 2; // half of the full window still overlaps: 1 counts
    assert.equal((await store.acquire([check], 'd', 1000)).allowed, true);
    assert.equal((await store.acquire([check], 'e', 1000)).allowed, false);
    now += 2 * W;
    assert.equal((await store.acquire([check], 'f', 1000)).results[0]!.used, 0);
    await store.close();
  });

  test('one decision over several limits charges none when one refuses', async () => {
    const store = new MemoryLimitStore(() => 0);
    const loose = { kind: 'window' as const, key: 'loose', windowMs: W, limit: 100, cost: 1 };
    const tight = { kind: 'window' as const, key: 'tight', windowMs: W, limit: 1, cost: 1 };
    assert.equal((await store.acquire([loose, tight], 'a', 1000)).allowed, true);
    const refused = await store.acquire([loose, tight], 'b', 1000);
    assert.equal(refused.allowed, false);
    assert.equal(refused.denied, 1);
    assert.equal((await store.acquire([loose], 'c', 1000)).results[0]!.used, 1, 'the refused decision charged the loose limit');
    await store.close();
  });
});

describe('concurrency leases', () => {
  const slot = { kind: 'concurrency' as const, key: 'slots', limit: 1 };
  async function leaseExpires(store: LimitStore, wait: () => Promise<void>): Promise<void> {
    assert.equal((await store.acquire([slot], 'crashed-instance-request', 200)).allowed, true);
    assert.equal((await store.acquire([slot], 'next', 200)).allowed, false);
    await wait(); // the owner never finished: its instance died
    assert.equal((await store.acquire([slot], 'next', 200)).allowed, true);
    await store.finish([], ['slots'], 'next');
    assert.equal((await store.acquire([slot], 'after', 200)).allowed, true, 'finish frees the slot');
    await store.close();
  }

  test('memory: a slot whose owner vanished is free once its lease runs out', async () => {
    let now = 0;
    await leaseExpires(new MemoryLimitStore(() => now), async () => void (now += 201));
  });

  test('Redis: the same, on Redis time', async () => {
    const store = new RedisLimitStore({ url: 'redis://127.0.0.1:6379', keyPrefix: `test:${randomUUID()}:`, timeoutMs: 2000 });
    assert.ok(await store.ready(), 'Redis at 127.0.0.1:6379');
    await leaseExpires(store, () => new Promise((r) => setTimeout(r, 300)));
  });
});

describe('cost table', () => {
  test('per 1k tokens and per GPU-second; "*" for models without their own price', () => {
    const costs = new CostTable({
      currency: 'EUR',
      metrics_subject_label: false,
      costs: [
        { models: ['big'], per_1k_prompt_tokens: 0, per_1k_completion_tokens: 0, per_gpu_second: 0.5 },
        { models: ['*'], per_1k_prompt_tokens: 1, per_1k_completion_tokens: 2, per_gpu_second: 0 },
      ],
    });
    assert.equal(costs.cost('big', 1000, 1000, 3), 1.5);
    assert.equal(costs.cost('small', 500, 250, 3), 1);
  });
});
