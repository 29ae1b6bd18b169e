import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { resolveOverlaps } from '../../src/detect/overlap.js';
import { createScanner } from '../../src/detect/scanner.js';
import { BUILTIN_ENTITY_TYPES, type Span } from '../../src/detect/types.js';
import { BASE62, BASE64, defaultScanner, entities, randomChars } from './helpers.js';

const span = (start: number, end: number, confidence: number, rule = 'r'): Span => ({ type: 'CUSTOM', start, end, confidence, rule });

describe('overlap resolution', () => {
  it('keeps the more confident span, then the longer, then the earlier', () => {
    assert.deepEqual(resolveOverlaps([span(0, 10, 0.5, 'long'), span(2, 5, 0.9, 'sure')]).map((s) => s.rule), ['sure']);
    assert.deepEqual(resolveOverlaps([span(2, 5, 0.8, 'short'), span(0, 10, 0.8, 'long')]).map((s) => s.rule), ['long']);
    assert.deepEqual(resolveOverlaps([span(3, 8, 0.8, 'later'), span(0, 5, 0.8, 'earlier')]).map((s) => s.rule), ['earlier']);
  });
  it('returns non-overlapping spans sorted by start, keeping spans that only touch', () => {
    const result = resolveOverlaps([span(10, 12, 0.5), span(0, 5, 0.5), span(5, 10, 0.5), span(4, 6, 0.1)]);
    assert.deepEqual(result.map((s) => [s.start, s.end]), [[0, 5], [5, 10], [10, 12]]);
  });
  it('lets a provider key win over the generic assignment that holds it', () => {
    const key = `sk-ant-api03-${randomChars(`${BASE62}_-`, 93, 1)}AA`;
    assert.deepEqual(entities(`api_key="${key}"`), [['ANTHROPIC_KEY', key]]);
  });
});

describe('offsets', () => {
  it('are UTF-16 indices, correct around emoji and other astral characters', () => {
    const text = '😀👍🏽 mail 𝒜 ana@example.com then 🇫🇷 +33 6 38 29 47 88 🎉 card 4945 8073 0215 7365';
    const found = defaultScanner.scan(text);
    assert.deepEqual(found.map((s) => text.slice(s.start, s.end)), ['ana@example.com', '+33 6 38 29 47 88', '4945 8073 0215 7365']);
    assert.equal(text.slice(0, found[0]!.start), '😀👍🏽 mail 𝒜 ');
  });
  it('are correct in text that mixes scripts and combining marks', () => {
    const text = 'Ünïcödé naïve façade — contact: élise@exemple.fr, IBAN FR14 2004 1010 0505 0001 3M02 606';
    assert.deepEqual(entities(text).map(([, v]) => v), ['élise@exemple.fr', 'FR14 2004 1010 0505 0001 3M02 606']);
  });
});

describe('keywords outside ASCII', () => {
  // Text outside ASCII that normalisation leaves as it is must not take the ASCII keyword pass, which does not
  // know these keywords: with it, a French birth date and an Aadhaar number named in Devanagari went unmasked.
  it('gate their detectors in text that needs no normalisation', () => {
    for (const scanner of [defaultScanner, createScanner({ keywordPass: 're2' })]) {
      assert.deepEqual(entities('né le 12/03/1985', scanner), [['DATE_OF_BIRTH', '12/03/1985']]);
      assert.deepEqual(entities('x née le 12/03/1985', scanner), [['DATE_OF_BIRTH', '12/03/1985']]);
      assert.deepEqual(entities('आधार 2345 6789 0124', scanner), [['NATIONAL_ID', '2345 6789 0124']]);
    }
  });
});

describe('scanner options', () => {
  it('detects only the requested types', () => {
    const scanner = createScanner({ types: ['EMAIL'] });
    assert.deepEqual(scanner.types, ['EMAIL']);
    assert.deepEqual(entities('bob@example.com 4945 8073 0215 7365', scanner), [['EMAIL', 'bob@example.com']]);
  });
  it('rejects unknown types', () => {
    assert.throws(() => createScanner({ types: ['NOPE' as never] }), /not a built-in entity type/);
  });
  it('bounds every built-in type and reports a lookahead for the streaming masker', () => {
    assert.equal(defaultScanner.maxEntityLength, 16 * 1024);
    assert.ok(defaultScanner.contextLength >= 2 && defaultScanner.contextLength <= 64);
    assert.deepEqual([...defaultScanner.types].sort(), [...BUILTIN_ENTITY_TYPES].sort());
    const emailOnly = createScanner({ types: ['EMAIL'] });
    assert.equal(emailOnly.maxEntityLength, 254);
  });
  it('returns nothing for empty text', () => {
    assert.deepEqual(defaultScanner.scan(''), []);
  });
});

