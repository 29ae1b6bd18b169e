// Detection sees a normalised copy (NFKC, invisible characters removed, odd
// spaces as spaces, %40 as @) and reports spans on the ORIGINAL text: masking
// replaces exactly the original characters and leaves the text around them.
import assert from 'node:assert/strict';
import { describe, it, test } from 'node:test';
import fc from 'fast-check';
import { normaliseForDetection, toOriginal } from '../../src/detect/normalise.js';
import { createScanner } from '../../src/detect/scanner.js';
import type { EntityType } from '../../src/detect/types.js';
import { maskText } from '../../src/mask/mask-text.js';
import { MaskingSession } from '../../src/mask/session.js';

const scanner = createScanner();
const found = (text: string): Array<[EntityType, string]> => scanner.scan(text).map((s) => [s.type, text.slice(s.start, s.end)]);
/** The text with every span replaced by its placeholder, as input masking does. */
const masked = (text: string): string =>
  maskText(text, scanner.scan(text), new MaskingSession(), (span) => ({ action: 'mask', rule: span.rule, strategy: { kind: 'placeholder' } })).text;

describe('normaliseForDetection', () => {
  test('plain ASCII costs nothing: no copy is made', () => {
    assert.equal(normaliseForDetection('mail jane@example.com, card 4111 1111 1111 1111'), undefined);
    assert.equal(normaliseForDetection('café 東京'), undefined, 'already NFKC, nothing invisible: no copy');
  });

  test('each copied character maps back to the characters it came from', () => {
    const text = 'a\u200bb\u00a0ｃ%40e\u0301ﬁ';
    const n = normaliseForDetection(text)!;
    assert.equal(n.text, 'ab c@éfi');
    const back = (i: number) => text.slice(n.sourceStart(i), n.sourceEnd(i));
    assert.deepEqual([...n.text].map((_, i) => back(i)), ['a', 'b', '\u00a0', 'ｃ', '%40', 'e\u0301', 'ﬁ', 'ﬁ']);
    assert.deepEqual(toOriginal(n, 1, 4), { start: 2, end: 5 }, 'the copy\'s "b c" is the original from b to ｃ');
  });

  test('variation selectors and bidi controls vanish without taking their base character', () => {
    assert.equal(normaliseForDetection('1\ufe0f2\u202e3\u2066')!.text, '123');
  });
});

describe('detection on the normalised copy, masking on the original', () => {
  const cases: Array<[string, string, EntityType, string, string]> = [
    // label, text, type, the original characters found, the masked text
    ['card with no-break spaces', 'Card: 4111\u00a01111\u00a01111\u00a01111 ok', 'CREDIT_CARD', '4111\u00a01111\u00a01111\u00a01111', 'Card: [CREDIT_CARD_1] ok'],
    ['card with thin spaces', 'pay 4111\u20091111\u20091111\u20091111.', 'CREDIT_CARD', '4111\u20091111\u20091111\u20091111', 'pay [CREDIT_CARD_1].'],
    ['card with narrow no-break spaces', 'pay 4111\u202f1111\u202f1111\u202f1111.', 'CREDIT_CARD', '4111\u202f1111\u202f1111\u202f1111', 'pay [CREDIT_CARD_1].'],
    ['full-width card digits', 'カード４１１１ １１１１ １１１１ １１１１です', 'CREDIT_CARD', '４１１１ １１１１ １１１１ １１１１', 'カード[CREDIT_CARD_1]です'],
    ['card split by zero-width spaces', 'n 4111\u200b1111\u200b1111\u200b1111 x', 'CREDIT_CARD', '4111\u200b1111\u200b1111\u200b1111', 'n [CREDIT_CARD_1] x'],
    ['card digits each split by a zero-width joiner', 'n 4\u200d1\u200d1\u200d1\u200d1\u200d1\u200d1\u200d1\u200d1\u200d1\u200d1\u200d1\u200d1\u200d1\u200d1\u200d1 x', 'CREDIT_CARD', '4\u200d1\u200d1\u200d1\u200d1\u200d1\u200d1\u200d1\u200d1\u200d1\u200d1\u200d1\u200d1\u200d1\u200d1\u200d1', 'n [CREDIT_CARD_1] x'],
    ['full-width email', 'mail ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ now', 'EMAIL', 'ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ', 'mail [EMAIL_1] now'],
    ['email with a soft hyphen', 'mail jane\u00addoe@example.com now', 'EMAIL', 'jane\u00addoe@example.com', 'mail [EMAIL_1] now'],
    ['percent-encoded email', 'GET /u?email=jane.doe%40example.com&x=1', 'EMAIL', 'jane.doe%40example.com', 'GET /u?email=[EMAIL_1]&x=1'],
    ['IBAN with no-break spaces', 'IBAN DE89\u00a03704\u00a00044\u00a00532\u00a00130\u00a000 ok', 'IBAN', 'DE89\u00a03704\u00a00044\u00a00532\u00a00130\u00a000', 'IBAN [IBAN_1] ok'],
    ['secret split by a zero-width space', `token ghp_${'R4nd0mT0k3nV4lu3s'}\u200b${'Ar3L0ng3n0ugh1234ab'} end`, 'GITHUB_TOKEN', `ghp_R4nd0mT0k3nV4lu3s\u200bAr3L0ng3n0ugh1234ab`, 'token [GITHUB_TOKEN_1] end'],
  ];
  for (const [label, text, type, original, expected] of cases) {
    test(label, () => {
      assert.deepEqual(found(text), [[type, original]]);
      assert.equal(masked(text), expected);
    });
  }
});

