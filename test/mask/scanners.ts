// The scanners the masking property tests run against: always the real
// detectors (createScanner(), the gateway's own), and beside them a test
// double whose short maximum entity length makes the fixed holdback window
// slide within short texts.
import { createScanner } from '../../src/detect/scanner.js';
import { maskText } from '../../src/mask/mask-text.js';
import { MaskingSession } from '../../src/mask/session.js';
import { StreamMasker } from '../../src/mask/stream-masker.js';
import type { EntityScanner, SpanRules, Termination } from '../../src/mask/types.js';
import { createTestScanner } from './test-scanner.js';

export interface ScannerUnderTest {
  name: string;
  scanner: EntityScanner;
}

/**
 * `piiSubset` adds the real scanner limited to a few PII types: its maximum
 * entity length is small enough for test texts to slide the window.
 */
export async function scannersUnderTest(options: { pemBodyMax?: number; piiSubset?: boolean } = {}): Promise<ScannerUnderTest[]> {
  const double = options.pemBodyMax === undefined ? {} : { pemBodyMax: options.pemBodyMax };
  const scanners: ScannerUnderTest[] = [{ name: 'createScanner()', scanner: createScanner() }];
  if (options.piiSubset) {
    const types = ['EMAIL', 'CREDIT_CARD', 'IBAN', 'PHONE', 'US_SSN', 'IP_ADDRESS'] as const;
    scanners.push({ name: `createScanner({ types: ${types.join(', ')} })`, scanner: createScanner({ types: [...types] }) });
  }
  scanners.push(
    { name: 'test double, fixed holdback', scanner: createTestScanner(double) },
    { name: 'test double, undecidedFrom', scanner: createTestScanner({ ...double, withUndecidedFrom: true }) },
  );
  return scanners;
}

/**
 * fast-check parameters that make a run reproducible: the seed (printed by
 * the caller) and, to replay a failure, the `path` fast-check reports.
 * FAST_CHECK_SEED=<seed> FAST_CHECK_PATH=<path> replays one counterexample.
 */
export function propertyRun(runs: number): { seed: number; path?: string; numRuns: number; endOnFailure: boolean } {
  const seed = process.env.FAST_CHECK_SEED === undefined ? (Date.now() ^ (Math.random() * 0x7fffffff)) | 0 : Number(process.env.FAST_CHECK_SEED);
  return {
    seed,
    ...(process.env.FAST_CHECK_PATH !== undefined && { path: process.env.FAST_CHECK_PATH }),
    numRuns: Number(process.env.FAST_CHECK_RUNS ?? runs),
    endOnFailure: process.env.FAST_CHECK_SHRINK !== '1',
  };
}

export const maskAll: SpanRules = () => ({ action: 'mask', rule: 'mask-all', strategy: { kind: 'placeholder' } });

export interface StreamResult {
  /** What each push (then flush) released. */
  pieces: string[];
  text: string;
  termination?: Termination;
}

/** Streams `chunks` through a fresh StreamMasker. */
export function streamMask(scanner: EntityScanner, chunks: readonly string[], rules: SpanRules = maskAll, session = new MaskingSession({ hashKey: 'k'.repeat(32) })): StreamResult {
  const masker = new StreamMasker({ scanner, session, rules });
  const pieces = chunks.map((chunk) => masker.push(chunk));
  pieces.push(masker.flush());
  return { pieces, text: pieces.join(''), ...(masker.termination && { termination: masker.termination }) };
}

/** The reference: the whole text masked at once. */
export function wholeMask(scanner: EntityScanner, text: string, rules: SpanRules = maskAll, session = new MaskingSession({ hashKey: 'k'.repeat(32) })): StreamResult {
  const masked = maskText(text, scanner.scan(text), session, rules);
  return { pieces: [masked.text], text: masked.text, ...(masked.termination && { termination: masked.termination }) };
}

/** Splits `text` at the given offsets (any order, duplicates and out-of-range ignored). */
export function splitAt(text: string, cuts: readonly number[]): string[] {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < text.length))].sort((a, b) => a - b);
  const chunks: string[] = [];
  let from = 0;
  for (const point of points) {
    chunks.push(text.slice(from, point));
    from = point;
  }
  chunks.push(text.slice(from));
  return chunks;
}
