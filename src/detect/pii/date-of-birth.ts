// Dates of birth: a date is only personal data when the text says it is a
// birth date, so this detector starts from the context words ("born", "DOB",
// "date of birth"...) and looks for a real calendar date shortly after them.
import { forEachMatch, type Detector, type ReportSpan } from '../detector.js';
import { isCalendarDate, isCalendarDateTwoDigitYear, MONTH_NAMES } from '../validators/dates.js';

const WINDOW_AFTER_CONTEXT = 40;
export const MAX_DOB_LENGTH = 32;

const CONTEXT = /(?<![\w])(?:born(?:\s+on)?|date\s+of\s+birth|birth\s*date|birthdate|birthday|d\.?o\.?b\.?|geburtsdatum|geboren(?:\s+am)?|n[ée]e?\s+le|date\s+de\s+naissance|fecha\s+de\s+nacimiento|nacid[oa]\s+el|data\s+di\s+nascita)(?![\w])/i;
// The distinctive part of each context phrase, searched first because a short search is fast. English and
// other languages are separate detectors, so English text never pays for the foreign words.
const LANGUAGES = [
  { id: 'pii.date_of_birth', hint: /born|birth|dob|d\.o\.b/gi, keywords: ['born', 'birth', 'dob', 'd.o.b'] },
  {
    id: 'pii.date_of_birth.intl',
    hint: /geb(?:urt|oren)|n[ée]e? le|na(?:issance|cimiento|cid)|nascita/gi,
    keywords: ['geburt', 'geboren', 'ne le', 'née le', 'né le', 'nee le', 'naissance', 'nacimiento', 'nacido', 'nacida', 'nascita'],
  },
];
const HINT_REACH = 24;
const CONTEXT_NEAR_HINT = new RegExp(CONTEXT.source, 'gi');

const MONTH = '(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\\.?';
const ORDINAL = '(?:st|nd|rd|th)?';
const MONTH_INITIAL = /[JFMASONDjfmasond]/;
const DATE_FORMATS: ReadonlyArray<{ pattern: RegExp; startsWithDigit: boolean; read(m: RegExpExecArray): boolean }> = [
  { // 1985-03-12, 1985/03/12
    pattern: /(?<![\w.\/-])(\d{4})([-\/.])(\d{1,2})\2(\d{1,2})(?![\w\/-]|\.\d)/y,
    startsWithDigit: true,
    read: (m) => isCalendarDate(Number(m[1]), Number(m[3]), Number(m[4])),
  },
  { // 12/03/1985, 03-12-85, 12.03.1985: day-first or month-first, whichever exists
    pattern: /(?<![\w.\/-])(\d{1,2})([-\/.])(\d{1,2})\2(\d{4}|\d{2})(?![\w\/-]|\.\d)/y,
    startsWithDigit: true,
    read: (m) => {
      const a = Number(m[1]), b = Number(m[3]), year = m[4]!;
      const check = year.length === 4
        ? (month: number, day: number) => isCalendarDate(Number(year), month, day)
        : (month: number, day: number) => isCalendarDateTwoDigitYear(Number(year), month, day);
      return check(b, a) || check(a, b);
    },
  },
  { // 12 March 1985, 12th of March, 1985
    pattern: new RegExp(`(?<![\\w])(\\d{1,2})${ORDINAL}\\s+(?:of\\s+)?${MONTH},?\\s+(\\d{4})(?![\\w])`, 'iy'),
    startsWithDigit: true,
    read: (m) => isCalendarDate(Number(m[3]), MONTH_NAMES[m[2]!.toLowerCase()] ?? 0, Number(m[1])),
  },
  { // March 12, 1985
    pattern: new RegExp(`(?<![\\w])${MONTH}\\s+(\\d{1,2})${ORDINAL},?\\s+(\\d{4})(?![\\w])`, 'iy'),
    startsWithDigit: false,
    read: (m) => isCalendarDate(Number(m[3]), MONTH_NAMES[m[1]!.toLowerCase()] ?? 0, Number(m[2])),
  },
];

export function createDateOfBirthDetectors(): Detector[] {
  return LANGUAGES.map(({ id, hint, keywords }) => ({
    id,
    types: ['DATE_OF_BIRTH'],
    keywords,
    maxLength: MAX_DOB_LENGTH,
    lookbehind: WINDOW_AFTER_CONTEXT + 24,
    lookahead: 2,
    openFrom(text: string, settled: number): number {
      // A date still growing at the end is only a birth date if a context word precedes it.
      const reach = text.slice(Math.max(0, settled - MAX_DOB_LENGTH - WINDOW_AFTER_CONTEXT - HINT_REACH), text.length);
      hint.lastIndex = 0;
      return hint.test(reach) ? settled - MAX_DOB_LENGTH : settled;
    },
    detect(text: string, report: ReportSpan): void {
      // Find the distinctive part of each context phrase, then read the whole phrase around it.
      const phrases = new Map<number, number>();
      forEachMatch(hint, text, (found) => {
        // Every date format has digits: without one nearby, "born in Leeds" needs no further look.
        if (!/\d/.test(text.slice(found.index, found.index + HINT_REACH + WINDOW_AFTER_CONTEXT))) return;
        const from = Math.max(0, found.index - HINT_REACH);
        const window = text.slice(from, Math.min(text.length, found.index + HINT_REACH));
        for (const m of window.matchAll(CONTEXT_NEAR_HINT)) phrases.set(from + m.index, from + m.index + m[0].length);
      });
      let lastEnd = -1;
      for (const [, from] of [...phrases.entries()].sort((a, b) => a[0] - b[0])) {
        const windowEnd = Math.min(text.length, from + WINDOW_AFTER_CONTEXT);
        if (!/\d/.test(text.slice(from, windowEnd + MAX_DOB_LENGTH))) continue;
        // The nearest token after the context word that reads as a real date: it starts with a digit or a month name.
        search: for (let at = from; at < windowEnd; at++) {
          const digit = /\d/.test(text[at]!);
          if (at <= lastEnd || !(digit || MONTH_INITIAL.test(text[at]!)) || /[0-9A-Za-z]/.test(text[at - 1] ?? '')) continue;
          for (const format of DATE_FORMATS) {
            if (format.startsWithDigit !== digit) continue;
            format.pattern.lastIndex = at;
            const m = format.pattern.exec(text);
            if (m === null || !format.read(m)) continue;
            const year = /\d{4}/.exec(m[0]);
            // Birth years from 1900 on; without a clock the future cannot be ruled out, only the absurd.
            if (year !== null && (Number(year[0]) < 1900 || Number(year[0]) > 2100)) continue;
            const end = at + m[0].length;
            report({ type: 'DATE_OF_BIRTH', start: at, end, confidence: 0.85, rule: 'pii.date_of_birth', validator: 'calendar-date+context' });
            lastEnd = end;
            break search;
          }
        }
      }
    },
  }));
}
