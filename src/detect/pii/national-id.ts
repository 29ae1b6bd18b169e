// National identity numbers that carry a check digit. Each entry is a shape,
// its checksum, and whether it needs a context word: self-checking formats
// with letters or punctuation stand alone, bare digit runs (BSN, NHS, SIN,
// Aadhaar) are flagged only next to their name.
import { candidateStarts, forEachMatchAt, type ScanContext } from '../context.js';
import { clampConfidence, forEachMatch, type Detector, type ReportSpan } from '../detector.js';
import { iso7064Mod11x2, luhnValid, verhoeffValid } from '../validators/checksums.js';
import { isCalendarDate, isCalendarDateTwoDigitYear } from '../validators/dates.js';
import { DIGIT_KEYWORDS, hasContext } from '../text.js';

interface NationalIdRule {
  rule: string;
  pattern: RegExp;
  maxLength: number;
  validate(value: string): boolean;
  /** Words that raise confidence; required when `requiresContext`. */
  context: RegExp;
  requiresContext: boolean;
  /** Prefilter literals; for rules that need context these are the context words themselves. */
  keywords: readonly string[];
  /** Digit-led shapes: only digit runs with at least this many digits are tried (see ScanContext). */
  minDigits?: number;
  /** Characters that may precede the first digit (the NIE letter, the fiscal code's letters), at most `prefixLength`. */
  prefix?: RegExp;
  prefixLength?: number;
  confidence: number;
}

const CONTEXT_BEFORE = 40;

function digitsOnly(value: string): string {
  return value.replace(/[^0-9]/g, '');
}

const DNI_LETTERS = 'TRWAGMYFPDXBNJZSQVHLCKE';
function spanishDniValid(value: string): boolean {
  const compact = value.replace(/[\s-]/g, '').toUpperCase();
  const nie = { X: '0', Y: '1', Z: '2' }[compact[0] as 'X' | 'Y' | 'Z'];
  const body = nie === undefined ? compact.slice(0, 8) : nie + compact.slice(1, 8);
  if (!/^\d{8}$/.test(body)) return false;
  return DNI_LETTERS[Number(body) % 23] === compact[8];
}

// Codice fiscale: odd positions use a fixed table, even ones the plain value.
const CF_ODD: Readonly<Record<string, number>> = {
  0: 1, 1: 0, 2: 5, 3: 7, 4: 9, 5: 13, 6: 15, 7: 17, 8: 19, 9: 21, A: 1, B: 0, C: 5, D: 7, E: 9, F: 13, G: 15,
  H: 17, I: 19, J: 21, K: 2, L: 4, M: 18, N: 20, O: 11, P: 3, Q: 6, R: 8, S: 12, T: 14, U: 16, V: 10, W: 22,
  X: 25, Y: 24, Z: 23,
};
function italianFiscalCodeValid(value: string): boolean {
  const code = value.toUpperCase();
  let sum = 0;
  for (let i = 0; i < 15; i++) {
    const ch = code[i]!;
    if (i % 2 === 0) sum += CF_ODD[ch] ?? 0;
    else sum += /\d/.test(ch) ? Number(ch) : ch.charCodeAt(0) - 65;
  }
  return String.fromCharCode(65 + (sum % 26)) === code[15];
}

function frenchNirValid(value: string): boolean {
  const compact = value.replace(/\s/g, '').toUpperCase();
  // Corsican departments 2A and 2B replace their letter for the checksum.
  const numeric = compact.slice(0, 13).replace('2A', '19').replace('2B', '18');
  if (!/^\d{13}$/.test(numeric)) return false;
  const key = Number(compact.slice(13));
  return 97 - Number(BigInt(numeric) % 97n) === key;
}

function dutchBsnValid(value: string): boolean {
  const digits = digitsOnly(value);
  if (digits.length !== 9 || /^0+$/.test(digits)) return false;
  let sum = 0;
  for (let i = 0; i < 8; i++) sum += Number(digits[i]) * (9 - i);
  sum -= Number(digits[8]);
  return sum % 11 === 0;
}

function nhsNumberValid(value: string): boolean {
  const digits = digitsOnly(value);
  if (digits.length !== 10) return false;
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += Number(digits[i]) * (10 - i);
  const check = 11 - (sum % 11);
  return (check === 11 ? 0 : check) === Number(digits[9]) && check !== 10;
}