// Realistic pieces: entities, near-misses, prose, separators and multi-byte characters.
const ENTITY_PIECES = [
  'ana@example.com', '+44 20 7946 0958', '(415) 555-0132', '4945 8073 0215 7365', '123-45-6788', 'DE89 3704 0044 0532 0130 00',
  '10.20.30.40', 'fe80::1', 'born on 12 March 1985', 'AKIA5T66TBPVOMYZAWKP', `ghp_${randomChars(BASE62, 36, 3)}`,
  `aws_secret_access_key = ${randomChars(BASE64, 40, 4)}`, 'password="Xy7!kq9#Lm2$vB"', 'SSN 536-22-1234', 'DNI 12345678Z',
  `sk-proj-${randomChars(BASE62, 48, 5)}`, 'BSN 111222333',
  // Found on the normalised copy, reported on the original characters.
  '4111\u00a01111\u20091111\u202f1111', '４１１１ １１１１ １１１１ １１１１', '4111\u200b1111\u200b1111\u200b1111', 'ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ',
  'jane.doe%40example.com', '联系jane@example.com获取', 'de89 3704 0044 0532 0130 00', 'No.4111111111111111', '4111 1111-1111 1111',
];
const NOISE_PIECES = [
  'the', 'quarterly', 'report', '2024', '14:05', 'v1.2.3', '4906 0443 1982 9657', '000-12-3456', 'ORD-12345678', 'sk-...', 'ghp_xxx',
  randomChars('0123456789abcdef', 40, 6), '3f2b1c4d-8e9a-4b7c-9d1e-2f3a4b5c6d7e', '😀', 'é', '\n', ',', '.', ':', '=', '"', '-',
  '\u200b', '\u00a0', '\u00ad', '\u202e', 'e\u0301', '\u0301', '%4', '%', 'ﬁ', '１', '東京',
];
const SEPARATORS = [' ', ' ', ' ', '\n', ', ', '. ', ' — ', ''];
const textArbitrary = fc.array(
  fc.tuple(fc.oneof(fc.constantFrom(...ENTITY_PIECES), fc.constantFrom(...NOISE_PIECES), fc.string({ maxLength: 6 })), fc.constantFrom(...SEPARATORS)),
  { minLength: 1, maxLength: 24 },
).map((parts) => parts.map(([piece, sep]) => piece + sep).join(''));

describe('scan invariants (property-based)', () => {
  it('returns sorted, non-overlapping, in-bounds spans no longer than maxEntityLength', () => {
    fc.assert(fc.property(textArbitrary, (text) => {
      const spans = defaultScanner.scan(text);
      let previousEnd = 0;
      for (const s of spans) {
        assert.ok(s.start >= previousEnd && s.end > s.start && s.end <= text.length);
        assert.ok(s.end - s.start <= defaultScanner.maxEntityLength);
        assert.ok(s.confidence > 0 && s.confidence <= 1);
        previousEnd = s.end;
      }
    }), { numRuns: 300 });
  });

  it('decides every span from lookbehindLength before it to contextLength after it (what the streaming masker relies on)', () => {
    fc.assert(fc.property(textArbitrary, (text) => {
      for (const s of defaultScanner.scan(text)) {
        const from = Math.max(0, s.start - defaultScanner.lookbehindLength);
        const to = Math.min(text.length, s.end + defaultScanner.contextLength);
        const window = defaultScanner.scan(text.slice(from, to)).map((w) => ({ ...w, start: w.start + from, end: w.end + from }));
        assert.ok(window.some((w) => w.start === s.start && w.end === s.end && w.type === s.type),
          `${s.type} ${JSON.stringify(text.slice(s.start, s.end))} not found in its window ${JSON.stringify(text.slice(from, to))}`);
      }
    }), { numRuns: 200 });
  });

  it('finds in every prefix the spans that end contextLength before the cut', () => {
    fc.assert(fc.property(textArbitrary, fc.nat(), (text, seed) => {
      const cut = text.length === 0 ? 0 : seed % (text.length + 1);
      const prefix = defaultScanner.scan(text.slice(0, cut));
      for (const s of defaultScanner.scan(text)) {
        if (s.end + defaultScanner.contextLength > cut) continue;
        assert.ok(prefix.some((p) => p.start === s.start && p.end === s.end && p.type === s.type),
          `${s.type} ${JSON.stringify(text.slice(s.start, s.end))} missing from prefix ${JSON.stringify(text.slice(0, cut))}`);
      }
    }), { numRuns: 200 });
  });
});

