// US Social Security numbers. The SSA never issues area 000, 666 or 900-999,
// group 00 or serial 0000; a few numbers are known to be public (the
// Woolworth wallet card, advertising samples).
import { candidateStarts, forEachMatchAt, type ScanContext } from '../context.js';
import { clampConfidence, type Detector, type ReportSpan } from '../detector.js';
import { DIGIT_KEYWORDS, hasContext } from '../text.js';

export const MAX_SSN_LENGTH = 11;
const KNOWN_PUBLIC = new Set(['078051120', '219099999', '123456789', '457555462']);
const SSN_WORDS = /\b(?:ssn|ssns|ss#|ss no|social security|social sec|taxpayer|tin|itin)\b/i;

const SEPARATED = /(?<![\w.-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\w-]|[.,]\d)/y;
const UNSEPARATED = /(?<![\w.-])(\d{3})(\d{2})(\d{4})(?![\w-]|[.,]\d)/y;

export function ssnValid(area: string, group: string, serial: string): boolean {
  if (area === '000' || area === '666' || area[0] === '9') return false;
  if (group === '00' || serial === '0000') return false;
  const digits = area + group + serial;
  return !KNOWN_PUBLIC.has(digits) && !/^(\d)\1{8}$/.test(digits);
}

export function createUsSsnDetector(): Detector {
  return {
    id: 'pii.us_ssn',
    types: ['US_SSN'],
    keywords: DIGIT_KEYWORDS,
    maxLength: MAX_SSN_LENGTH,
    spanChars: /[0-9 -]/,
    spanAnchor: /[0-9]/,
    lookbehind: 40,
    lookahead: 2,
    detect(text: string, report: ReportSpan, context: ScanContext): void {
      for (const run of context.digitRuns()) {
        if (run.digits < 9) continue;
        const starts = candidateStarts(text, run);
        forEachMatchAt(SEPARATED, text, starts, (m) => {
          if (!ssnValid(m[1]!, m[3]!, m[4]!)) return false;
          const start = m.index;
          const end = start + m[0].length;
          const named = hasContext(text, start, end, SSN_WORDS, 40);
          // Dashes are the SSN's own layout; spaces are weaker evidence and need an SSN word.
          if (m[2] === ' ' && !named) return false;
          const base = m[2] === '-' ? 0.85 : 0.6;
          report({ type: 'US_SSN', start, end, confidence: clampConfidence(base + (named ? 0.1 : 0)), rule: 'pii.us_ssn', validator: 'ssn-area-group-serial' });
          return true;
        });
        // Nine bare digits are too common to flag without an SSN word nearby.
        forEachMatchAt(UNSEPARATED, text, starts, (m) => {
          if (!ssnValid(m[1]!, m[2]!, m[3]!)) return false;
          const start = m.index;
          const end = start + m[0].length;
          if (!hasContext(text, start, end, SSN_WORDS, 40)) return false;
          report({ type: 'US_SSN', start, end, confidence: 0.75, rule: 'pii.us_ssn', validator: 'ssn-area-group-serial' });
          return true;
        });
      }
    },
  };
}