describe('formats found beyond ASCII conventions', () => {
  const cases: Array<[string, string, Array<[EntityType, string]>]> = [
    ['an email directly followed by Chinese', '请联系jane.doe@example.com获取详情', [['EMAIL', 'jane.doe@example.com']]],
    ['an email directly followed by Japanese', 'メールはjane@example.co.jpまでお願いします', [['EMAIL', 'jane@example.co.jp']]],
    ['an email followed by Korean', '이메일jane@example.com으로', [['EMAIL', 'jane@example.com']]],
    ['an email followed by a CJK full stop', '邮箱：jane@example.com。', [['EMAIL', 'jane@example.com']]],
    ['an email right after a label and a colon', 'Email:jane@example.com', [['EMAIL', 'jane@example.com']]],
    ['an internationalised address stays whole', '联系 用户@例子.中国 吧', [['EMAIL', '用户@例子.中国']]],
    ['a lower-case IBAN', 'iban de89 3704 0044 0532 0130 00 please', [['IBAN', 'de89 3704 0044 0532 0130 00']]],
    ['a compact lower-case IBAN', 'to gb82west12345698765432.', [['IBAN', 'gb82west12345698765432']]],
    ['a card with mixed separators', 'card 4111 1111-1111 1111 ok', [['CREDIT_CARD', '4111 1111-1111 1111']]],
    ['a card glued to "No."', 'Card No.4111111111111111 exp 05/27', [['CREDIT_CARD', '4111111111111111']]],
    ['a grouped card glued to "No."', 'Card No.4111 1111 1111 1111', [['CREDIT_CARD', '4111 1111 1111 1111']]],
    ['a card glued to "#"', 'card#4111111111111111', [['CREDIT_CARD', '4111111111111111']]],
  ];
  for (const [label, text, expected] of cases) test(label, () => assert.deepEqual(found(text), expected));

  const nearMisses: Array<[string, string]> = [
    ['a decimal is not a card', 'pi is 0.4111111111111111 roughly'],
    ['a card-like run inside a word is not a card', 'id abc4111111111111111'],
    ['a lower-case word that happens to be country+digits is not an IBAN', 'see de89 for details'],
    ['URL credentials are not an email', 'git clone https://deploy:hunter2@example.com/repo.git'],
  ];
  for (const [label, text] of nearMisses) test(label, () => assert.deepEqual(found(text).filter(([t]) => t === 'CREDIT_CARD' || t === 'IBAN' || t === 'EMAIL'), []));
});

describe('offset mapping (property-based)', () => {
  const pool = ['a', 'Z', '4', ' ', '@', '.', '%40', '%4', '%', '\u200b', '\u00ad', '\u202e', '\u00a0', '\u2009', '４', 'ｊ', 'ﬁ', 'e\u0301', '\u0301', '東', '😀', '\ufe0f', '①'];
  it('maps every copied character to a non-empty, ordered slice of the original', () => {
    fc.assert(fc.property(fc.array(fc.constantFrom(...pool), { maxLength: 40 }), (pieces) => {
      const text = pieces.join('');
      const n = normaliseForDetection(text);
      if (n === undefined) return;
      let previousStart = 0;
      for (let i = 0; i < n.text.length; i++) {
        const [start, end] = [n.sourceStart(i), n.sourceEnd(i)];
        assert.ok(start >= previousStart && start < end && end <= text.length, `${JSON.stringify(text)} copy[${i}] → ${start}..${end}`);
        previousStart = start;
      }
      // Nothing visible is lost: the copy is canonically equivalent to the NFKC of the text without invisible
      // characters (and %40 read as @); a mark right after an invisible character is not composed across it.
      const expected = text.replace(/%40/g, '@').replace(/[\u200b\u00ad\u202e\ufe0f]/g, '').normalize('NFKC').replace(/\s/g, ' ');
      assert.equal(n.text.normalize('NFD'), expected.normalize('NFD'), JSON.stringify(text));
    }), { numRuns: 500 });
  });
});