describe('undecidedFrom (streaming)', () => {
  const pem = `-----BEGIN PRIVATE KEY-----\n${randomChars(BASE64, 64, 60)}\n${randomChars(BASE64, 64, 61)}\n-----END PRIVATE KEY-----`;
  const pieces = fc.oneof(fc.constantFrom(...ENTITY_PIECES), fc.constantFrom(...NOISE_PIECES), fc.constant(pem), fc.constant(pem.slice(0, 40)), fc.string({ maxLength: 6 }));
  const streamArbitrary = fc.tuple(
    fc.array(fc.tuple(pieces, fc.constantFrom(...SEPARATORS)), { minLength: 1, maxLength: 14 }),
    fc.array(fc.tuple(pieces, fc.constantFrom(...SEPARATORS)), { minLength: 1, maxLength: 8 }),
    fc.nat(),
  ).map(([head, tail, cut]) => {
    const text = head.map(([p, s]) => p + s).join('');
    const more = tail.map(([p, s]) => p + s).join('');
    // Cut anywhere, also inside a piece.
    const at = cut % (text.length + 1);
    return { text: text.slice(0, at), more: text.slice(at) + more };
  });

  it('spans that start before it do not change whatever text follows', () => {
    fc.assert(fc.property(streamArbitrary, ({ text, more }) => {
      const from = defaultScanner.undecidedFrom(text);
      assert.ok(from >= 0 && from <= text.length);
      const before = (spans: Span[]) => spans.filter((s) => s.start < from).map((s) => `${s.type}:${s.start}-${s.end}`);
      assert.deepEqual(before(defaultScanner.scan(text + more)), before(defaultScanner.scan(text)),
        `text ${JSON.stringify(text)} + ${JSON.stringify(more)}, undecided from ${from}`);
    }), { numRuns: 300 });
  });

  it('releases prose promptly and holds back an open private key', () => {
    const prose = 'The quarterly numbers look fine overall and we will discuss them tomorrow ';
    assert.ok(defaultScanner.undecidedFrom(prose) >= prose.length - 120);
    // Each detector waits only for its own right context: prose without a digit near the end is not held for a
    // phone's eight characters of context, only for the two a date of birth needs (bench/visible-text.ts).
    assert.ok(defaultScanner.undecidedFrom(prose) >= prose.length - 2, `undecided from ${defaultScanner.undecidedFrom(prose)} of ${prose.length}`);
    assert.equal(defaultScanner.undecidedFrom('Hello'), 0, 'a trailing word may still become an email address');
    const phone = 'call me on 020 7946 0958 ';
    assert.ok(defaultScanner.undecidedFrom(phone) <= phone.indexOf('020'), 'a number near the end waits for its context');
    const mail = 'write to ana@example.com ';
    assert.ok(defaultScanner.undecidedFrom(mail) <= mail.indexOf('ana'), 'an address near the end waits for its context');
    const open = `${prose}-----BEGIN PRIVATE KEY-----\n${randomChars(BASE64, 64, 62)}\n`;
    // Held from the BEGIN line (a space or two earlier at most: a phone number could start there).
    const near = (from: number) => from <= prose.length && from >= prose.length - 2;
    assert.ok(near(defaultScanner.undecidedFrom(open)));
    assert.ok(near(defaultScanner.undecidedFrom(`${prose}-----BEG`)));
    assert.ok(defaultScanner.undecidedFrom(`${prose}${pem} and more words here to settle it `) > prose.length + pem.length);
  });
});
