// Phone numbers: candidates by shape, decided by libphonenumber-js (the
// maintained port of Google's libphonenumber metadata).
//  - international (+CC ...): possible for its country; valid raises confidence;
//  - North American "(415) 555-0132" and "415-555-0132";
//  - national numbers with a trunk 0 ("020 7946 0958") only next to a phone
//    word, tried against a few regions, since alone they are just digits;
//  - any number of 7 to 15 digits in phone grouping ("(37) 788-063",
//    "9885 1152", "833.719.3994x1887") next to a phone word before or after it
//    ("Office:", "-Fax", "call me on"), unless it reads as a date or comes
//    after an order, invoice or reference word. The regions tried and the
//    context words are configurable (`createPhoneDetector(options)`).
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import { candidateStarts, forEachMatchAt, type ScanContext } from '../context.js';
import { clampConfidence, type Detector, type ReportSpan } from '../detector.js';
import { DIGIT_KEYWORDS, hasContext } from '../text.js';

export const MAX_PHONE_LENGTH = 32;
export const PHONE_DETECTOR_ID = 'pii.phone';
const CONTEXT_BEFORE = 40;

/** Words that make digits a phone number, in the languages of the default regions. */
export const DEFAULT_PHONE_WORDS: readonly string[] = [
  'phone', 'phones', 'tel', 'telephone', 'mobile', 'cell', 'cellphone', 'call', 'calls', 'calling', 'ring', 'fax', 'sms', 'text',
  'whatsapp', 'signal', 'contact', 'reach', 'dial', 'hotline', 'office', 'home', 'work', 'landline', 'ph', 'mob',
  'tél', 'téléphone', 'portable', 'telefon', 'telefono', 'teléfono', 'handy', 'móvil', 'celular', 'telefone', 'numero', 'número',
];
/** Regions whose national formats are tried for numbers without a country code. */
export const DEFAULT_PHONE_REGIONS: readonly CountryCode[] = ['US', 'GB', 'FR', 'DE', 'NL', 'IT', 'ES', 'AU', 'IN', 'JP', 'BR', 'CA', 'SE', 'PL', 'ZA', 'MX'];

export interface PhoneOptions {
  /** Tried in order for numbers without a country code; default DEFAULT_PHONE_REGIONS. */
  regions?: readonly CountryCode[];
  /** Words near a number (before or just after it) that make it a phone number; default DEFAULT_PHONE_WORDS. */
  contextWords?: readonly string[];
}

const escapeWord = (word: string): string => word.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
const wordsPattern = (words: readonly string[]): RegExp => new RegExp(`(?<![\\p{L}\\p{N}])(?:${words.map(escapeWord).join('|')})(?![\\p{L}\\p{N}])`, 'iu');
// Order, invoice, reference and document numbers are not phones, whatever the shape.
const NOT_PHONE_WORDS = /(?<![\p{L}])(?:order|invoice|inv|ref|reference|ticket|case|account|acct|iban|sku|serial|tracking|id|no\.|nr\.?|po|customer|member|policy|version|build|licen[cs]e|passport|ssn|social security|tax)(?![\p{L}])/iu;
const NOT_PHONE_BEFORE = 32;
const DATE_SHAPE = /^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})$/;
const EXTENSION = /\s?(?:x|ext\.?|extension)\s?\d{1,6}/iy;
const CONTEXT_AFTER = 8;

const INTERNATIONAL = /(?<![\w+])\+[1-9]\d{0,2}(?:[ .\u00a0-]?\(?\d{1,5}\)?){1,7}(?!\d)/y;
const NANP_PARENS = /(?<![\w)])(?:\+?1[ .-]?)?\(\d{3}\)[ .\u00a0-]?\d{3}[ .-]\d{4}(?![\w-]|\.\d)/y;
const NANP_PLAIN = /(?<![\w.+-])(?:1([ .-]))?\d{3}([.-])\d{3}\2\d{4}(?![\w-]|\.\d)/y;
const NATIONAL_TRUNK = /(?<![\w+.-])0\d{1,4}(?:[ .-]?\d{2,4}){2,4}(?![\w-]|\.\d)/y;
// A phone number can open with '+' or '(' just before its first digit.
const PREFIX = /^[+(]$/;

type Verdict = 'valid' | 'possible' | undefined;

/**
 * Verdicts of recent candidates, by region and candidate. libphonenumber-js
 * takes 30-180 µs a number (it builds its metadata's regexes on every call),
 * and the same numbers come back: a chat resends its history with every turn,
 * and the stream masker rescans its held-back window with every frame.
 * Cleared when full, so it stays small.
 */
const verdicts = new Map<string, Verdict>();
const VERDICTS_KEPT = 1024;

function judge(candidate: string, region?: CountryCode): Verdict {
  const key = `${region ?? ''}|${candidate}`;
  if (verdicts.has(key)) return verdicts.get(key);
  const number = region === undefined ? parsePhoneNumberFromString(candidate) : parsePhoneNumberFromString(candidate, region);
  const verdict = number === undefined || !number.isPossible() ? undefined : number.isValid() ? 'valid' : 'possible';
  if (verdicts.size >= VERDICTS_KEPT) verdicts.clear();
  verdicts.set(key, verdict);
  return verdict;
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

/** Digits, counting only those before an extension. */
function digitCount(value: string): number {
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 48 && c <= 57) n++;
  }
  return n;
}

