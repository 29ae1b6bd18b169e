// The scanner picks detectors for ASCII text with AsciiKeywordIndex (one
// JavaScript pass for every lookbehind tier's slice) instead of
// KeywordPrefilter (RE2.Set and indexOf per slice). The two must choose the
// same detectors for every slice of every ASCII text, or detection results
// change: generated texts dense in every detector's keywords, in random case
// and cut anywhere, compared slice by slice. The seed is printed; replay with
// FAST_CHECK_SEED (and FAST_CHECK_PATH).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ScanContext } from '../../src/detect/context.js';
import { createCustomPatternDetector } from '../../src/detect/custom.js';
import type { Detector } from '../../src/detect/detector.js';
import { createDictionaryDetector } from '../../src/detect/dictionary.js';
import { createPiiDetectors } from '../../src/detect/pii/index.js';
import { AsciiKeywordIndex, KeywordPrefilter } from '../../src/detect/prefilter.js';
import { createSecretDetectors } from '../../src/detect/secrets/index.js';
import { propertyRun } from '../mask/scanners.js';

const detectors: Detector[] = [
  ...createPiiDetectors(),
  ...createSecretDetectors(),
  createDictionaryDetector({ codenames: ['Bluebird', 'Project X-Ray'] })!,
  createCustomPatternDetector({ ticket: { pattern: 'TCK-[0-9]{6}', maxLength: 10 } })!,
  // Keywords of odd shapes: a regex character, a space, an empty one (found in any text, as includes('') is).
  { ...createPiiDetectors()[0]!, id: 'test.odd', keywords: ['a.b', 'x y', '(', ''] },
];
const keywords = [...new Set(detectors.flatMap((d) => d.keywords))];
const asciiKeywords = keywords.filter((k) => /^[\x00-\x7f]*$/.test(k));

/** A keyword in random case, or a piece of one (a keyword cut by the slice's edge). */
const keywordish = fc.tuple(fc.constantFrom(...asciiKeywords), fc.array(fc.boolean(), { minLength: 32, maxLength: 32 }), fc.nat(), fc.nat()).map(([k, upper, a, b]) => {
  const cased = [...k].map((ch, i) => (upper[i % 32] ? ch.toUpperCase() : ch)).join('');
  return a % 4 === 0 ? cased.slice(a % (cased.length + 1), cased.length - (b % (cased.length + 1))) : cased;
});
const asciiText = fc
  .array(fc.oneof({ arbitrary: keywordish, weight: 3 }, { arbitrary: fc.constantFrom(' ', '\n', '-', '_', '.', 'x', 'e', 'the '), weight: 2 }, { arbitrary: fc.string({ unit: fc.integer({ min: 0, max: 127 }).map((c) => String.fromCharCode(c)), maxLength: 5 }), weight: 1 }), { maxLength: 40 })
  .map((parts) => parts.join(''));

/** What KeywordPrefilter picks on `text.slice(at)`, as global detector indices. */
function byPrefilter(prefilter: KeywordPrefilter, members: readonly number[], text: string, at: number): number[] {
  return prefilter.select(new ScanContext(text.slice(at))).map((local) => members[local]!);
}

function byIndex(lastStarts: Int32Array, members: readonly number[], at: number): number[] {
  return members.filter((d) => lastStarts[d]! >= at);
}

describe('AsciiKeywordIndex', () => {
  const index = AsciiKeywordIndex.for(detectors);
  // Subsets as the scanner's tiers form them, besides all detectors.
  const groups = [detectors.map((_, d) => d), detectors.map((_, d) => d).filter((d) => d % 3 === 0), detectors.map((_, d) => d).filter((d) => detectors[d]!.lookbehind <= 8)];

  test('the built-in keywords need no Unicode case folding, so ASCII text gets the fast pass', () => {
    assert.ok(index !== undefined);
    assert.ok(keywords.some((k) => !/^[\x00-\x7f]*$/.test(k)), 'the test covers keywords outside ASCII too');
  });

  test('chooses what KeywordPrefilter chooses, for every slice of ASCII text', (t) => {
    const run = propertyRun(300);
    t.diagnostic(`fast-check seed ${run.seed} (replay: FAST_CHECK_SEED=${run.seed})`);
    const prefilters = groups.map((members) => new KeywordPrefilter(members.map((d) => detectors[d]!)));
    fc.assert(
      fc.property(asciiText, fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), fc.nat(), (text, cuts, widest) => {
        // The index scans once from the widest slice's start; each slice starts there or later.
        const scanFrom = widest % (text.length + 1);
        const lastStarts = index!.lastKeywordStarts(text, scanFrom);
        for (const cut of cuts) {
          const at = scanFrom + (cut % (text.length - scanFrom + 1));
          groups.forEach((members, g) => {
            assert.deepEqual(byIndex(lastStarts, members, at), byPrefilter(prefilters[g]!, members, text, at), `slice ${JSON.stringify(text.slice(at))} of ${JSON.stringify(text)}`);
          });
        }
      }),
      run,
    );
  });

  test('declines a keyword that Unicode case folding matches in ASCII text only as RE2 reads it', () => {
    // LONG S stays itself when lower-cased, and RE2's (?i) still matches it with 's'.
    const longS: Detector = { ...detectors[0]!, keywords: ['pa\u017f\u017f'] };
    assert.equal(new KeywordPrefilter([longS]).select(new ScanContext('a pass')).length, 1);
    assert.equal(AsciiKeywordIndex.for([longS]), undefined);
    // KELVIN SIGN lower-cases to k, as the prefilter hands it to RE2: both find it in ASCII text.
    const kelvin: Detector = { ...detectors[0]!, keywords: ['\u212aey'] };
    assert.equal(new KeywordPrefilter([kelvin]).select(new ScanContext('a KEY')).length, 1);
    assert.equal(AsciiKeywordIndex.for([kelvin])!.lastKeywordStarts('a KEY', 0)[0], 2);
  });
});