function brazilCpfValid(value: string): boolean {
  const digits = digitsOnly(value);
  if (digits.length !== 11 || /^(\d)\1{10}$/.test(digits)) return false;
  const check = (length: number): number => {
    let sum = 0;
    for (let i = 0; i < length; i++) sum += Number(digits[i]) * (length + 1 - i);
    const rest = (sum * 10) % 11;
    return rest === 10 ? 0 : rest;
  };
  return check(9) === Number(digits[9]) && check(10) === Number(digits[10]);
}

function chineseResidentIdValid(value: string): boolean {
  const code = value.toUpperCase();
  if (!isCalendarDate(Number(code.slice(6, 10)), Number(code.slice(10, 12)), Number(code.slice(12, 14)))) return false;
  return iso7064Mod11x2(code.slice(0, 17)) === code[17];
}

const HETU_CHECK = '0123456789ABCDEFHJKLMNPRSTUVWXY';
function finnishHetuValid(value: string): boolean {
  const code = value.toUpperCase();
  const day = Number(code.slice(0, 2)), month = Number(code.slice(2, 4)), yy = Number(code.slice(4, 6));
  if (!isCalendarDateTwoDigitYear(yy, month, day)) return false;
  return HETU_CHECK[Number(code.slice(0, 6) + code.slice(7, 10)) % 31] === code[10];
}

function swedishPersonnummerValid(value: string): boolean {
  const digits = digitsOnly(value).slice(-10);
  const month = Number(digits.slice(2, 4));
  let day = Number(digits.slice(4, 6));
  if (day > 60) day -= 60; // samordningsnummer
  if (!isCalendarDateTwoDigitYear(Number(digits.slice(0, 2)), month, day)) return false;
  return luhnValid(digits);
}

export const NATIONAL_ID_RULES: readonly NationalIdRule[] = [
  {
    rule: 'pii.national_id.es_dni',
    pattern: /(?<![\w-])(?:\d{8}|[XYZ]-?\d{7})-?[A-HJ-NP-TV-Z](?![\w-])/g,
    maxLength: 11,
    validate: spanishDniValid,
    context: /\b(?:dni|nie|nif|documento|identidad)\b/i,
    requiresContext: false,
    keywords: DIGIT_KEYWORDS,
    minDigits: 7,
    prefix: /^[XYZ]-?$/,
    confidence: 0.7,
  },
  {
    rule: 'pii.national_id.it_codice_fiscale',
    // Searched from its digits (birth year, day, place): codes whose digits were replaced by letters (omocodia) are not found.
    pattern: /(?<![\w])[A-Z]{6}\d{2}[A-EHLMPR-T]\d{2}[A-Z]\d{3}[A-Z](?![\w])/g,
    maxLength: 16,
    validate: italianFiscalCodeValid,
    context: /\b(?:codice fiscale|cf|c\.f\.|tax code|fiscal code)\b/i,
    requiresContext: false,
    keywords: DIGIT_KEYWORDS,
    minDigits: 7,
    prefix: /^[A-Z]{6}$/,
    prefixLength: 6,
    confidence: 0.85,
  },
  {
    rule: 'pii.national_id.fr_nir',
    pattern: /(?<![\w])[12] ?\d{2} ?(?:0[1-9]|1[0-2]|[2-9]\d) ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}(?![\w])/g,
    maxLength: 21,
    validate: frenchNirValid,
    context: /\b(?:nir|insee|s[ée]curit[ée] sociale|num[ée]ro de s[ée]cu|carte vitale)\b/i,
    requiresContext: false,
    keywords: DIGIT_KEYWORDS,
    minDigits: 13,
    confidence: 0.8,
  },
  {
    rule: 'pii.national_id.cn_resident_id',
    pattern: /(?<![\w])[1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![\w])/g,
    maxLength: 18,
    validate: chineseResidentIdValid,
    context: /(?:身份证|resident id|identity card|id card)/i,
    requiresContext: false,
    keywords: DIGIT_KEYWORDS,
    minDigits: 17,
    confidence: 0.85,
  },
  {
    rule: 'pii.national_id.fi_hetu',
    pattern: /(?<![\w-])\d{6}[-+A-FU-Y]\d{3}[0-9A-FHJ-NPR-Y](?![\w-])/g,
    maxLength: 11,
    validate: finnishHetuValid,
    context: /\b(?:hetu|henkilötunnus|personal identity code|sotu)\b/i,
    requiresContext: false,
    keywords: DIGIT_KEYWORDS,
    minDigits: 9,
    confidence: 0.8,
  },
  {
    rule: 'pii.national_id.br_cpf',
    pattern: /(?<![\w.-])\d{3}\.\d{3}\.\d{3}-\d{2}(?![\w-]|\.\d)/g,
    maxLength: 14,
    validate: brazilCpfValid,
    context: /\b(?:cpf|cadastro de pessoas)\b/i,
    requiresContext: false,
    keywords: DIGIT_KEYWORDS,
    minDigits: 11,
    confidence: 0.85,
  },
  {
    rule: 'pii.national_id.se_personnummer',
    pattern: /(?<![\w-])(?:19|20)?\d{6}[-+]\d{4}(?![\w-])/g,
    maxLength: 13,
    validate: swedishPersonnummerValid,
    context: /\b(?:personnummer|personnr|samordningsnummer)\b/i,
    requiresContext: true,
    keywords: ['personnummer', 'personnr', 'samordningsnummer'],
    minDigits: 10,
    confidence: 0.85,
  },
  {
    rule: 'pii.national_id.nl_bsn',
    pattern: /(?<![\w.-])\d{4}\.?\d{2}\.?\d{3}(?![\w-]|\.\d)/g,
    maxLength: 11,
    validate: dutchBsnValid,
    context: /\b(?:bsn|burgerservicenummer|sofinummer|sofi-nummer)\b/i,
    requiresContext: true,
    keywords: ['bsn', 'burgerservicenummer', 'sofinummer', 'sofi-nummer'],
    minDigits: 9,
    confidence: 0.85,
  },
  {
    rule: 'pii.national_id.uk_nhs',
    pattern: /(?<![\w.-])\d{3}[ -]?\d{3}[ -]?\d{4}(?![\w-]|\.\d)/g,
    maxLength: 12,
    validate: nhsNumberValid,
    context: /\bnhs\b/i,
    requiresContext: true,
    keywords: ['nhs'],
    minDigits: 10,
    confidence: 0.85,
  },
  {
    rule: 'pii.national_id.ca_sin',
    pattern: /(?<![\w.-])\d{3}[ -]?\d{3}[ -]?\d{3}(?![\w-]|\.\d)/g,
    maxLength: 11,
    validate: (value) => luhnValid(digitsOnly(value)) && !/^[08]/.test(digitsOnly(value)),
    context: /\b(?:sin|social insurance|num[ée]ro d'assurance sociale|nas)\b/i,
    requiresContext: true,
    keywords: ['sin', 'social insurance', "d'assurance sociale", 'nas'],
    minDigits: 9,
    confidence: 0.85,
  },
  {
    rule: 'pii.national_id.in_aadhaar',
    pattern: /(?<![\w.-])[2-9]\d{3}[ -]?\d{4}[ -]?\d{4}(?![\w-]|\.\d)/g,
    maxLength: 14,
    validate: (value) => verhoeffValid(digitsOnly(value)),
    context: /(?:\baadhaar\b|\baadhar\b|\buidai\b|आधार)/i,
    requiresContext: true,
    keywords: ['aadhaar', 'aadhar', 'uidai', 'आधार'],
    minDigits: 12,
    confidence: 0.85,
  },
];

