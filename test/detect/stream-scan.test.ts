// `Scanner.openStream()`: scanFrom and undecidedFrom for the windows of one
// stream, reading each character once (the keyword pass's automaton and
// each detector's last keyword start, whether the window is plain ASCII,
// kept between windows). Its answers must be those of the stateless
// scanFrom and undecidedFrom on every window, or masking changes: windows
// that continue each other (as the stream masker's do), windows that skip
// ahead (read afresh), keywords, entities and `%40` cut at every boundary,
// text outside ASCII coming and going. The reference is a second scanner,
// so neither sees the other's remembered last scan. Seeds are printed;
// replay with FAST_CHECK_SEED (and FAST_CHECK_PATH).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { createScanner, type Scanner } from '../../src/detect/scanner.js';
import { MaskingSession } from '../../src/mask/session.js';
import { StreamMasker } from '../../src/mask/stream-masker.js';
import type { EntityScanner } from '../../src/mask/types.js';
import { maskAll, propertyRun, wholeMask } from '../mask/scanners.js';

const PII = ['EMAIL', 'PHONE', 'CREDIT_CARD', 'US_SSN', 'IBAN', 'IP_ADDRESS', 'DATE_OF_BIRTH', 'PASSPORT', 'NATIONAL_ID', 'PRIVATE_KEY'] as const;
const pairs: Array<{ name: string; make: () => Scanner }> = [
  { name: 'PII and private keys', make: () => createScanner({ types: [...PII] }) },
  { name: 'all built-in types, a dictionary and a custom pattern', make: () => createScanner({ dictionaries: { codenames: ['Bluebird', 'Project X-Ray'] }, customPatterns: { ticket: { pattern: 'TCK-[0-9]{6}', maxLength: 10 } } }) },
  { name: 'the RE2 keyword pass', make: () => createScanner({ keywordPass: 're2' }) },
];

const PEM = '-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEAq7BFUpkGp3+LQmlQ\n-----END PRIVATE KEY-----';
const piece = fc.constantFrom(
  'jane.doe@example.com', 'bob%40example.com', '%4', '0', '4111 1111 1111 1111', 'DE89 3704 0044 0532 0130 00', '123-45-6789', 'SSN', '+44 20 7946 0958',
  '10.0.0.12', 'fe80::1', 'born 12/03/1985', 'né le 12/03/1985', 'आधार 2345 6789 0124', 'DNI 12345678Z', 'BSN 111222333', 'AKIA5T66TBPVOMYZAWKP', PEM,
  '-----BEGIN', 'card', 'Visa', 'call me', 'DOB', 'birth', 'token', 'secret', 'key=', 'https://', 'nhs', 'eyJ', 'sk-', 'ghp_', '<<<', 'Bluebird', 'TCK-123456',
  'the', 'word12', ' ', ' ', '. ', '\n', '2024', '42', ':', '-', '@', 'é', '😀', '\u200b',
);
const text = fc.array(piece, { minLength: 1, maxLength: 30 }).map((parts) => parts.join(''));

/**
 * Windows as a masker makes them: each ends further on, starts at or after the last one's start, holds
 * `from` characters already released; `skip` lets a window start past the last one's end (read afresh).
 */
const windowSteps = fc.array(fc.record({ grow: fc.nat({ max: 12 }), keep: fc.nat({ max: 200 }), from: fc.nat({ max: 200 }), skip: fc.nat({ max: 9 }) }), { minLength: 1, maxLength: 40 });

describe('openStream answers as the stateless scanner does', () => {
  for (const { name, make } of pairs) {
    test(`${name}: every window of generated streams`, (t) => {
      const run = propertyRun(150);
      t.diagnostic(`fast-check seed ${run.seed} (replay: FAST_CHECK_SEED=${run.seed})`);
      const scanner = make();
      const reference = make();
      fc.assert(
        fc.property(text, windowSteps, (stream, steps) => {
          const windows = scanner.openStream();
          let start = 0;
          let end = 0;
          for (const { grow, keep, from, skip } of steps) {
            if (end >= stream.length) break;
            const read = end;
            end = Math.min(stream.length, end + 1 + grow);
            // Usually the window keeps up to `keep` characters before the new ones; now and then it starts past them.
            start = skip === 0 && end > read + 1 ? read + 1 + (keep % (end - read - 1)) : Math.max(start, read - keep);
            const window = stream.slice(start, end);
            const at = from % (window.length + 1);
            const where = `window [${start}, ${end}) from ${at}`;
            assert.equal(windows.undecidedFrom(window, at, start), reference.undecidedFrom(window, at), `undecidedFrom, ${where}`);
            assert.deepEqual(windows.scanFrom(window, at, start), reference.scanFrom(window, at), `scanFrom, ${where}`);
          }
        }),
        run,
      );
    });
  }
});

/** The scanner without `openStream`: the stream masker then asks the stateless scanFrom and undecidedFrom. */
const stateless = (scanner: Scanner): EntityScanner => ({ ...scanner, openStream: undefined });

function streamed(scanner: EntityScanner, chunks: readonly string[]): string {
  const masker = new StreamMasker({ scanner, session: new MaskingSession({ hashKey: 'k'.repeat(32) }), rules: maskAll });
  return chunks.map((chunk) => masker.push(chunk)).join('') + masker.flush();
}

describe('a keyword or entity split at every frame boundary', () => {
  // Keywords that gate their detectors (a birth word, an SSN word, a card word, 'nhs', a PEM line, '%40'),
  // each cut at every offset; a left context long enough that the masker's window slides.
  const texts = [
    'Patient notes follow. The customer was born 12/03/1985 and lives nearby; the card is 4111 1111 1111 1111 and the SSN 536-22-1234, mail bob%40example.com.',
    `${'Plain words, many of them, to fill the window. '.repeat(4)}nhs 943 476 5919 then aadhaar 2345 6789 0124, né le 12/03/1985, call me on +44 20 7946 0958. ${PEM} done.`,
  ];
  for (const { name, make } of pairs.slice(0, 2)) {
    test(`${name}: two frames cut anywhere, and one character a frame`, () => {
      const scanner = make();
      const reference = stateless(make());
      for (const whole of texts) {
        const expected = wholeMask(scanner, whole).text;
        assert.equal(streamed(scanner, [...whole]), expected, 'one character a frame');
        for (let cut = 1; cut < whole.length; cut++) {
          if (whole.charCodeAt(cut) >= 0xdc00 && whole.charCodeAt(cut) <= 0xdfff) continue;
          assert.equal(streamed(scanner, [whole.slice(0, cut), whole.slice(cut)]), expected, `cut at ${cut}`);
          assert.equal(streamed(reference, [whole.slice(0, cut), whole.slice(cut)]), expected, `stateless, cut at ${cut}`);
        }
      }
    });
  }
});
