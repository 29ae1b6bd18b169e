// The scanners the masking property tests run against. The test double
// always; the real detectors too when MODELGATE_TEST_REAL_SCANNER=1, so the
// same properties can be checked against createScanner() once it exists.
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
  const scanners: ScannerUnderTest[] = [
    { name: 'test double, fixed holdback', scanner: createTestScanner(double) },
    { name: 'test double, undecidedFrom', scanner: createTestScanner({ ...double, withUndecidedFrom: true }) },
  ];
  if (process.env.MODELGATE_TEST_REAL_SCANNER === '1') {
    // A variable specifier keeps the type checker from requiring the module before it exists.
    const specifier = process.env.MODELGATE_TEST_SCANNER_MODULE ?? '../../src/detect/scanner.js';
    const detect = (await import(specifier)) as { createScanner: (options?: { types?: string[] }) => EntityScanner };
    scanners.push({ name: 'createScanner()', scanner: detect.createScanner() });
    if (options.piiSubset) {
      const types = ['EMAIL', 'CREDIT_CARD', 'IBAN', 'PHONE', 'US_SSN', 'IP_ADDRESS'];
      scanners.push({ name: `createScanner({ types: ${types.join(', ')} })`, scanner: detect.createScanner({ types }) });
    }
  }
  return scanners;
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
