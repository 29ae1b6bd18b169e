// The protocol-aware stream transform: each dialect's text fields are
// masked per choice and field, frames stay well-formed and in order, held
// text is flushed before anything that completes it, and a rule that ends
// the response sends an error frame before [DONE].
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import OpenAI from 'openai';
import { NdjsonDecoder } from '../../src/protocol/ndjson.js';
import { encodeSseFrame, SseDecoder, type SseFrame } from '../../src/protocol/sse.js';
import type { Operation } from '../../src/protocol/types.js';
import { MaskingSession } from '../../src/mask/session.js';
import { MaskingStreamTransform } from '../../src/mask/stream-transform.js';
import type { SpanRules } from '../../src/mask/types.js';
import { parseOpenAiRequest } from '../../src/protocol/openai.js';
import { UsageMeter } from '../../src/usage/meter.js';
import { createTestScanner } from './test-scanner.js';

const CARD = '4111 1111 1111 1111';
const EMAIL = 'jane.doe@example.com';
const PEM = '-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEAq7BFUpkGp3+LQmlQ\n-----END PRIVATE KEY-----';

const rules: SpanRules = (span) =>
  span.type === 'PRIVATE_KEY' ? { action: 'end_stream', rule: 'no-private-keys' } : { action: 'mask', rule: 'mask-pii', strategy: { kind: 'placeholder' } };

function transformFor(operation: Operation, options: { withUndecidedFrom?: boolean } = {}): MaskingStreamTransform {
  return new MaskingStreamTransform({
    operation,
    framing: operation.startsWith('ollama') ? 'ndjson' : 'sse',
    scanner: createTestScanner({ withUndecidedFrom: options.withUndecidedFrom ?? true }),
    session: new MaskingSession(),
    rules,
  });
}

/** Splits a text into deltas of `size` characters (code units, so pairs split too). */
const pieces = (text: string, size = 3): string[] => Array.from({ length: Math.ceil(text.length / size) }, (_, i) => text.slice(i * size, (i + 1) * size));

const chunk = (choices: unknown[], extra: Record<string, unknown> = {}): string =>
  encodeSseFrame({ data: JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'm', choices, ...extra }) });
const contentChunk = (content: string, index = 0): string => chunk([{ index, delta: { content }, logprobs: null, finish_reason: null }]);
const finishChunk = (index = 0, reason = 'stop'): string => chunk([{ index, delta: {}, logprobs: null, finish_reason: reason }]);
const DONE = 'data: [DONE]\n\n';

/** Runs raw SSE text through the transform; returns the wire output. */
function runSse(transform: MaskingStreamTransform, wire: string): string {
  const decoder = new SseDecoder();
  let out = '';
  for (const frame of [...decoder.push(wire), ...decoder.end()]) out += transform.push(frame).join('');
  return out + transform.end().join('');
}

function decodeSse(wire: string): SseFrame[] {
  const decoder = new SseDecoder();
  return [...decoder.push(wire), ...decoder.end()];
}

const dataOf = (wire: string): unknown[] =>
  decodeSse(wire)
    .filter((f) => f.hasData)
    .map((f) => (f.data === '[DONE]' ? '[DONE]' : JSON.parse(f.data)));

/** The concatenated content per choice, as a client accumulates it. */
function chatContent(wire: string, key = 'content'): Map<number, string> {
  const text = new Map<number, string>();
  for (const data of dataOf(wire)) {
    if (data === '[DONE]') continue;
    for (const choice of (data as { choices?: Array<{ index: number; delta?: Record<string, unknown> }> }).choices ?? []) {
      const value = choice.delta?.[key];
      if (typeof value === 'string') text.set(choice.index, (text.get(choice.index) ?? '') + value);
    }
  }
  return text;
}

/** An OpenAI client whose every request is answered with `wire` as an event stream. */
const sdkFor = (wire: string): OpenAI =>
  new OpenAI({
    apiKey: 'test',
    baseURL: 'http://127.0.0.1:9/v1',
    maxRetries: 0,
    fetch: async () => new Response(wire, { status: 200, headers: { 'content-type': 'text/event-stream' } }),
  });

