// The stream masker against the ways peer gateways leak: entities released
// piecemeal, a PEM block sent before its END line, surrogate pairs split,
// and, for fixed samples, every possible chunk boundary.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createScanner } from '../../src/detect/scanner.js';
import type { Span } from '../../src/detect/types.js';
import { MaskingSession } from '../../src/mask/session.js';
import { StreamMasker } from '../../src/mask/stream-masker.js';
import type { EntityScanner, SpanRules } from '../../src/mask/types.js';
import { maskAll, scannersUnderTest, splitAt, streamMask, wholeMask } from './scanners.js';
import { createTestScanner } from './test-scanner.js';

const scanners = await scannersUnderTest();

const CARD = '4111 1111 1111 1111';
const EMAIL = 'jane.doe@example.com';
const IBAN = 'DE89 3704 0044 0532 0130 00';
const PEM = [
  '-----BEGIN RSA PRIVATE KEY-----',
  'MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu',
  'KUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQ==',
  '-----END RSA PRIVATE KEY-----',
].join('\n');
/** Enough prose in front that the fixed holdback has to slide, not just hold everything. */
const PROSE = 'The quick brown fox jumps over the lazy dog, again and again, while the report is written. '.repeat(5);

const endOnKeys: SpanRules = (span) =>
  span.type === 'PRIVATE_KEY' ? { action: 'end_stream', rule: 'no-private-keys' } : { action: 'mask', rule: 'mask-pii', strategy: { kind: 'placeholder' } };

/** Every prefix of the output must be free of the raw entity and of any 6-character piece of it. */
function assertNeverReleased(pieces: readonly string[], secret: string, label: string): void {
  let released = '';
  for (const piece of pieces) {
    released += piece;
    assert.ok(!released.includes(secret), `${label}: released the entity: ${JSON.stringify(released.slice(-80))}`);
  }
}

for (const { name, scanner } of scanners) {
  describe(`StreamMasker (${name})`, () => {
    test('a card written in groups and streamed one group at a time is never released in part', () => {
      const text = `${PROSE}Pay with ${CARD} today.`;
      const chunks = splitAt(text, [...text.matchAll(/ /g)].map((m) => m.index + 1));
      const result = streamMask(scanner, chunks);
      assert.equal(result.text, wholeMask(scanner, text).text);
      assert.match(result.text, /Pay with \[CREDIT_CARD_1\] today\./);
      for (const group of ['4111 1111', '1111 1111 1111']) assertNeverReleased(result.pieces, group, 'card groups');
    });

    test('a PEM block is not released before its END line: the stream ends first, with the rule named', () => {
      const text = `${PROSE}Here is the key:\n${PEM}\nKeep it safe.`;
      const lines = splitAt(text, [...text.matchAll(/\n/g)].map((m) => m.index + 1));
      const result = streamMask(scanner, lines, endOnKeys);
      assert.deepEqual(result.termination, { rule: 'no-private-keys', type: 'PRIVATE_KEY' });
      assert.equal(result.text, `${PROSE}Here is the key:\n`);
      assert.deepEqual(result, { ...wholeMask(scanner, text, endOnKeys), pieces: result.pieces });
    });

    test('a PEM block that is masked rather than ending the stream comes out whole as one placeholder', () => {
      const text = `${PROSE}key:\n${PEM}\ndone`;
      const result = streamMask(scanner, [...text]);
      assert.equal(result.text, `${PROSE}key:\n[PRIVATE_KEY_1]\ndone`);
      assertNeverReleased(result.pieces, '-----BEGIN', 'PEM header');
    });

    test('a surrogate pair split across deltas is never released in halves', () => {
      const text = `${PROSE}😀${EMAIL}😀 ok 👋🏽`;
      // One UTF-16 code unit per delta: every pair arrives split.
      const units = Array.from({ length: text.length }, (_, i) => text[i]!);
      const result = streamMask(scanner, units);
      assert.equal(result.text, wholeMask(scanner, text).text);
      for (const piece of result.pieces) {
        assert.ok(!/^[\uDC00-\uDFFF]/.test(piece) && !/[\uD800-\uDBFF]$/.test(piece), `piece splits a pair: ${JSON.stringify(piece)}`);
      }
    });

    test('a lone high surrogate at the very end is still flushed', () => {
      const result = streamMask(scanner, ['abc', '\uD83D']);
      assert.equal(result.text, 'abc\uD83D');
    });

    for (const [label, entity] of [
      ['card with spaces', CARD],
      ['email', EMAIL],
      ['IBAN with spaces', IBAN],
      ['PEM block', PEM],
      ['email between emoji', `😀${EMAIL}🎉`],
    ] as const) {
      test(`${label}: splitting at every single boundary, and into single characters, matches whole-text masking`, () => {
        const text = `${PROSE}before ${entity} after`;
        const expected = wholeMask(scanner, text);
        assert.ok(!expected.text.includes(entity.replace(/[😀🎉]/gu, '')), 'the reference masks the entity');
        for (let cut = 1; cut < text.length; cut++) {
          const result = streamMask(scanner, [text.slice(0, cut), text.slice(cut)]);
          assert.equal(result.text, expected.text, `split at ${cut}`);
        }
        const units = Array.from({ length: text.length }, (_, i) => text[i]!);
        const result = streamMask(scanner, units);
        assert.equal(result.text, expected.text);
        assertNeverReleased(result.pieces, entity.replace(/[😀🎉]/gu, '').slice(0, 12), label);
      });
    }

    test('the same value gets the same placeholder across streams of one session', () => {
      const session = new MaskingSession();
      const a = streamMask(scanner, [`mail ${EMAIL} and `, `${CARD}.`], maskAll, session);
      const b = streamMask(scanner, [`card ${CARD.replace(/ /g, '-')}, mail `, `${EMAIL.toUpperCase()} `], maskAll, session);
      assert.equal(a.text, 'mail [EMAIL_1] and [CREDIT_CARD_1].');
      assert.equal(b.text, 'card [CREDIT_CARD_1], mail [EMAIL_1] ');
    });
  });
}

