// Machine-readable zones (ICAO 9303) carry check digits for the document
// number, birth date, expiry and the whole zone; a passport number in prose
// has none, so only MRZs are reported. TD3 is the passport layout (two lines
// of 44), TD1 the identity-card layout (three lines of 30).
import type { Detector, ReportSpan } from '../detector.js';
import { mrzCheckDigit } from '../validators/checksums.js';

const TD3_LINE2 = /[A-Z0-9<]{9}\d[A-Z<]{3}\d{6}\d[MFX<]\d{6}\d[A-Z0-9<]{14}[\d<]\d(?![A-Z0-9<])/y;
const TD3_LINE1 = /P[A-Z<][A-Z<]{3}[A-Z<]{39}(?=\r?\n)/y;
const TD1 = /[AIC][A-Z<][A-Z<]{3}[A-Z0-9<]{9}[\d<][A-Z0-9<]{15}\r?\n\d{6}\d[MFX<]\d{6}\d[A-Z<]{3}[A-Z0-9<]{11}\d(?:\r?\n[A-Z<]{30})?(?![A-Z0-9<])/y;

export const MAX_MRZ_LENGTH = 3 * 30 + 2 * 2;

function checks(field: string, digit: string): boolean {
  if (digit === '<') return /^<*$/.test(field);
  return mrzCheckDigit(field) === Number(digit);
}

export function td3Valid(line: string): boolean {
  return checks(line.slice(0, 9), line[9]!) && checks(line.slice(13, 19), line[19]!) && checks(line.slice(21, 27), line[27]!)
    && checks(line.slice(28, 42), line[42]!)
    && checks(line.slice(0, 10) + line.slice(13, 20) + line.slice(21, 43), line[43]!);
}

export function td1Valid(line1: string, line2: string): boolean {
  return checks(line1.slice(5, 14), line1[14]!) && checks(line2.slice(0, 6), line2[6]!) && checks(line2.slice(8, 14), line2[14]!)
    && checks(line1.slice(5, 30) + line2.slice(0, 7) + line2.slice(8, 15) + line2.slice(18, 29), line2[29]!);
}

/** Reports a TD3 zone starting at `at` (line 1 or a lone line 2); returns where it ends, or -1. */
function reportTd3(text: string, at: number, report: ReportSpan): number {
  TD3_LINE1.lastIndex = at;
  const line1 = TD3_LINE1.exec(text);
  let line2At = at;
  if (line1 !== null) {
    line2At = text.indexOf('\n', at) + 1;
    while (text[line2At] === ' ' || text[line2At] === '\t') line2At++;
  }
  TD3_LINE2.lastIndex = line2At;
  const line2 = TD3_LINE2.exec(text);
  if (line2 === null || !td3Valid(line2[0])) return -1;
  report({ type: 'PASSPORT', start: line1 === null ? line2At : at, end: line2At + 44, confidence: 0.95, rule: 'pii.passport.mrz_td3', validator: 'icao9303-check-digits' });
  return line2At + 44;
}

function reportTd1(text: string, at: number, report: ReportSpan): number {
  TD1.lastIndex = at;
  const m = TD1.exec(text);
  if (m === null) return -1;
  const [line1, line2] = m[0].split(/\r?\n/);
  if (line1 === undefined || line2 === undefined || !td1Valid(line1, line2)) return -1;
  report({ type: 'NATIONAL_ID', start: at, end: at + m[0].length, confidence: 0.95, rule: 'pii.national_id.mrz_td1', validator: 'icao9303-check-digits' });
  return at + m[0].length;
}

export function createMrzDetector(): Detector {
  return {
    id: 'pii.mrz',
    types: ['PASSPORT', 'NATIONAL_ID'],
    keywords: ['<'],
    maxLength: MAX_MRZ_LENGTH,
    spanChars: /[A-Z0-9<\r\n \t]/,
    lookbehind: 1,
    lookahead: 1,
    detect(text: string, report: ReportSpan): void {
      // Zones are whole lines of 30 or 44 characters holding '<' fillers: look only at such lines.
      let next = 0;
      for (let lt = text.indexOf('<'); lt !== -1; lt = text.indexOf('<', next)) {
        const lineStart = text.lastIndexOf('\n', lt) + 1;
        let lineEnd = text.indexOf('\n', lt);
        if (lineEnd === -1) lineEnd = text.length;
        let first = lineStart;
        while (first < lineEnd && (text[first] === ' ' || text[first] === '\t')) first++;
        const width = text.slice(first, lineEnd).trimEnd().length;
        const end = width === 44 ? reportTd3(text, first, report) : width === 30 ? reportTd1(text, first, report) : -1;
        next = Math.max(lineEnd, end) + 1;
        if (next >= text.length) break;
      }
    },
  };
}