/** One detector per rule, so the prefilter can skip the context-only ones by their words. */
export function createNationalIdDetectors(): Detector[] {
  return NATIONAL_ID_RULES.map((rule) => {
    const sticky = rule.minDigits === undefined ? undefined : new RegExp(rule.pattern.source, rule.pattern.flags.replace('g', '') + 'y');
    const visit = (text: string, m: RegExpExecArray, report: ReportSpan): boolean => {
      if (!rule.validate(m[0])) return false;
      const start = m.index;
      const end = start + m[0].length;
      const named = hasContext(text, start, end, rule.context, CONTEXT_BEFORE);
      if (rule.requiresContext && !named) return false;
      const confidence = clampConfidence(rule.confidence + (named && !rule.requiresContext ? 0.1 : 0));
      report({ type: 'NATIONAL_ID', start, end, confidence, rule: rule.rule, validator: 'checksum' });
      return true;
    };
    return {
      id: rule.rule,
      types: ['NATIONAL_ID'],
      keywords: rule.keywords,
      maxLength: rule.maxLength,
      spanChars: /[0-9A-Zx .+-]/,
      spanAnchor: /[0-9]/,
      lookbehind: CONTEXT_BEFORE,
      lookahead: 2,
      detect(text: string, report: ReportSpan, context: ScanContext): void {
        if (sticky === undefined) {
          forEachMatch(rule.pattern, text, (m) => { visit(text, m, report); });
          return;
        }
        for (const run of context.digitRuns()) {
          if (run.digits >= rule.minDigits!) forEachMatchAt(sticky, text, candidateStarts(text, run, rule.prefix, rule.prefixLength), (m) => visit(text, m, report));
        }
      },
    };
  });
}
