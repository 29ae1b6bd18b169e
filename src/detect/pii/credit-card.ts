// Payment card numbers: 12-19 digits in a card-like grouping, a known issuer
// prefix with an allowed length for that issuer, then Luhn.
import { candidateStarts, forEachMatchAt, type ScanContext } from '../context.js';
import { clampConfidence, type Detector, type ReportSpan } from '../detector.js';
import { luhnValid } from '../validators/checksums.js';
import { DIGIT_KEYWORDS, hasContext } from '../text.js';

// 19 digits and up to 4 separators.
export const MAX_CARD_LENGTH = 23;

interface Issuer {
  name: string;
  /** Inclusive prefix ranges, compared on the same number of leading digits. */
  ranges: ReadonlyArray<readonly [number, number]>;
  lengths: readonly number[];
}

// Public IIN ranges of the major networks.
const ISSUERS: readonly Issuer[] = [
  { name: 'visa', ranges: [[4, 4]], lengths: [13, 16, 19] },
  { name: 'mastercard', ranges: [[51, 55], [2221, 2720]], lengths: [16] },
  { name: 'amex', ranges: [[34, 34], [37, 37]], lengths: [15] },
  { name: 'discover', ranges: [[6011, 6011], [644, 649], [65, 65], [622126, 622925]], lengths: [16, 17, 18, 19] },
  { name: 'diners', ranges: [[300, 305], [36, 36], [38, 39]], lengths: [14, 15, 16, 17, 18, 19] },
  { name: 'jcb', ranges: [[3528, 3589]], lengths: [16, 17, 18, 19] },
  { name: 'unionpay', ranges: [[62, 62], [81, 81]], lengths: [16, 17, 18, 19] },
  { name: 'maestro', ranges: [[5018, 5018], [5020, 5020], [5038, 5038], [5893, 5893], [6304, 6304], [6759, 6759], [6761, 6763]], lengths: [12, 13, 14, 15, 16, 17, 18, 19] },
  { name: 'mir', ranges: [[2200, 2204]], lengths: [16, 17, 18, 19] },
  { name: 'rupay', ranges: [[60, 60], [6521, 6522], [508, 508]], lengths: [16] },
];

export function cardIssuer(digits: string): string | undefined {
  for (const issuer of ISSUERS) {
    if (!issuer.lengths.includes(digits.length)) continue;
    for (const [low, high] of issuer.ranges) {
      const width = String(low).length;
      const prefix = Number(digits.slice(0, width));
      if (prefix >= low && prefix <= high) return issuer.name;
    }
  }
  return undefined;
}

/** Groups as printed on cards or typed by people: 4-4-4-4(-3), Amex 4-6-5, Diners 4-6-4, or no separators. */
function plausibleGrouping(groups: readonly string[]): boolean {
  if (groups.length === 1) return true;
  const sizes = groups.map((g) => g.length);
  if (sizes.length === 3 && sizes[0] === 4 && sizes[1] === 6 && (sizes[2] === 5 || sizes[2] === 4)) return true;
  return sizes.slice(0, -1).every((n) => n === 4) && sizes[sizes.length - 1]! >= 1 && sizes[sizes.length - 1]! <= 4;
}

// Not inside a word or a decimal, but "No.4111..." and "card#4111..." are cards.
const CANDIDATE = /(?<![\w-])(?<!\d[.,])\d(?:[ -]?\d){11,18}(?![\w-]|[.,]\d)/y;
const CARD_WORDS = /\b(?:card|cards|credit|debit|visa|mastercard|amex|american express|discover|maestro|cc|ccn|pan|charge|charged|payment|pay|billing|exp|expiry|expires|cvv|cvc)\b/i;
// The digits after an IBAN's country and check digits are not a card.
const IBAN_HEAD_BEFORE = /[A-Za-z]{2}\d{2}[ -]$/;

/**
 * Reports the card in a candidate, if any. Spaces and hyphens may be mixed
 * ("4111 1111-1111 1111"); the grouping must still be a card's. The retry drops a trailing group that belongs to the next number ("... 1111 05/27"). */
function reportCard(text: string, m: RegExpExecArray, report: ReportSpan): boolean {
  if (IBAN_HEAD_BEFORE.test(text.slice(Math.max(0, m.index - 5), m.index))) return false;
  let candidate = m[0];
  for (let attempt = 0; attempt < 2; attempt++) {
    const groups = candidate.split(/[ -]/);
    const digits = groups.join('');
    const issuer = plausibleGrouping(groups) ? cardIssuer(digits) : undefined;
    if (issuer !== undefined && luhnValid(digits) && !/^(\d)\1+$/.test(digits)) {
      const start = m.index;
      const end = start + candidate.length;
      const boost = hasContext(text, start, end, CARD_WORDS, 40) ? 0.08 : 0;
      report({ type: 'CREDIT_CARD', start, end, confidence: clampConfidence(0.9 + boost), rule: 'pii.credit_card', validator: `luhn+iin:${issuer}` });
      return true;
    }
    const cut = candidate.search(/[ -]\d+$/);
    if (cut < 0) return false;
    candidate = candidate.slice(0, cut);
  }
  return false;
}

export function createCreditCardDetector(): Detector {
  return {
    id: 'pii.credit_card',
    types: ['CREDIT_CARD'],
    keywords: DIGIT_KEYWORDS,
    maxLength: MAX_CARD_LENGTH,
    spanChars: /[0-9 -]/,
    spanAnchor: /[0-9]/,
    lookbehind: 40,
    lookahead: 2,
    detect(text: string, report: ReportSpan, context: ScanContext): void {
      for (const run of context.digitRuns()) {
        if (run.digits >= 12) forEachMatchAt(CANDIDATE, text, candidateStarts(text, run), (m) => reportCard(text, m, report));
      }
    },
  };
}