describe('StreamMasker holdback', () => {
  test('without undecidedFrom it holds back at most maxEntityLength + contextLength characters', () => {
    const scanner = createTestScanner({ pemBodyMax: 60 });
    const bound = scanner.maxEntityLength + scanner.contextLength;
    const masker = new StreamMasker({ scanner, session: new MaskingSession(), rules: maskAll });
    for (const word of PROSE.repeat(3).split(/(?<= )/)) {
      masker.push(word);
      assert.ok(masker.heldLength <= bound + 1, `held ${masker.heldLength} > ${bound}`);
    }
  });

  test('with undecidedFrom, plain prose is released as soon as a word ends', () => {
    const scanner = createTestScanner({ withUndecidedFrom: true });
    const masker = new StreamMasker({ scanner, session: new MaskingSession(), rules: maskAll });
    assert.equal(masker.push('Hello '), 'Hello ');
    assert.equal(masker.push('wor'), '');
    assert.equal(masker.push('ld, '), 'world, ');
    assert.equal(masker.push('mail bob@'), 'mail ');
    assert.equal(masker.push('example.com'), '');
    assert.equal(masker.push(' now'), '[EMAIL_1] ');
    assert.equal(masker.flush(), 'now');
  });

  test('ignored types pass through unmasked, exactly as whole-text masking leaves them', () => {
    const scanner = createTestScanner({ withUndecidedFrom: true });
    const cardsOnly: SpanRules = (span) => (span.type === 'CREDIT_CARD' ? { action: 'mask', rule: 'cards', strategy: { kind: 'partial', keepLast: 4 } } : undefined);
    const text = `${EMAIL} paid with ${CARD}.`;
    const result = streamMask(scanner, [...text], cardsOnly);
    assert.equal(result.text, `${EMAIL} paid with ****1111.`);
  });

  test('a span the scanner reports across already-released text still has its unreleased part masked', () => {
    // A scanner that breaks its locality promise: it finds "SECRET..." only once it sees "!".
    const liar: EntityScanner = {
      maxEntityLength: 4,
      contextLength: 0,
      scan: (text: string): Span[] => {
        const match = /SECRETVALUE!/.exec(text);
        return match ? [{ type: 'GENERIC_SECRET', start: match.index, end: match.index + match[0].length, confidence: 1, rule: 'secret.test' }] : [];
      },
    };
    const masker = new StreamMasker({ scanner: liar, session: new MaskingSession(), rules: maskAll, leftContext: 100 });
    const released = ['xx SECRET', 'VALUE', '!', ' tail'].map((delta) => masker.push(delta)).join('') + masker.flush();
    assert.match(released, /^xx SECRETV\[GENERIC_SECRET_1\] tail$/, 'what was still held of the span is masked');
  });

  test('push after flush is a programming error', () => {
    const masker = new StreamMasker({ scanner: createTestScanner(), session: new MaskingSession(), rules: maskAll });
    masker.flush();
    assert.throws(() => masker.push('x'), /after flush/);
  });

  test('after a termination nothing more is released', () => {
    const scanner = createTestScanner({ withUndecidedFrom: true });
    const masker = new StreamMasker({ scanner, session: new MaskingSession(), rules: endOnKeys });
    assert.equal(masker.push(`ok\n${PEM}\n`), 'ok\n');
    assert.deepEqual(masker.termination, { rule: 'no-private-keys', type: 'PRIVATE_KEY' });
    assert.equal(masker.push('more text'), '');
    assert.equal(masker.flush(), '');
  });
});

