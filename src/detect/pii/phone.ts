// Phone numbers: candidates by shape, decided by libphonenumber-js (the
// maintained port of Google's libphonenumber metadata).
//  - international (+CC ...): possible for its country; valid raises confidence;
//  - North American "(415) 555-0132" and "415-555-0132";
//  - national numbers with a trunk 0 ("020 7946 0958") only next to a phone
//    word, tried against a few regions, since alone they are just digits.
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import { candidateStarts, forEachMatchAt, type ScanContext } from '../context.js';
import { clampConfidence, type Detector, type ReportSpan } from '../detector.js';
import { DIGIT_KEYWORDS, hasContext } from '../text.js';

export const MAX_PHONE_LENGTH = 32;
const CONTEXT_BEFORE = 40;

const PHONE_WORDS = /\b(?:phone|tel|telephone|mobile|cell|cellphone|call|calls|calling|ring|fax|sms|text|whatsapp|signal|contact|reach|dial|hotline|tél|téléphone|telefon|telefono|teléfono|handy|portable|móvil)\b/i;

const INTERNATIONAL = /(?<![\w+])\+[1-9]\d{0,2}(?:[ .\u00a0-]?\(?\d{1,5}\)?){1,7}(?!\d)/y;
const NANP_PARENS = /(?<![\w)])(?:\+?1[ .-]?)?\(\d{3}\)[ .\u00a0-]?\d{3}[ .-]\d{4}(?![\w-]|\.\d)/y;
const NANP_PLAIN = /(?<![\w.+-])(?:1([ .-]))?\d{3}([.-])\d{3}\2\d{4}(?![\w-]|\.\d)/y;
const NATIONAL_TRUNK = /(?<![\w+.-])0\d{1,4}(?:[ .-]?\d{2,4}){2,4}(?![\w-]|\.\d)/y;
// A phone number can open with '+' or '(' just before its first digit.
const PREFIX = /^[+(]$/;
const NATIONAL_REGIONS: readonly CountryCode[] = ['GB', 'FR', 'DE', 'NL', 'IT', 'ES', 'AU', 'IN', 'JP', 'BR'];

type Verdict = 'valid' | 'possible' | undefined;

function judge(candidate: string, region?: CountryCode): Verdict {
  const number = region === undefined ? parsePhoneNumberFromString(candidate) : parsePhoneNumberFromString(candidate, region);
  if (number === undefined || !number.isPossible()) return undefined;
  return number.isValid() ? 'valid' : 'possible';
}

/** Greedy candidates can swallow a following number: drop trailing groups until one parses. */
function longestPlausible(candidate: string): { length: number; verdict: Verdict } {
  let current = candidate;
  for (let attempt = 0; attempt < 3; attempt++) {
    const verdict = judge(current);
    if (verdict !== undefined) return { length: current.length, verdict };
    const cut = current.search(/[ .\u00a0-]\(?\d{1,5}\)?$/);
    if (cut <= 0) break;
    current = current.slice(0, cut);
  }
  return { length: 0, verdict: undefined };
}

export function createPhoneDetector(): Detector {
  return {
    id: 'pii.phone',
    types: ['PHONE'],
    keywords: DIGIT_KEYWORDS,
    maxLength: MAX_PHONE_LENGTH,
    spanChars: /[0-9 .()+\u00a0-]/,
    lookbehind: CONTEXT_BEFORE,
    lookahead: 8,
    detect(text: string, report: ReportSpan, context: ScanContext): void {
      const emit = (start: number, end: number, verdict: Verdict, base: { valid: number; possible: number }, rule: string): boolean => {
        if (verdict === undefined || end - start > MAX_PHONE_LENGTH) return false;
        const boost = hasContext(text, start, end, PHONE_WORDS, CONTEXT_BEFORE) ? 0.1 : 0;
        const confidence = clampConfidence((verdict === 'valid' ? base.valid : base.possible) + boost);
        if (confidence < 0.5) return false;
        report({ type: 'PHONE', start, end, confidence, rule, validator: verdict === 'valid' ? 'libphonenumber-valid' : 'libphonenumber-possible' });
        return true;
      };
      for (const run of context.digitRuns()) {
        const starts = candidateStarts(text, run, PREFIX);
        forEachMatchAt(INTERNATIONAL, text, starts, (m) => {
          const { length, verdict } = longestPlausible(m[0]);
          return emit(m.index, m.index + length, verdict, { valid: 0.85, possible: 0.6 }, 'pii.phone.international');
        });
        forEachMatchAt(NANP_PARENS, text, starts, (m) => emit(m.index, m.index + m[0].length, judge(m[0], 'US'), { valid: 0.8, possible: 0.6 }, 'pii.phone.nanp'));
        // Without parentheses or a country code, "123-456-7890" is as likely an id: ask for validity or a phone word.
        forEachMatchAt(NANP_PLAIN, text, starts, (m) => emit(m.index, m.index + m[0].length, judge(m[0], 'US'), { valid: 0.6, possible: 0.45 }, 'pii.phone.nanp'));
        forEachMatchAt(NATIONAL_TRUNK, text, starts, (m) => {
          if (!hasContext(text, m.index, m.index + m[0].length, PHONE_WORDS, CONTEXT_BEFORE)) return false;
          const valid = NATIONAL_REGIONS.some((region) => judge(m[0], region) === 'valid');
          return valid && emit(m.index, m.index + m[0].length, 'valid', { valid: 0.65, possible: 0 }, 'pii.phone.national');
        });
      }
    },
  };
}
