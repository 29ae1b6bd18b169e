import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { APIError } from 'openai';
import { Stream } from 'openai/core/streaming';
import { encodeStreamError } from '../../src/protocol/stream-error.js';
import { NdjsonDecoder } from '../../src/protocol/ndjson.js';
import { encodeSseFrame, SseDecoder } from '../../src/protocol/sse.js';

const error = { message: 'Response blocked by policy "no-secrets"', type: 'permission_error', code: 'guardrail_blocked' };

/** Runs SSE text through the official openai SDK's stream reader, as a client would. */
async function readWithOpenAiSdk(sse: string): Promise<{ items: unknown[]; error: unknown }> {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(sse));
      controller.close();
    },
  });
  const response = new Response(body, { headers: { 'content-type': 'text/event-stream' } });
  const items: unknown[] = [];
  try {
    for await (const item of Stream.fromSSEResponse(response, new AbortController())) items.push(item);
    return { items, error: undefined };
  } catch (err) {
    return { items, error: err };
  }
}

describe('encodeStreamError for SSE', () => {
  const frame = encodeStreamError('sse', error);

  test('is one OpenAI-style error data frame', () => {
    assert.equal(
      frame,
      'data: {"error":{"message":"Response blocked by policy \\"no-secrets\\"","type":"permission_error","param":null,"code":"guardrail_blocked"}}\n\n',
    );
    const decoded = new SseDecoder().push(frame);
    assert.equal(decoded.length, 1);
    assert.deepEqual(JSON.parse(decoded[0]!.data), { error: { message: error.message, type: error.type, param: null, code: error.code } });
  });

  test('makes the openai SDK throw an APIError carrying the code, after the chunks before it', async () => {
    const before = encodeSseFrame({ data: JSON.stringify({ choices: [{ index: 0, delta: { content: 'hi' } }] }) });
    const { items, error: thrown } = await readWithOpenAiSdk(before + frame);
    assert.equal(items.length, 1);
    assert.ok(thrown instanceof APIError, `expected an APIError, got ${String(thrown)}`);
    assert.equal(thrown.message, error.message);
    assert.equal(thrown.code, error.code);
    assert.equal(thrown.type, error.type);
  });

  test('is raised too inside a Responses API stream of named events', async () => {
    const before = encodeSseFrame({ event: 'response.output_text.delta', data: JSON.stringify({ type: 'response.output_text.delta', delta: 'hi' }) });
    const { items, error: thrown } = await readWithOpenAiSdk(before + frame);
    assert.equal(items.length, 1);
    assert.ok(thrown instanceof APIError);
    assert.equal(thrown.code, error.code);
  });

  test('survives messages with line breaks and quotes as a single frame', () => {
    const tricky = encodeStreamError('sse', { ...error, message: 'line one\nline "two"\r\n' });
    const decoded = new SseDecoder().push(tricky);
    assert.equal(decoded.length, 1);
    assert.equal((JSON.parse(decoded[0]!.data) as { error: { message: string } }).error.message, 'line one\nline "two"\r\n');
  });
});

describe('encodeStreamError for NDJSON', () => {
  test("is Ollama's error line, with the code in the message", () => {
    const line = encodeStreamError('ndjson', error);
    assert.equal(line, `{"error":"Response blocked by policy \\"no-secrets\\" (guardrail_blocked)"}\n`);
    assert.deepEqual(new NdjsonDecoder().push(line).map((l) => l.value), [{ error: `${error.message} (${error.code})` }]);
  });

  test('stays on one line whatever the message holds', () => {
    const line = encodeStreamError('ndjson', { ...error, message: 'a\nb' });
    assert.equal(line.indexOf('\n'), line.length - 1);
  });
});
