// Acceptance property: for generated responses containing entities, however
// the stream is cut into chunks, the streamed output equals the non-streamed
// masked output, so no entity reaches the client unmasked. Runs are bounded
// (the machine is shared); set FAST_CHECK_RUNS to run more. Each test prints
// its seed; FAST_CHECK_SEED (and FAST_CHECK_PATH from a failure) replays it.
// The same property through the frame and field layer is field-property.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { MaskingSession } from '../../src/mask/session.js';
import type { SpanRules } from '../../src/mask/types.js';
import { propertyRun, scannersUnderTest, splitAt, streamMask, wholeMask } from './scanners.js';


const PEM = '-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEAq7BFUpkGp3+LQmlQ\n-----END PRIVATE KEY-----';

const entity = fc.constantFrom(
  '4111 1111 1111 1111',
  '4111-1111-1111-1111',
  '4111111111111111',
  '5500 0000 0000 0004',
  '3782 822463 10005',
  'bob@example.com',
  'a.b+c@mail.co.uk',
  'X_Y@corp-x.io',
  'DE89 3704 0044 0532 0130 00',
  'DE89370400440532013000',
  'GB82 WEST 1234 5698 7654 32',
  'Bluebird',
  PEM,
);
/** Pieces that look like the start of an entity but are not one, and entity-adjacent punctuation. */
const lookalike = fc.constantFrom('4111', '1111 ', '12', '-', '-----BEGIN ', 'PRIVATE KEY-----', '@', '.com', 'DE89', ' 0044', 'blue', 'bird', 'GB', '.', ':', '\n');
const word = fc.constantFrom('the', 'card', 'mail', 'is', 'IBAN', 'pay', 'Hello', 'x', 'and');
const separator = fc.constantFrom(' ', '  ', '\n', ', ', '. ', '\t');
const unicode = fc.constantFrom('😀', 'é', '世界', '👋🏽', '\u{1F600}\u{1F600}', '\uD83D');
const noise = fc.string({ unit: 'binary', maxLength: 4 });

const responseText = fc
  .array(fc.oneof({ arbitrary: entity, weight: 3 }, { arbitrary: lookalike, weight: 3 }, { arbitrary: word, weight: 4 }, { arbitrary: separator, weight: 5 }, { arbitrary: unicode, weight: 1 }, { arbitrary: noise, weight: 1 }), {
    // 'max': fast-check's default size keeps arrays short, too short for the holdback window to slide.
    minLength: 10,
    maxLength: 160,
    size: 'max',
  })
  .map((parts) => parts.join(''));

/** Chunk boundaries: a few random cuts, or a cut every n code units. */
const cutsFor = (text: string): fc.Arbitrary<number[]> =>
  fc.oneof(
    fc.array(fc.nat({ max: Math.max(1, text.length) }), { maxLength: 30 }),
    fc.integer({ min: 1, max: 7 }).map((every) => Array.from({ length: Math.ceil(text.length / every) }, (_, i) => (i + 1) * every)),
  );

const textAndCuts = responseText.chain((text) => cutsFor(text).map((cuts) => ({ text, cuts })));

const RULE_SETS: Array<[string, SpanRules]> = [
  ['placeholders for everything', () => ({ action: 'mask', rule: 'all', strategy: { kind: 'placeholder' } })],
  ['keyed hash', () => ({ action: 'mask', rule: 'all', strategy: { kind: 'hash', length: 8 } })],
  [
    'private keys end the stream, cards partially masked, the rest left alone',
    (span) =>
      span.type === 'PRIVATE_KEY'
        ? { action: 'end_stream', rule: 'no-keys' }
        : span.type === 'CREDIT_CARD'
          ? { action: 'mask', rule: 'cards', strategy: { kind: 'partial', keepLast: 4 } }
          : undefined,
  ],
];

// A small maximum PEM length (80) keeps the fixed holdback shorter than the texts, so the window slides.
for (const { name, scanner } of await scannersUnderTest({ pemBodyMax: 80, piiSubset: true })) {
  describe(`streamed masking equals whole-text masking (${name})`, () => {
    for (const [label, rules] of RULE_SETS) {
      test(label, (t) => {
        const run = propertyRun(60);
        t.diagnostic(`fast-check seed ${run.seed} (replay: FAST_CHECK_SEED=${run.seed})`);
        fc.assert(
          fc.property(textAndCuts, ({ text, cuts }) => {
            const session = (): MaskingSession => new MaskingSession({ hashKey: 'a-test-key-that-is-long-enough-000' });
            const streamed = streamMask(scanner, splitAt(text, cuts), rules, session());
            const whole = wholeMask(scanner, text, rules, session());
            assert.equal(streamed.text, whole.text);
            assert.deepEqual(streamed.termination, whole.termination);
          }),
          run,
        );
      });
    }
  });
}
