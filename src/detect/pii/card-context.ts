// Card numbers the issuer table does not know (old 15-digit JCB "1800…" and
// "2131…", 12-digit Maestro, private-label cards): any Luhn-valid 12-19
// digits, but only right after a card word ("card 180000826105910", "credit
// card 5874 2856 1654"). Beside credit-card.ts, which stays the issuer-checked
// detector for numbers without context.
import { candidateStarts, forEachMatchAt, type ScanContext } from '../context.js';
import type { Detector, ReportSpan } from '../detector.js';
import { luhnValid } from '../validators/checksums.js';

const CANDIDATE = /(?<![\w.-])\d(?:[ -]?\d){11,18}(?![\w-]|[.,]\d)/y;
// The card word ends at most a few characters before the number ("card no 4…", "credit card: 5…").
const CARD_WORD_BEFORE = /(?<![\p{L}])(?:card|cards|credit|debit|visa|mastercard|maestro|jcb|amex|cc|ccn|pan)(?:\s+(?:no\.?|number|num|#))?[\s:#.-]{0,3}$/iu;

export function createCardContextDetector(): Detector {
  return {
    id: 'pii.credit_card',
    types: ['CREDIT_CARD'],
    keywords: ['card', 'credit', 'debit', 'visa', 'mastercard', 'maestro', 'jcb', 'amex', 'cc', 'ccn', 'pan'],
    maxLength: 23,
    spanChars: /[0-9 -]/,
    spanAnchor: /[0-9]/,
    lookbehind: 24,
    lookahead: 2,
    detect(text: string, report: ReportSpan, context: ScanContext): void {
      for (const run of context.digitRuns()) {
        forEachMatchAt(CANDIDATE, text, candidateStarts(text, run), (m) => {
          if (!CARD_WORD_BEFORE.test(text.slice(Math.max(0, m.index - 24), m.index))) return false;
          if (!luhnValid(m[0].replace(/[ -]/g, ''))) return false;
          report({ type: 'CREDIT_CARD', start: m.index, end: m.index + m[0].length, confidence: 0.75, rule: 'pii.credit_card.context', validator: 'luhn' });
          return true;
        });
      }
    },
  };
}
