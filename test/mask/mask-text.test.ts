// Strategies, session consistency, whole-text masking and non-streamed
// response bodies.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Span } from '../../src/detect/types.js';
import { maskText } from '../../src/mask/mask-text.js';
import { maskResponseBody } from '../../src/mask/response-body.js';
import { canonicalValue, MaskingSession, partialMask } from '../../src/mask/session.js';
import type { SpanRules } from '../../src/mask/types.js';
import { maskAll } from './scanners.js';
import { createTestScanner } from './test-scanner.js';

const KEY = 'a-very-secret-masking-key-0123456789';
const CARD = '4111 1111 1111 1111';
const EMAIL = 'jane.doe@example.com';
const span = (type: Span['type'], start: number, end: number): Span => ({ type, start, end, confidence: 0.9, rule: `test.${type.toLowerCase()}` });

describe('masking strategies', () => {
  test('placeholders are numbered per type and reused for the same value, however it is written', () => {
    const session = new MaskingSession();
    const placeholder = { kind: 'placeholder' } as const;
    assert.equal(session.replacement('EMAIL', EMAIL, placeholder), '[EMAIL_1]');
    assert.equal(session.replacement('CREDIT_CARD', CARD, placeholder), '[CREDIT_CARD_1]');
    assert.equal(session.replacement('EMAIL', 'other@example.com', placeholder), '[EMAIL_2]');
    assert.equal(session.replacement('EMAIL', 'Jane.Doe@Example.com', placeholder), '[EMAIL_1]');
    assert.equal(session.replacement('CREDIT_CARD', '4111-1111-1111-1111', placeholder), '[CREDIT_CARD_1]');
    assert.equal(new MaskingSession().replacement('EMAIL', 'other@example.com', placeholder), '[EMAIL_1]', 'numbering is per session');
  });

  test('partial masking keeps the last letters or digits only when there are enough to hide', () => {
    assert.equal(partialMask(CARD, 4), '****1111');
    assert.equal(partialMask('123-45-6789', 4), '****6789');
    assert.equal(partialMask('a@b.co', 4), '****');
    assert.equal(partialMask(CARD, 0), '****');
  });

  test('the keyed hash is an HMAC: stable for a key and value, different under another key, and refused without a key', () => {
    const hash = { kind: 'hash', length: 8 } as const;
    const a = new MaskingSession({ hashKey: KEY }).replacement('EMAIL', EMAIL, hash);
    assert.match(a, /^\[EMAIL:[0-9a-f]{8}\]$/);
    assert.equal(new MaskingSession({ hashKey: KEY }).replacement('EMAIL', EMAIL.toUpperCase(), hash), a, 'stable across sessions and spellings');
    assert.notEqual(new MaskingSession({ hashKey: `${KEY}x` }).replacement('EMAIL', EMAIL, hash), a);
    assert.throws(() => new MaskingSession().replacement('EMAIL', EMAIL, hash), /hash key/);
  });

  test('canonical values ignore separators for card-like types only', () => {
    assert.equal(canonicalValue('IBAN', 'de89 3704'), 'DE893704');
    assert.equal(canonicalValue('GENERIC_SECRET', 'Ab-C'), 'Ab-C');
  });
});

describe('maskText', () => {
  const text = `mail ${EMAIL}, card ${CARD}.`;
  const spans = [span('EMAIL', 5, 5 + EMAIL.length), span('CREDIT_CARD', 32, 32 + CARD.length)];

  test('replaces each span the rules act on, and reports what it did', () => {
    const masked = maskText(text, spans, new MaskingSession(), maskAll);
    assert.equal(masked.text, 'mail [EMAIL_1], card [CREDIT_CARD_1].');
    assert.deepEqual(
      masked.applied.map((a) => a.span.type),
      ['EMAIL', 'CREDIT_CARD'],
    );
  });

  test('spans the rules ignore stay as they are', () => {
    const cardsOnly: SpanRules = (s) => (s.type === 'CREDIT_CARD' ? { action: 'mask', rule: 'cards', strategy: { kind: 'placeholder' } } : undefined);
    assert.equal(maskText(text, spans, new MaskingSession(), cardsOnly).text, `mail ${EMAIL}, card [CREDIT_CARD_1].`);
  });

  test('an end_stream rule stops at the span: the text before it, and the rule', () => {
    const endOnCards: SpanRules = (s) => (s.type === 'CREDIT_CARD' ? { action: 'end_stream', rule: 'no-cards' } : { action: 'mask', rule: 'm', strategy: { kind: 'placeholder' } });
    const masked = maskText(text, spans, new MaskingSession(), endOnCards);
    assert.equal(masked.text, 'mail [EMAIL_1], card ');
    assert.deepEqual(masked.termination, { rule: 'no-cards', type: 'CREDIT_CARD' });
  });

  test('overlapping spans (a broken scanner) still leave nothing uncovered', () => {
    const masked = maskText('abcdefgh', [span('CUSTOM', 1, 4), span('CUSTOM', 3, 6)], new MaskingSession(), maskAll);
    assert.equal(masked.text, 'a[CUSTOM_1][CUSTOM_2]gh');
  });
});