describe('StreamMasker on long answers (real scanner, window from the release point)', () => {
  /** More released text than the largest entity (a private key, 16K characters) before anything interesting. */
  const LONG = 'The quarterly report covers revenue, costs and the outlook for next year in some detail. '.repeat(220);
  /** Chunks the way a model streams: a few characters at a time, each entity cut at `inside` too. */
  const modelChunks = (text: string, inside: readonly number[]): string[] =>
    splitAt(text, [...Array.from({ length: Math.ceil(text.length / 7) }, (_, i) => (i + 1) * 7), ...inside]);

  /** The real scanner, remembering the longest window the masker asked it about. */
  function watchedScanner(): { scanner: EntityScanner; longest: () => number } {
    const real = createScanner();
    let longest = 0;
    const scanner: EntityScanner = {
      maxEntityLength: real.maxEntityLength,
      contextLength: real.contextLength,
      lookbehindLength: real.lookbehindLength,
      scan: (text) => real.scan(text),
      scanFrom: (text, from) => {
        longest = Math.max(longest, text.length);
        return real.scanFrom(text, from);
      },
      undecidedFrom: (text, from) => {
        longest = Math.max(longest, text.length);
        return real.undecidedFrom(text, from);
      },
    };
    return { scanner, longest: () => longest };
  }

  for (const [label, entity, cutsInside] of [
    ['a card', CARD, [3, 7, 12]],
    ['an email', EMAIL, [4, 9, 15]],
  ] as const) {
    test(`${label} split across frames after ${LONG.length} characters is masked as whole-text masking masks it, and the window stays small`, () => {
      const text = `${LONG}Send it to ${entity} before noon, then ${entity}.`;
      const at = LONG.length + 'Send it to '.length;
      const { scanner, longest } = watchedScanner();
      const result = streamMask(scanner, modelChunks(text, cutsInside.map((c) => at + c)));
      assert.equal(result.text, wholeMask(createScanner(), text).text);
      assert.ok(!result.text.includes(entity));
      assertNeverReleased(result.pieces, entity.slice(0, 8), label);
      // Released text is kept only as the scanner's lookbehind, not as maxEntityLength (16K) of it.
      const bound = 2 * scanner.lookbehindLength! + 16 + 64;
      assert.ok(longest() <= bound, `the scanner saw a ${longest()}-character window (bound ${bound})`);
    });
  }

  test('a PEM private key streamed over many frames after a long answer is never released and ends the stream', () => {
    const text = `${LONG}Here is the key:\n${PEM}\nKeep it safe.`;
    const { scanner } = watchedScanner();
    const result = streamMask(scanner, modelChunks(text, []), endOnKeys);
    assert.deepEqual(result.termination, { rule: 'no-private-keys', type: 'PRIVATE_KEY' });
    assert.equal(result.text, `${LONG}Here is the key:\n`);
    assertNeverReleased(result.pieces, '-----BEGIN', 'PEM header');
  });

  test('a PEM private key masked rather than ending the stream comes out as one placeholder after a long answer', () => {
    const text = `${LONG}key:\n${PEM}\ndone`;
    const { scanner } = watchedScanner();
    const result = streamMask(scanner, modelChunks(text, []));
    assert.equal(result.text, `${LONG}key:\n[PRIVATE_KEY_1]\ndone`);
    assert.equal(result.text, wholeMask(createScanner(), text).text);
    for (const line of PEM.split('\n')) assertNeverReleased(result.pieces, line.slice(0, 20), 'PEM line');
  });
});