describe('chat completions stream', () => {
  const answer = `Sure. Card ${CARD}, mail ${EMAIL}. 😀 Bye.`;
  const upstream = chunk([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]) + pieces(answer).map((p) => contentChunk(p)).join('') + finishChunk() + chunk([], { usage: { prompt_tokens: 3, completion_tokens: 9, total_tokens: 12 } }) + DONE;

  for (const withUndecidedFrom of [true, false]) {
    test(`content is masked across chunk boundaries; every frame parses; order and envelope are kept (undecidedFrom: ${withUndecidedFrom})`, () => {
      const wire = runSse(transformFor('chat', { withUndecidedFrom }), upstream);
      assert.equal(chatContent(wire).get(0), 'Sure. Card [CREDIT_CARD_1], mail [EMAIL_1]. 😀 Bye.');
      const frames = dataOf(wire);
      assert.equal(frames.at(-1), '[DONE]');
      const finishAt = frames.findIndex((f) => f !== '[DONE]' && (f as { choices: Array<{ finish_reason: unknown }> }).choices[0]?.finish_reason === 'stop');
      const lastContentAt = frames.findLastIndex((f) => f !== '[DONE]' && typeof (f as { choices: Array<{ delta?: { content?: string } }> }).choices[0]?.delta?.content === 'string' && (f as { choices: Array<{ delta: { content: string } }> }).choices[0]!.delta.content !== '');
      assert.ok(lastContentAt < finishAt, 'all text goes out before the finish_reason frame');
      assert.deepEqual((frames[0] as { choices: Array<{ delta: unknown }> }).choices[0]!.delta, { role: 'assistant', content: '' });
      assert.ok(frames.some((f) => f !== '[DONE]' && (f as { usage?: unknown }).usage !== undefined), 'the usage chunk is kept');
      for (const f of frames) if (f !== '[DONE]') assert.equal((f as { id: string }).id, 'chatcmpl-1');
    });
  }

  test("after the usage meter, masking works on the meter's parse of the frame as the meter rewrote it: the same output as masking the stripped stream alone", () => {
    // The gateway asked for usage the client did not: `usage: null` on every chunk, then a usage-only chunk.
    const withUsage = (frame: string): string => frame.replace(/^data: \{/, 'data: {"usage":null,');
    const stripped = chunk([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]) + pieces(answer).map((p) => contentChunk(p)).join('') + finishChunk();
    const added = stripped.split('\n\n').filter(Boolean).map((f) => withUsage(`${f}\n\n`)).join('') + chunk([], { usage: { prompt_tokens: 3, completion_tokens: 9, total_tokens: 12 } }) + DONE;
    const meter = new UsageMeter(parseOpenAiRequest('chat', { model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] }), { stripUsage: true });
    const transform = transformFor('chat');
    const decoder = new SseDecoder();
    let wire = '';
    for (const decoded of [...decoder.push(added), ...decoder.end()]) {
      const frame = meter.frame(decoded);
      if (frame) wire += transform.push(frame).join('');
    }
    wire += transform.end().join('');
    assert.equal(wire, runSse(transformFor('chat'), stripped + DONE));
    assert.doesNotMatch(wire, /usage/);
    assert.equal(chatContent(wire).get(0), 'Sure. Card [CREDIT_CARD_1], mail [EMAIL_1]. 😀 Bye.');
  });

  test('masking rewrites its parse of a frame in place without leaving it on the frame: the same decoded frames masked twice give the same output', () => {
    const decoder = new SseDecoder();
    const frames = [...decoder.push(upstream), ...decoder.end()];
    const run = (): string => {
      const transform = transformFor('chat');
      return frames.map((f) => transform.push(f).join('')).join('') + transform.end().join('');
    };
    const first = run();
    assert.equal(chatContent(first).get(0), 'Sure. Card [CREDIT_CARD_1], mail [EMAIL_1]. 😀 Bye.');
    assert.equal(run(), first);
  });

  test('the official SDK parses the masked stream', async () => {
    const wire = runSse(transformFor('chat'), upstream);
    const stream = sdkFor(wire).chat.completions.stream({ model: 'm', messages: [{ role: 'user', content: 'x' }] });
    const completion = await stream.finalChatCompletion();
    assert.equal(completion.choices[0]!.message.content, 'Sure. Card [CREDIT_CARD_1], mail [EMAIL_1]. 😀 Bye.');
  });

  test('tool-call argument deltas are scanned per call; calls come out in order and the SDK assembles each', async () => {
    const args0 = JSON.stringify({ to: EMAIL, note: 'first' });
    const args1 = JSON.stringify({ card: CARD });
    const toolDelta = (index: number, fn: Record<string, unknown>, head?: Record<string, unknown>): string =>
      chunk([{ index: 0, delta: { tool_calls: [{ index, ...head, function: fn }] }, logprobs: null, finish_reason: null }]);
    const wire = runSse(
      transformFor('chat'),
      chunk([{ index: 0, delta: { role: 'assistant', content: null }, logprobs: null, finish_reason: null }]) +
        toolDelta(0, { name: 'send', arguments: '' }, { id: 'call_0', type: 'function' }) +
        pieces(args0, 4).map((p) => toolDelta(0, { arguments: p })).join('') +
        toolDelta(1, { name: 'pay', arguments: '' }, { id: 'call_1', type: 'function' }) +
        pieces(args1, 4).map((p) => toolDelta(1, { arguments: p })).join('') +
        finishChunk(0, 'tool_calls') +
        DONE,
    );
    assert.ok(!wire.includes('jane.doe') && !wire.includes('1111 1111'), 'no raw entity on the wire');
    const seen: number[] = [];
    for (const data of dataOf(wire)) {
      if (data === '[DONE]') continue;
      for (const call of (data as { choices: Array<{ delta?: { tool_calls?: Array<{ index: number }> } }> }).choices[0]?.delta?.tool_calls ?? []) seen.push(call.index);
    }
    assert.deepEqual(seen, [...seen].sort(), 'the calls arrive one after the other here, and their frames keep that order');
    const stream = sdkFor(wire).chat.completions.stream({ model: 'm', messages: [{ role: 'user', content: 'x' }] });
    const calls = (await stream.finalChatCompletion()).choices[0]!.message.tool_calls!;
    assert.deepEqual(
      calls.map((c) => (c.type === 'function' ? [c.id, c.function.name, JSON.parse(c.function.arguments)] : [])),
      [
        ['call_0', 'send', { to: '[EMAIL_1]', note: 'first' }],
        ['call_1', 'pay', { card: '[CREDIT_CARD_1]' }],
      ],
    );
  });

  test('two choices are masked independently, with one numbering for the session', () => {
    const a = `mail ${EMAIL} now`;
    const b = `card ${CARD} and ${EMAIL}`;
    let wire = '';
    for (let i = 0; i < Math.max(a.length, b.length); i += 2) {
      if (i < a.length) wire += contentChunk(a.slice(i, i + 2), 0);
      if (i < b.length) wire += contentChunk(b.slice(i, i + 2), 1);
    }
    const out = runSse(transformFor('chat'), wire + finishChunk(0) + finishChunk(1) + DONE);
    const content = chatContent(out);
    assert.equal(content.get(0), 'mail [EMAIL_1] now');
    assert.equal(content.get(1), 'card [CREDIT_CARD_1] and [EMAIL_1]');
  });

  test('content arriving beside reasoning never releases reasoning\'s held tail: it waits for the choice to finish', () => {
    const reasoningChunk = (reasoning_content: string, content = ''): string => chunk([{ index: 0, delta: { reasoning_content, content }, logprobs: null, finish_reason: null }]);
    const wire = runSse(transformFor('chat'), reasoningChunk('think about jane.doe@exa') + reasoningChunk('', 'Answer') + reasoningChunk('mple.com', '') + finishChunk() + DONE);
    assert.ok(!wire.includes('jane.doe'), 'no part of the split email went out');
    assert.equal(chatContent(wire, 'reasoning_content').get(0), 'think about [EMAIL_1]');
    assert.equal(chatContent(wire).get(0), 'Answer');
  });

  test('a private key ends the stream with an error frame naming the rule, before [DONE] and before any of the key', async () => {
    const wire = runSse(transformFor('chat'), pieces(`Here:\n${PEM}\nmore`, 5).map((p) => contentChunk(p)).join('') + finishChunk() + DONE);
    assert.ok(!wire.includes('BEGIN'), 'no part of the key header went out');
    const frames = dataOf(wire);
    const last = frames.at(-1) as { error: { code: string; message: string } };
    assert.equal(last.error.code, 'output_blocked');
    assert.match(last.error.message, /output rule "no-private-keys"/);
    assert.ok(!frames.includes('[DONE]'));
    const stream = sdkFor(wire).chat.completions.stream({ model: 'm', messages: [{ role: 'user', content: 'x' }] });
    await assert.rejects(stream.finalChatCompletion(), /no-private-keys/);
  });

  test('after ending the stream the transform drops everything and reports why', () => {
    const transform = transformFor('chat');
    const out = runSse(transform, contentChunk(`${PEM}\n`) + contentChunk('later text') + DONE);
    assert.equal(transform.stopped?.code, 'output_blocked');
    assert.deepEqual(transform.stopped?.termination, { rule: 'no-private-keys', type: 'PRIVATE_KEY' });
    assert.ok(!out.includes('later text'));
    assert.equal(transform.decisions.decisions.at(-1)?.action, 'end_stream');
  });

  test('token logprobs, which would spell the entity out, are dropped', () => {
    const withLogprobs = chunk([{ index: 0, delta: { content: 'hi ' }, logprobs: { content: [{ token: 'hi', logprob: -0.1, bytes: [104, 105], top_logprobs: [] }] }, finish_reason: null }]);
    const out = runSse(transformFor('chat'), withLogprobs + finishChunk() + DONE);
    for (const data of dataOf(out)) if (data !== '[DONE]') assert.equal((data as { choices: Array<{ logprobs: unknown }> }).choices[0]?.logprobs ?? null, null);
  });

  test('comment frames pass untouched; a frame that is not JSON ends the stream rather than passing unchecked', () => {
    const transform = transformFor('chat');
    const out = runSse(transform, ': keep-alive\n\n' + contentChunk('hello ') + 'data: {not json\n\n' + contentChunk(EMAIL) + DONE);
    assert.ok(out.startsWith(': keep-alive\n\n'));
    assert.equal(transform.stopped?.code, 'upstream_frame_uninspectable');
    assert.ok(!out.includes('jane'));
    assert.equal((dataOf(out).at(-1) as { error: { code: string } }).error.code, 'upstream_frame_uninspectable');
  });

  test('a stream that ends without finish_reason or [DONE] still flushes the held text', () => {
    const out = runSse(transformFor('chat'), contentChunk('mail ') + contentChunk(EMAIL));
    assert.equal(chatContent(out).get(0), 'mail [EMAIL_1]');
  });

  test('decisions are recorded with the logical path and stream offsets, never the value', () => {
    const transform = transformFor('chat');
    runSse(transform, contentChunk('to: ') + contentChunk(EMAIL) + finishChunk() + DONE);
    const [decision] = transform.decisions.decisions;
    assert.deepEqual(decision?.span, { path: ['choices', 0, 'message', 'content'], start: 4, end: 4 + EMAIL.length });
    assert.equal(decision?.rule, 'mask-pii');
    assert.ok(!JSON.stringify(transform.decisions.decisions).includes('jane'));
  });
});

