// Tool-call arguments are JSON text: detection must see what the client
// decodes (`\u0040` is `@`), and the masked text must stay valid JSON that
// decodes to the masked values, however the text is cut into deltas.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createScanner } from '../../src/detect/scanner.js';
import { JsonEscapeDecoder, JsonTextMasker } from '../../src/mask/json-text.js';
import { MaskingSession } from '../../src/mask/session.js';
import type { SpanRules } from '../../src/mask/types.js';

const scanner = createScanner();
const rules: SpanRules = () => ({ action: 'mask', rule: 'all', strategy: { kind: 'placeholder' } });

function maskInPieces(pieces: string[]): string {
  const masker = new JsonTextMasker({ scanner, session: new MaskingSession(), rules });
  return pieces.map((p) => masker.push(p)).join('') + masker.flush();
}

const ARGS = String.raw`{"to":"jane\u002edoe\u0040example.com","note":"say \"hi\"\nthen\\go","card":"4111\u00201111 1111 1111","emoji":"\ud83d\ude00"}`;

describe('JSON text masking (tool-call arguments)', () => {
  test('the decoder turns escapes into characters, except those that would change the structure', () => {
    const decoder = new JsonEscapeDecoder();
    assert.equal(decoder.push(String.raw`{"a":"x\u0040y\n\"\\\ud83d"}`) + decoder.flush(), '{"a":"x@y\n\\"\\\\\\ud83d"}');
  });

  test('escaped entities are masked; the result is valid JSON with the masked values', () => {
    const out = maskInPieces([ARGS]);
    const parsed = JSON.parse(out) as Record<string, string>;
    assert.equal(parsed.to, '[EMAIL_1]');
    assert.equal(parsed.card, '[CREDIT_CARD_1]');
    assert.equal(parsed.note, 'say "hi"\nthen\\go');
    assert.equal(parsed.emoji, '😀');
  });

  test('cut at every pair of boundaries (inside escapes too), the result is the same', () => {
    const whole = maskInPieces([ARGS]);
    for (let i = 1; i < ARGS.length; i++) {
      for (let j = i; j < ARGS.length; j += 3) {
        const pieces = i === j ? [ARGS.slice(0, i), ARGS.slice(i)] : [ARGS.slice(0, i), ARGS.slice(i, j), ARGS.slice(j)];
        assert.equal(maskInPieces(pieces), whole, `cut at ${i} and ${j}`);
      }
    }
  });
});
