// Token accounting end to end: the official openai and ollama clients
// through the gateway to the demo model; the usage each call reports must
// land in the session record, the token metrics and the access log, and a
// stream whose client did not ask for usage must not get a usage chunk.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import type { UsageReport } from '../../src/usage/report.js';
import { startHarness, type Harness } from '../helpers/harness.js';

describe('token accounting on every call', () => {
  let h: Harness;
  let alice: OpenAI;
  let ollama: Ollama;
  before(async () => {
    h = await startHarness();
    const token = await h.userToken('alice');
    alice = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: token, maxRetries: 0 });
    ollama = new Ollama({ host: h.url, headers: { authorization: `Bearer ${token}` } });
  });
  after(() => h.close());

  /** The session row of the last request, once its end is durable. */
  async function lastSession() {
    await h.gateway.services.audit!.recorder.flush();
    const [row] = await h.gateway.services.audit!.archive.store.listSessions({ limit: 1 });
    return row!;
  }

  async function endMeta(sessionId: string): Promise<{ usage?: { estimated?: boolean } }> {
    const events = await h.gateway.services.audit!.archive.store.sessionEvents(sessionId, false);
    return JSON.parse(events.find((e) => e.kind === 'session.end')!.metaText);
  }

  async function tokenMetric(labels: string): Promise<number> {
    const text = await (await fetch(`${h.url}/metrics`)).text();
    let sum = 0;
    for (const line of text.split('\n')) if (line.startsWith('modelgate_tokens_total{') && line.includes(labels)) sum += Number(line.split(' ').at(-1));
    return sum;
  }

  test('non-streamed chat: the body usage is recorded and counted', async () => {
    // Counted once per group of the caller; alice is in engineering.
    const before = await tokenMetric('group="engineering",outcome="completed",estimated="false",type="completion"');
    const completion = await alice.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'count me' }] });
    const row = await lastSession();
    assert.equal(row.prompt_tokens, completion.usage!.prompt_tokens);
    assert.equal(row.completion_tokens, completion.usage!.completion_tokens);
    assert.equal(row.total_tokens, completion.usage!.total_tokens);
    assert.equal((await tokenMetric('group="engineering",outcome="completed",estimated="false",type="completion"')) - before, completion.usage!.completion_tokens);
    assert.ok((await tokenMetric('group="engineering",outcome="completed",estimated="false",type="prompt"')) > 0);
  });

  test('a stream whose client did not ask for usage gets no usage chunk, and its usage is still recorded', async () => {
    const stream = await alice.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'stream without usage' }], stream: true });
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      assert.equal('usage' in chunk, false, `chunk ${chunks} carries usage: ${JSON.stringify(chunk)}`);
      assert.ok(chunk.choices.length > 0, 'a chunk without choices reached the client');
    }
    const upstreamBody = h.model.received.at(-1)!.body as { stream_options?: { include_usage?: boolean } };
    assert.equal(upstreamBody.stream_options?.include_usage, true, 'the gateway asks the upstream for usage');
    const row = await lastSession();
    assert.ok(row.completion_tokens! > 0 && row.prompt_tokens! > 0);
    assert.equal(row.total_tokens, row.prompt_tokens! + row.completion_tokens!);
    const end = await endMeta(row.id);
    assert.equal(end.usage?.estimated, undefined, 'reported usage is not marked estimated');
  });

  test('a stream whose client asked for usage gets exactly the usage chunk, and the record matches it', async () => {
    const stream = await alice.chat.completions.create({
      model: 'demo-chat',
      messages: [{ role: 'user', content: 'stream with usage' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const usages = [];
    for await (const chunk of stream) if (chunk.usage) usages.push(chunk.usage);
    assert.equal(usages.length, 1);
    const row = await lastSession();
    assert.equal(row.completion_tokens, usages[0]!.completion_tokens);
    assert.equal(row.prompt_tokens, usages[0]!.prompt_tokens);
  });

  test('legacy completions stream: usage requested upstream, stripped for the client', async () => {
    const stream = await alice.completions.create({ model: 'demo-chat', prompt: 'complete me', stream: true });
    for await (const chunk of stream) assert.equal('usage' in chunk, false);
    const row = await lastSession();
    assert.ok(row.completion_tokens! > 0);
  });

  test('Responses API, streamed and not', async () => {
    const response = await alice.responses.create({ model: 'demo-chat', input: 'respond please' });
    let row = await lastSession();
    assert.equal(row.prompt_tokens, response.usage!.input_tokens);
    assert.equal(row.completion_tokens, response.usage!.output_tokens);

    const stream = await alice.responses.create({ model: 'demo-chat', input: 'respond in a stream', stream: true });
    let usage;
    for await (const event of stream) if (event.type === 'response.completed') usage = event.response.usage;
    row = await lastSession();
    assert.equal(row.prompt_tokens, usage!.input_tokens);
    assert.equal(row.completion_tokens, usage!.output_tokens);
  });

  test('embeddings: prompt tokens, no completion tokens', async () => {
    const result = await alice.embeddings.create({ model: 'demo-embed', input: ['one', 'two'] });
    const row = await lastSession();
    assert.equal(row.prompt_tokens, result.usage.prompt_tokens);
    assert.equal(row.completion_tokens, 0);
  });

  test('Ollama chat (streamed) and generate (not): prompt_eval_count and eval_count', async () => {
    let last: { prompt_eval_count: number; eval_count: number } | undefined;
    for await (const part of await ollama.chat({ model: 'demo-chat', messages: [{ role: 'user', content: 'ollama stream' }], stream: true })) {
      if (part.done) last = part;
    }
    let row = await lastSession();
    assert.equal(row.prompt_tokens, last!.prompt_eval_count);
    assert.equal(row.completion_tokens, last!.eval_count);

    const generated = await ollama.generate({ model: 'demo-chat', prompt: 'ollama whole', stream: false });
    row = await lastSession();
    assert.equal(row.prompt_tokens, generated.prompt_eval_count);
    assert.equal(row.completion_tokens, generated.eval_count);
  });

  test('an upstream that reports no usage: estimated from the text, and marked estimated', async () => {
    const chunk = (content: string) =>
      `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'demo-chat', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
    const reply = 'sixteen characters'.repeat(4); // 72 characters: 18 tokens at four characters a token
    h.model.setFault({ kind: 'raw', contentType: 'text/event-stream', writes: [chunk(reply.slice(0, 30)), chunk(reply.slice(30)), 'data: [DONE]\n\n'] }, { times: 1, path: '/v1/chat/completions' });
    const stream = await alice.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'x'.repeat(40) }], stream: true });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
    assert.equal(text, reply);
    const row = await lastSession();
    assert.equal(row.completion_tokens, 18);
    assert.equal(row.prompt_tokens, 10 + 4, 'ten tokens of text plus one message frame');
    const end = await endMeta(row.id);
    assert.equal(end.usage?.estimated, true);
    assert.equal(row.estimated, true, 'the session row says so');
    assert.ok((await tokenMetric('estimated="true"')) >= 28);
    // And so do the APIs the console and scripts read.
    const auth = { authorization: `Bearer ${await h.userToken('alice')}` };
    const detail = (await (await fetch(`${h.url}/v1/sessions/${row.id}`, { headers: auth })).json()) as { session: { estimated: boolean } };
    assert.equal(detail.session.estimated, true);
    const listed = (await (await fetch(`${h.url}/v1/sessions?limit=50`, { headers: auth })).json()) as { data: Array<{ id: string; estimated: boolean }> };
    assert.deepEqual(listed.data.filter((s) => s.estimated).map((s) => s.id), [row.id], 'only this session was estimated');
    const usage = (await (await fetch(`${h.url}/v1/usage?since=1h`, { headers: auth })).json()) as UsageReport;
    assert.equal(usage.total.estimated_requests, 1);
  });
});