describe('completions stream', () => {
  test('choices[].text is masked and flushed before finish_reason', () => {
    const frame = (text: string, finish: string | null = null): string =>
      encodeSseFrame({ data: JSON.stringify({ id: 'cmpl-1', object: 'text_completion', created: 1, model: 'm', choices: [{ index: 0, text, logprobs: null, finish_reason: finish }] }) });
    const out = runSse(transformFor('completion'), pieces(`card ${CARD}!`).map((p) => frame(p)).join('') + frame('', 'length') + DONE);
    const text = dataOf(out)
      .filter((d) => d !== '[DONE]')
      .map((d) => (d as { choices: Array<{ text: string }> }).choices[0]!.text)
      .join('');
    assert.equal(text, 'card [CREDIT_CARD_1]!');
  });
});

describe('Responses API stream', () => {
  const event = (data: Record<string, unknown>): string => encodeSseFrame({ event: data.type as string, data: JSON.stringify(data) });
  const response = (status: string, output: unknown[]): Record<string, unknown> => ({
    id: 'resp_1',
    object: 'response',
    created_at: 1,
    status,
    model: 'm',
    output,
    parallel_tool_calls: true,
    tool_choice: 'auto',
    tools: [],
  });
  const text = `Write to ${EMAIL} about ${CARD}.`;
  const args = JSON.stringify({ email: EMAIL });

  function upstream(): string {
    let seq = 0;
    const next = (data: Record<string, unknown>): string => event({ ...data, sequence_number: seq++ });
    const message = { id: 'msg_1', type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text, annotations: [] }] };
    const call = { id: 'fc_1', type: 'function_call', call_id: 'call_1', name: 'send', arguments: args, status: 'completed' };
    return [
      next({ type: 'response.created', response: response('in_progress', []) }),
      next({ type: 'response.output_item.added', output_index: 0, item: { ...message, status: 'in_progress', content: [] } }),
      next({ type: 'response.content_part.added', item_id: 'msg_1', output_index: 0, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } }),
      ...pieces(text, 4).map((delta) => next({ type: 'response.output_text.delta', item_id: 'msg_1', output_index: 0, content_index: 0, delta, logprobs: [] })),
      next({ type: 'response.output_text.done', item_id: 'msg_1', output_index: 0, content_index: 0, text, logprobs: [] }),
      next({ type: 'response.content_part.done', item_id: 'msg_1', output_index: 0, content_index: 0, part: message.content[0] }),
      next({ type: 'response.output_item.done', output_index: 0, item: message }),
      next({ type: 'response.output_item.added', output_index: 1, item: { ...call, arguments: '', status: 'in_progress' } }),
      ...pieces(args, 5).map((delta) => next({ type: 'response.function_call_arguments.delta', item_id: 'fc_1', output_index: 1, delta })),
      next({ type: 'response.function_call_arguments.done', item_id: 'fc_1', output_index: 1, arguments: args }),
      next({ type: 'response.output_item.done', output_index: 1, item: call }),
      next({ type: 'response.completed', response: response('completed', [message, call]) }),
    ].join('');
  }

  test('deltas, done events and the completed response are all masked; sequence numbers stay in order', () => {
    const out = runSse(transformFor('response'), upstream());
    assert.ok(!out.includes('jane.doe') && !out.includes('1111 1111'), 'no raw entity anywhere on the wire');
    const events = dataOf(out) as Array<{ type: string; sequence_number: number; delta?: string }>;
    const numbers = events.map((e) => e.sequence_number);
    assert.deepEqual(numbers, numbers.map((_, i) => i), 'inserted events renumber the ones after them');
    const streamed = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
    assert.equal(streamed, 'Write to [EMAIL_1] about [CREDIT_CARD_1].');
    const doneAt = events.findIndex((e) => e.type === 'response.output_text.done');
    assert.ok(events.slice(doneAt).every((e) => e.type !== 'response.output_text.delta'), 'held text goes out before the done event');
  });

  test('a stream cut off mid-text still flushes, after the last event and in sequence', () => {
    const cut = upstream().split('event: response.output_text.done')[0]!;
    const events = dataOf(runSse(transformFor('response'), cut)) as Array<{ type: string; sequence_number: number; delta?: string }>;
    const numbers = events.map((e) => e.sequence_number);
    assert.deepEqual(numbers, numbers.map((_, i) => i));
    assert.equal(events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join(''), 'Write to [EMAIL_1] about [CREDIT_CARD_1].');
  });

  test('the official SDK parses it, and its final response is the masked one', async () => {
    const wire = runSse(transformFor('response'), upstream());
    const stream = sdkFor(wire).responses.stream({ model: 'm', input: 'x' });
    const final = await stream.finalResponse();
    assert.equal(final.output_text, 'Write to [EMAIL_1] about [CREDIT_CARD_1].');
    const call = final.output[1];
    assert.equal(call?.type === 'function_call' && call.arguments, JSON.stringify({ email: '[EMAIL_1]' }));
  });
});