describe('maskResponseBody', () => {
  const masking = { scanner: createTestScanner(), session: new MaskingSession(), rules: maskAll };

  test('chat: content, reasoning, refusal and tool-call arguments; logprobs dropped', () => {
    const body = {
      id: 'c',
      object: 'chat.completion',
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: `mail ${EMAIL}`,
            reasoning_content: `card ${CARD}`,
            tool_calls: [{ id: 't', type: 'function', function: { name: 'f', arguments: JSON.stringify({ to: EMAIL }) } }],
          },
          logprobs: { content: [{ token: 'mail', logprob: 0 }] },
          finish_reason: 'stop',
        },
      ],
    };
    const { decisions, termination } = maskResponseBody(body, 'chat', masking);
    const choice = body.choices[0]!;
    assert.equal(choice.message.content, 'mail [EMAIL_1]');
    assert.equal(choice.message.reasoning_content, 'card [CREDIT_CARD_1]');
    assert.equal(choice.message.tool_calls[0]!.function.arguments, '{"to":"[EMAIL_1]"}');
    assert.equal(choice.logprobs, null);
    assert.equal(termination, undefined);
    const reasoning = decisions.decisions.find((d) => d.span?.path.includes('reasoning_content'));
    assert.deepEqual(reasoning?.span, { path: ['choices', 0, 'message', 'reasoning_content'], start: 5, end: 5 + CARD.length });
  });

  test('completions, Responses and Ollama bodies', () => {
    const completion = { choices: [{ index: 0, text: `x ${EMAIL}` }] };
    maskResponseBody(completion, 'completion', masking);
    assert.equal(completion.choices[0]!.text, 'x [EMAIL_1]');

    const response = {
      output: [
        { type: 'message', content: [{ type: 'output_text', text: `card ${CARD}`, annotations: [] }] },
        { type: 'function_call', name: 'f', arguments: JSON.stringify({ card: CARD }) },
        { type: 'reasoning', summary: [{ type: 'summary_text', text: EMAIL }] },
      ],
    };
    maskResponseBody(response, 'response', masking);
    assert.deepEqual(response.output.map((item) => JSON.stringify(item)).join(' ').match(/\[[A-Z_]+_\d\]/g), ['[CREDIT_CARD_1]', '[CREDIT_CARD_1]', '[EMAIL_1]']);

    const chat = { message: { role: 'assistant', content: EMAIL, tool_calls: [{ function: { name: 'f', arguments: { card: CARD } } }] }, done: true };
    maskResponseBody(chat, 'ollama_chat', masking);
    assert.equal(chat.message.content, '[EMAIL_1]');
    assert.deepEqual(chat.message.tool_calls[0]!.function.arguments, { card: '[CREDIT_CARD_1]' });

    const generate: Record<string, unknown> = { response: `to ${EMAIL}`, done: true, context: [1, 2] };
    maskResponseBody(generate, 'ollama_generate', masking);
    assert.deepEqual(generate, { response: 'to [EMAIL_1]', done: true });
  });

  test('an end_stream entity withholds the response', () => {
    const endOnCards: SpanRules = (s) => (s.type === 'CREDIT_CARD' ? { action: 'end_stream', rule: 'no-cards' } : undefined);
    const result = maskResponseBody({ choices: [{ index: 0, message: { content: `card ${CARD}` } }] }, 'chat', { ...masking, rules: endOnCards });
    assert.deepEqual(result.termination, { rule: 'no-cards', type: 'CREDIT_CARD' });
  });
});
