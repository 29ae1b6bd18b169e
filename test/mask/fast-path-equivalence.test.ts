// The scanner's fast keyword pass for ASCII text (AsciiKeywordIndex, what
// nearly every streamed window takes) against the RE2.Set pass it replaces
// (`keywordPass: 're2'`), through the gateway's own frame layer: generated
// OpenAI chat streams (content, reasoning_content and tool-call arguments in
// one frame or apart, entities and detector keywords cut across frames),
// Ollama NDJSON and Responses events. The client must receive the same bytes
// either way. Seeds are printed; replay with FAST_CHECK_SEED (and
// FAST_CHECK_PATH).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { createScanner } from '../../src/detect/scanner.js';
import { MaskingSession } from '../../src/mask/session.js';
import { MaskingStreamTransform } from '../../src/mask/stream-transform.js';
import type { SpanRules } from '../../src/mask/types.js';
import { NdjsonDecoder } from '../../src/protocol/ndjson.js';
import { encodeSseFrame, SseDecoder } from '../../src/protocol/sse.js';
import type { Operation } from '../../src/protocol/types.js';
import { propertyRun, splitAt } from './scanners.js';

// The gateway's output scanner for the soak's guardrails, and all types; each with both keyword passes.
const PII = ['EMAIL', 'PHONE', 'CREDIT_CARD', 'US_SSN', 'IBAN', 'IP_ADDRESS', 'DATE_OF_BIRTH', 'PASSPORT', 'NATIONAL_ID', 'PRIVATE_KEY'] as const;
const pairs = [
  { name: 'PII and private keys', fast: createScanner({ types: [...PII] }), re2: createScanner({ types: [...PII], keywordPass: 're2' }) },
  { name: 'all built-in types', fast: createScanner(), re2: createScanner({ keywordPass: 're2' }) },
];
const rules: SpanRules = (span) =>
  span.type === 'PRIVATE_KEY' ? { action: 'end_stream', rule: 'no-keys' } : { action: 'mask', rule: 'mask', strategy: { kind: 'hash', length: 8 } };

const PEM = '-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEAq7BFUpkGp3+LQmlQ\n-----END PRIVATE KEY-----';
const piece = fc.constantFrom(
  // Entities and what looks like them.
  'jane.doe@example.com', 'bob%40example.com', '4111 1111 1111 1111', '5500-0000-0000-0004', 'DE89 3704 0044 0532 0130 00', '123-45-6789', '+44 20 7946 0958',
  '(415) 555-0132', '10.0.0.12', 'fe80::1', 'born 12/03/1985', 'né le 12/03/1985', 'आधार 2345 6789 0124', 'DNI 12345678Z', 'BSN 111222333', 'AKIA5T66TBPVOMYZAWKP', 'password="Xy7!kq9#Lm2$vB"', PEM,
  // Detector keywords in prose, in any case: phone and card words, dates, secrets, national ids.
  'card', 'Visa', 'call me', 'TEL', 'DOB', 'birth', 'token', 'secret', 'key=', 'Authorization', 'https://', 'nhs', 'SIN', 'aws', 'eyJ', 'sk-', 'ghp_', '<<<',
  // Prose, digits, separators; a few characters outside ASCII (those windows take the RE2 pass).
  'the', 'word12', ' ', ' ', '. ', ', ', '\n', '2024', '42', ':', '-', '@', 'é', '😀',
);
const text = fc.array(piece, { minLength: 1, maxLength: 40 }).map((parts) => parts.join(' '));
/** A text cut into deltas at random points (never inside a surrogate pair: the upstream's JSON is valid UTF-16). */
const deltas = (t: string, cuts: number[]): string[] =>
  splitAt(t, cuts.map((c) => c % (t.length + 1)).filter((c) => !(t.charCodeAt(c) >= 0xdc00 && t.charCodeAt(c) <= 0xdfff)));
const field = fc.tuple(text, fc.array(fc.nat(), { maxLength: 30 })).map(([t, cuts]) => deltas(t, cuts));

function chatWire(content: string[], reasoning: string[], args: string[]): string {
  const frame = (delta: Record<string, unknown>, finish: string | null = null): string =>
    encodeSseFrame({ data: JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] }) });
  let wire = frame({ role: 'assistant', content: '' });
  const longest = Math.max(content.length, reasoning.length, args.length);
  for (let i = 0; i < longest; i++) {
    // Several fields in one frame where they overlap; the tool call announced with its first arguments.
    const delta: Record<string, unknown> = {};
    if (i < reasoning.length) delta.reasoning_content = reasoning[i];
    if (i < content.length) delta.content = content[i];
    if (i < args.length) delta.tool_calls = [{ index: 0, ...(i === 0 && { id: 'call_1', type: 'function' }), function: { ...(i === 0 && { name: 'send' }), arguments: args[i] } }];
    wire += frame(delta);
  }
  return `${wire}${frame({}, 'stop')}data: [DONE]\n\n`;
}

function ollamaWire(content: string[]): string {
  return content.map((c) => `${JSON.stringify({ model: 'm', created_at: '2026-12-03T17:00:00Z', message: { role: 'assistant', content: c }, done: false })}\n`).join('') +
    `${JSON.stringify({ model: 'm', created_at: '2026-12-03T17:00:01Z', message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop' })}\n`;
}

function responsesWire(content: string[]): string {
  let seq = 0;
  const ev = (type: string, body: Record<string, unknown>): string => encodeSseFrame({ event: type, data: JSON.stringify({ type, sequence_number: seq++, ...body }) });
  const at = { item_id: 'msg_1', output_index: 0, content_index: 0 };
  return ev('response.created', { response: { id: 'resp_1', status: 'in_progress', output: [] } }) +
    content.map((delta) => ev('response.output_text.delta', { ...at, delta })).join('') +
    ev('response.output_text.done', { ...at, text: content.join('') }) +
    ev('response.completed', { response: { id: 'resp_1', status: 'completed', output: [] } });
}

function transform(operation: Operation, wire: string, scanner: ReturnType<typeof createScanner>): string {
  const framing = operation === 'ollama_chat' ? 'ndjson' : 'sse';
  const masking = new MaskingStreamTransform({ operation, framing, scanner, session: new MaskingSession({ hashKey: 'k'.repeat(32) }), rules });
  const decoder = framing === 'sse' ? new SseDecoder() : new NdjsonDecoder();
  let out = '';
  for (const frame of [...decoder.push(wire), ...decoder.end()]) out += masking.push(frame).join('');
  return out + masking.end().join('');
}

describe('the fast keyword pass streams the same bytes as the RE2 pass', () => {
  for (const { name, fast, re2 } of pairs) {
    test(`${name}: chat (content, reasoning, tool-call arguments), Ollama, Responses`, (t) => {
      const run = propertyRun(60);
      t.diagnostic(`fast-check seed ${run.seed} (replay: FAST_CHECK_SEED=${run.seed})`);
      fc.assert(
        fc.property(field, field, field, (content, reasoning, argText) => {
          const args = deltas(JSON.stringify({ to: argText.join('') }).replaceAll('@', '\\u0040'), argText.map((d) => d.length * 7));
          for (const [operation, wire] of [['chat', chatWire(content, reasoning, args)], ['ollama_chat', ollamaWire(content)], ['response', responsesWire(content)]] as const) {
            assert.equal(transform(operation, wire, fast), transform(operation, wire, re2), `${operation} stream differs`);
          }
        }),
        run,
      );
    });
  }
});