describe('Ollama NDJSON stream', () => {
  const line = (value: Record<string, unknown>): string => `${JSON.stringify(value)}\n`;
  function runNdjson(transform: MaskingStreamTransform, wire: string): Array<Record<string, unknown>> {
    const decoder = new NdjsonDecoder();
    let out = '';
    for (const l of [...decoder.push(wire), ...decoder.end()]) out += transform.push(l).join('');
    out += transform.end().join('');
    assert.ok(out.endsWith('\n'));
    return out
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  test('/api/chat: content and thinking are masked and flushed before done:true; tool-call argument objects are masked', () => {
    const base = { model: 'llama', created_at: '2025-01-01T00:00:00Z' };
    const wire =
      pieces('hmm, the card', 4).map((t) => line({ ...base, message: { role: 'assistant', content: '', thinking: t }, done: false })).join('') +
      pieces(`Mail ${EMAIL}`, 4).map((c) => line({ ...base, message: { role: 'assistant', content: c }, done: false })).join('') +
      line({ ...base, message: { role: 'assistant', content: '', tool_calls: [{ function: { name: 'pay', arguments: { card: CARD, n: 1 } } }] }, done: false }) +
      line({ ...base, message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop', eval_count: 9 });
    const lines = runNdjson(transformFor('ollama_chat'), wire);
    const message = (l: Record<string, unknown>): Record<string, unknown> => l.message as Record<string, unknown>;
    assert.equal(lines.map((l) => message(l).content ?? '').join(''), 'Mail [EMAIL_1]');
    assert.equal(lines.map((l) => message(l).thinking ?? '').join(''), 'hmm, the card');
    const doneAt = lines.findIndex((l) => l.done === true);
    assert.equal(doneAt, lines.length - 1);
    assert.equal(lines[doneAt]!.eval_count, 9);
    const call = lines.flatMap((l) => (message(l).tool_calls as Array<{ function: { arguments: unknown } }> | undefined) ?? [])[0];
    assert.deepEqual(call?.function.arguments, { card: '[CREDIT_CARD_1]', n: 1 });
  });

  test('/api/generate: response is masked; the context token array is dropped', () => {
    const base = { model: 'llama', created_at: '2025-01-01T00:00:00Z' };
    const wire = pieces(`IBAN DE89 3704 0044 0532 0130 00 ok`, 6).map((r) => line({ ...base, response: r, done: false })).join('') + line({ ...base, response: '', done: true, context: [1, 2, 3] });
    const lines = runNdjson(transformFor('ollama_generate'), wire);
    assert.equal(lines.map((l) => l.response).join(''), 'IBAN [IBAN_1] ok');
    assert.equal(lines.at(-1)!.done, true);
    assert.equal('context' in lines.at(-1)!, false);
  });

  test('an entity only decided at the end still ends the stream before done:true, which is not sent', () => {
    const endOnEmail = new MaskingStreamTransform({
      operation: 'ollama_chat',
      framing: 'ndjson',
      scanner: createTestScanner({ withUndecidedFrom: true }),
      session: new MaskingSession(),
      rules: (span) => (span.type === 'EMAIL' ? { action: 'end_stream', rule: 'no-email' } : undefined),
    });
    const lines = runNdjson(endOnEmail, line({ model: 'x', message: { role: 'assistant', content: `write to ${EMAIL}` }, done: false }) + line({ model: 'x', message: { role: 'assistant', content: '' }, done: true }));
    assert.ok(lines.every((l) => l.done !== true), 'a done:true line before the error would make the cut response look complete');
    assert.match(String(lines.at(-1)!.error), /"no-email"/);
    assert.equal(lines.map((l) => (l.message as { content?: string } | undefined)?.content ?? '').join(''), 'write to ');
  });

  test('a private key ends the stream with an Ollama error line', () => {
    const transform = transformFor('ollama_generate');
    const lines = runNdjson(transform, line({ model: 'x', response: `k ${PEM}\n`, done: false }) + line({ model: 'x', response: 'after', done: true }));
    assert.match(String(lines.at(-1)!.error), /no-private-keys.*\(output_blocked\)/);
    assert.ok(!JSON.stringify(lines).includes('BEGIN'));
  });
});
