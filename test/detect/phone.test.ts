// Phones in national formats next to a phone word, and the numbers that must
// not be taken for phones (orders, dates, licences). Written for this test.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createScanner } from '../../src/detect/scanner.js';
import { guardrailsSchema } from '../../src/policy/guardrails-schema.js';

const phones = (text: string, options: Parameters<typeof createScanner>[0] = {}): string[] =>
  createScanner({ types: ['PHONE'], ...options }).scan(text).map((s) => text.slice(s.start, s.end));

describe('PHONE', () => {
  for (const [text, number] of [
    ['Office: 020 7946 0958, ask for Sam.', '020 7946 0958'],
    ['Ring me on 06-12345678 after lunch.', '06-12345678'],
    ['Contact sheet\n(37) 788-063-Office, 9885 1152-Fax', '(37) 788-063'],
    ['Contact sheet\n(37) 788-063-Office, 9885 1152-Fax', '9885 1152'],
    ['mobile 0612 345 678', '0612 345 678'],
    ['Call 833.719.3994x1887 for support.', '833.719.3994x1887'],
    ['tel. +41 (0)69 979 80 58', '+41 (0)69 979 80 58'],
  ] as const) {
    it(`finds ${number} in "${text.replace(/\n/g, ' ')}"`, () => assert.ok(phones(text).includes(number), JSON.stringify(phones(text))));
  }

  for (const text of [
    'Order 2024-113-5567 shipped; call us if it is late.',
    'Your invoice 555 1234 567 is attached. Questions? Call the office.',
    "My driver's license number is 2270-66-1551, phone me if needed.",
    'The meeting on 2024-05-17 moved; call me.',
    'Tracking 7741 2388 0021, contact support.',
    'Version 10.4.12.2231 is out.',
    'We sold 1234567 units last year.',
  ]) {
    it(`takes no phone from "${text}"`, () => assert.deepEqual(phones(text), []));
  }

  it('remembers verdicts per region: a number valid in one region is judged again in another', () => {
    const text = 'Office: 020 7946 0958, ask for Sam.';
    const validators = (regions: Array<'GB' | 'US'>): Array<string | undefined> => createScanner({ types: ['PHONE'], phone: { regions } }).scan(text).map((s) => s.validator);
    for (let round = 0; round < 2; round++) {
      assert.deepEqual(validators(['GB']), ['libphonenumber-valid']);
      assert.deepEqual(validators(['US']), ['phone-context']);
    }
  });

  it('context words and regions are configurable', () => {
    const text = 'Rufnummer 030 1234567';
    assert.deepEqual(phones(text), []);
    assert.deepEqual(phones(text, { phone: { contextWords: ['Rufnummer'], regions: ['DE'] } }), ['030 1234567']);
  });

  it('a policy names its phone regions and words, and an unknown region is refused naming the key', () => {
    const policy = guardrailsSchema.parse({ phone: { regions: ['DE', 'AT'], context_words: ['Rufnummer'] } });
    assert.deepEqual(policy.phone, { regions: ['DE', 'AT'], context_words: ['Rufnummer'] });
    const bad = guardrailsSchema.safeParse({ phone: { regions: ['XX'] } });
    assert.ok(!bad.success);
    assert.deepEqual(bad.error.issues[0]!.path, ['phone', 'regions', 0]);
  });
});
