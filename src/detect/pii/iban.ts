// IBANs: country code, two check digits, then exactly the registered length
// for that country (printed in groups of four or not), and ISO 7064 mod-97.
import type { ScanContext } from '../context.js';
import type { Detector, ReportSpan } from '../detector.js';
import { mod97 } from '../validators/checksums.js';
import { DIGIT_KEYWORDS } from '../text.js';

// SWIFT IBAN registry lengths.
const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28,
  CH: 21, CR: 22, CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18,
  FK: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HR: 21, HU: 28, IE: 22,
  IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20,
  LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28, NL: 18,
  NO: 15, OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24, SC: 31,
  SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26, UA: 29,
  VA: 22, VG: 24, XK: 20, YE: 30,
};
const LONGEST_IBAN = Math.max(...Object.values(IBAN_LENGTHS));
// Printed with a space every four characters at most.
export const MAX_IBAN_LENGTH = LONGEST_IBAN + Math.ceil(LONGEST_IBAN / 4) - 1;

// Either case: people type IBANs in lower case too ("de89 3704 ..."); one IBAN is all one case.
const CANDIDATE = /(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ ]?[A-Za-z0-9]){11,30}/y;
const HEAD = /[A-Za-z]{2}\d{2}/y;
/** The start of a head cut off by the end of the text. */
const HEAD_PREFIX = /^(?:[A-Za-z]{1,2}|[A-Za-z]{2}\d)$/;
// Every registered IBAN holds a run of at least seven digits (bank code or account) that starts at most 14 characters after its own start.
const HEAD_REACH = 14;

const isDigit = (code: number): boolean => code >= 48 && code <= 57;
const isLetter = (code: number): boolean => (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
const isAlphanumeric = (code: number): boolean => isDigit(code) || isLetter(code);
/** `[A-Za-z0-9 ]`: what an IBAN is printed with. */
const isIbanChar = (code: number): boolean => code === 32 || isAlphanumeric(code);
/** `HEAD` at `at`: two letters, two digits. */
const isHeadAt = (text: string, at: number): boolean =>
  isLetter(text.charCodeAt(at)) && isLetter(text.charCodeAt(at + 1)) && isDigit(text.charCodeAt(at + 2)) && isDigit(text.charCodeAt(at + 3));

/** Checks country, length and mod-97 of an IBAN without separators. */
export function ibanValid(compact: string): boolean {
  const length = IBAN_LENGTHS[compact.slice(0, 2)];
  if (length === undefined || compact.length !== length || !/^[A-Z]{2}\d{2}[A-Z0-9]+$/.test(compact)) return false;
  return mod97(compact.slice(4) + compact.slice(0, 4)) === 1;
}

export function createIbanDetector(): Detector {
  return {
    id: 'pii.iban',
    types: ['IBAN'],
    keywords: DIGIT_KEYWORDS,
    maxLength: MAX_IBAN_LENGTH,
    // Letters of either case and spaces would hold back any prose: an IBAN can only be open from a head.
    openFrom(text: string, settled: number): number {
      let open = settled;
      // Character tests by code, not by regex: this runs back over prose on every streamed frame.
      for (let k = settled - 1; k >= 0 && settled - k <= MAX_IBAN_LENGTH && isIbanChar(text.charCodeAt(k)); k--) {
        if (k > 0 && isAlphanumeric(text.charCodeAt(k - 1))) continue;
        // A cut-off head is at most three characters, all at the very end.
        if (isHeadAt(text, k) || (text.length - k <= 3 && HEAD_PREFIX.test(text.slice(k)))) open = k;
      }
      return open;
    },
    lookbehind: 1,
    lookahead: 1,
    detect(text: string, report: ReportSpan, context: ScanContext): void {
      let after = 0;
      for (const run of context.digitRuns()) {
        // The country code and check digits sit a few characters before the long digit run.
        for (let at = Math.max(after, run.start - HEAD_REACH); at <= run.start - 2; at++) {
          HEAD.lastIndex = at;
          if (!HEAD.test(text)) continue;
          CANDIDATE.lastIndex = at;
          const m = CANDIDATE.exec(text);
          if (m === null) continue;
          const end = ibanEnd(text, m);
          if (end === -1) continue;
          report({ type: 'IBAN', start: at, end, confidence: 0.95, rule: 'pii.iban', validator: 'mod97' });
          after = end;
          break;
        }
      }
    },
  };
}

/** End of the IBAN that the candidate starts with, or -1. */
function ibanEnd(text: string, m: RegExpExecArray): number {
  const length = IBAN_LENGTHS[m[0].slice(0, 2).toUpperCase()];
  if (length === undefined) return -1;
  // Take exactly the country's length; the greedy candidate may run into the next word.
  let end = m.index;
  let compact = '';
  while (compact.length < length && end < m.index + m[0].length) {
    const ch = m[0][end - m.index]!;
    end++;
    if (ch !== ' ') compact += ch;
  }
  if (compact.length !== length || /[A-Za-z0-9]/.test(text[end] ?? '')) return -1;
  if (/[a-z]/.test(compact) && /[A-Z]/.test(compact)) return -1;
  // Printed in groups: every group but the last has four characters.
  if (m[0][4] === ' ' && !/^(?:[A-Za-z0-9]{4} )+[A-Za-z0-9]{1,4}$/.test(text.slice(m.index, end))) return -1;
  return ibanValid(compact.toUpperCase()) ? end : -1;
}