export function createPhoneDetector(options: PhoneOptions = {}): Detector {
  const regions = options.regions ?? DEFAULT_PHONE_REGIONS;
  const PHONE_WORDS = wordsPattern(options.contextWords ?? DEFAULT_PHONE_WORDS);
  const bestVerdict = (candidate: string): Verdict => {
    let best: Verdict;
    for (const region of regions) {
      const verdict = judge(candidate, region);
      if (verdict === 'valid') return verdict;
      best ??= verdict;
    }
    return best;
  };
  return {
    id: PHONE_DETECTOR_ID,
    types: ['PHONE'],
    keywords: DIGIT_KEYWORDS,
    maxLength: MAX_PHONE_LENGTH,
    spanChars: /[0-9 .()+\u00a0-]/,
    spanAnchor: /[0-9]/,
    lookbehind: CONTEXT_BEFORE,
    lookahead: CONTEXT_AFTER,
    detect(text: string, report: ReportSpan, context: ScanContext): void {
      const emit = (start: number, end: number, verdict: Verdict, base: { valid: number; possible: number }, rule: string): boolean => {
        if (verdict === undefined || end - start > MAX_PHONE_LENGTH) return false;
        const boost = hasContext(text, start, end, PHONE_WORDS, CONTEXT_BEFORE, CONTEXT_AFTER) ? 0.1 : 0;
        const confidence = clampConfidence((verdict === 'valid' ? base.valid : base.possible) + boost);
        if (confidence < 0.5) return false;
        report({ type: 'PHONE', start, end, confidence, rule, validator: verdict === 'valid' ? 'libphonenumber-valid' : 'libphonenumber-possible' });
        return true;
      };
      // The whole run, read as one number, when a phone word is next to it.
      const contextual = (run: { start: number; end: number; digits: number }): void => {
        let start = run.start;
        if (text[start - 1] === '(' || text[start - 1] === '+') start--;
        let end = run.end;
        while (end > start && !/[0-9)]/.test(text[end - 1]!)) end--;
        const number = text.slice(start, end);
        const digits = digitCount(number);
        if (digits < 7 || digits > 15 || DATE_SHAPE.test(number)) return;
        if (!hasContext(text, start, end, PHONE_WORDS, CONTEXT_BEFORE, CONTEXT_AFTER)) return;
        if (NOT_PHONE_WORDS.test(text.slice(Math.max(0, start - NOT_PHONE_BEFORE), start))) return;
        EXTENSION.lastIndex = end;
        const extension = EXTENSION.exec(text);
        if (extension !== null) end += extension[0].length;
        const verdict = number.startsWith('+') ? judge(number) : bestVerdict(number);
        // Grouped like a phone number ("(37) 788-063", "9885 1152") or one block of 10+ digits.
        const grouped = /[ ().-]/.test(number) || digits >= 10;
        const confidence = verdict === 'valid' ? 0.8 : verdict === 'possible' ? 0.7 : grouped ? 0.6 : 0;
        if (confidence === 0 || end - start > MAX_PHONE_LENGTH) return;
        report({ type: 'PHONE', start, end, confidence, rule: 'pii.phone.context', validator: verdict === undefined ? 'phone-context' : `libphonenumber-${verdict}` });
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
          const valid = regions.some((region) => judge(m[0], region) === 'valid');
          return valid && emit(m.index, m.index + m[0].length, 'valid', { valid: 0.65, possible: 0 }, 'pii.phone.national');
        });
        contextual(run);
      }
    },
  };
}
