// A small scanner with the same interface as the real detectors, built so
// the masking tests do not depend on them: regex detectors with bounded
// lengths and look-arounds (so they are local, as EntityScanner requires),
// validators, and an optional `undecidedFrom` showing how a detector can
// let the stream masker hold back less.
import type { EntityType, Span } from '../../src/detect/types.js';
import type { EntityScanner } from '../../src/mask/types.js';

interface Detector {
  type: EntityType;
  rule: string;
  pattern: RegExp;
  maxLength: number;
  validate?: (match: string) => boolean;
  /** Earliest index where a match of this detector could still start or change; text.length if none. */
  undecidedFrom: (text: string) => number;
}

export interface TestScannerOptions {
  /** Longest PEM body; keeps the maximum entity length (and so the holdback) small in tests. */
  pemBodyMax?: number;
  /** Offer `undecidedFrom`, as a cooperating real detector would. */
  withUndecidedFrom?: boolean;
}

export const luhnValid = (digits: string): boolean => {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let digit = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) digit = digit * 2 > 9 ? digit * 2 - 9 : digit * 2;
    sum += digit;
  }
  return sum % 10 === 0;
};

export const ibanValid = (iban: string): boolean => {
  const compact = iban.replace(/ /g, '');
  const rearranged = compact.slice(4) + compact.slice(0, 4);
  let remainder = 0;
  for (const char of rearranged) {
    const value = /[A-Z]/.test(char) ? String(char.charCodeAt(0) - 55) : char;
    for (const digit of value) remainder = (remainder * 10 + Number(digit)) % 97;
  }
  return remainder === 1;
};

/** The earliest start of a suffix of `text` matching `tail` (which must end in `$`). */
const tailStart = (text: string, tail: RegExp): number => {
  const match = tail.exec(text);
  return match && match[0] !== '' ? match.index : text.length;
};

/** Start of the longest suffix of `text` that is a (case-insensitive) prefix of `word`. */
const partialWordStart = (text: string, word: string): number => {
  for (let k = Math.min(word.length, text.length); k > 0; k--) {
    if (word.startsWith(text.slice(text.length - k).toLowerCase())) return text.length - k;
  }
  return text.length;
};

function pemDetector(bodyMax: number): Detector {
  const header = (kind: string): string => `-----${kind} (?:[A-Z]{1,10} ){0,3}PRIVATE KEY-----`;
  const source = `${header('BEGIN')}[\\s\\S]{1,${bodyMax}}?${header('END')}`;
  const pattern = new RegExp(source, 'g');
  const sticky = new RegExp(source, 'y');
  const maxLength = 2 * (6 + 4 + 33 + 16) + bodyMax;
  return {
    type: 'PRIVATE_KEY',
    rule: 'secret.pem_private_key',
    pattern,
    maxLength,
    undecidedFrom: (text) => {
      for (let begin = text.indexOf('-----BEGIN '); begin !== -1; begin = text.indexOf('-----BEGIN ', begin + 1)) {
        sticky.lastIndex = begin;
        const complete = sticky.exec(text);
        if (complete) {
          begin = begin + complete[0].length - 1;
          continue;
        }
        if (text.length - begin < maxLength) return begin;
      }
      return partialWordStart(text, '-----begin ');
    },
  };
}

function detectors(pemBodyMax: number): Detector[] {
  return [
    {
      type: 'EMAIL',
      rule: 'pii.email',
      pattern: /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,32}@[A-Za-z0-9-]{1,20}(?:\.[A-Za-z0-9-]{1,20}){0,3}\.[A-Za-z]{2,6}(?![A-Za-z0-9-]|\.[A-Za-z0-9-])/g,
      maxLength: 32 + 1 + 20 + 3 * 21 + 7,
      undecidedFrom: (text) => tailStart(text, /[A-Za-z0-9._%+@-]+$/),
    },
    {
      type: 'CREDIT_CARD',
      rule: 'pii.credit_card',
      pattern: /(?<![0-9])(?<![0-9][ -])[0-9](?:[ -]?[0-9]){12,18}(?![ -]?[0-9])/g,
      maxLength: 19 + 18,
      validate: (match) => luhnValid(match.replace(/[ -]/g, '')),
      undecidedFrom: (text) => tailStart(text, /(?:[0-9][ -]?)+$/),
    },
    {
      type: 'IBAN',
      rule: 'pii.iban',
      pattern: /(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])/g,
      maxLength: 4 + 7 * 5 + 5,
      validate: ibanValid,
      // A superset of IBAN prefixes, kept linear: nested quantifiers here would backtrack exponentially.
      undecidedFrom: (text) => tailStart(text, /(?:[A-Z]{1,2}|[A-Z]{2}[0-9]{1,2}|[A-Z]{2}[0-9]{2}[ A-Z0-9]*)$/),
    },
    pemDetector(pemBodyMax),
    {
      type: 'DICTIONARY',
      rule: 'dictionary.codenames',
      pattern: /(?<![A-Za-z0-9])bluebird(?![A-Za-z0-9])/gi,
      maxLength: 8,
      undecidedFrom: (text) => partialWordStart(text, 'bluebird'),
    },
  ];
}

export function createTestScanner(options: TestScannerOptions = {}): EntityScanner {
  const all = detectors(options.pemBodyMax ?? 200);
  const scan = (text: string): Span[] => {
    const found: Span[] = [];
    for (const detector of all) {
      detector.pattern.lastIndex = 0;
      for (const match of text.matchAll(detector.pattern)) {
        if (detector.validate && !detector.validate(match[0])) continue;
        found.push({ type: detector.type, start: match.index, end: match.index + match[0].length, confidence: 0.9, rule: detector.rule });
      }
    }
    // Overlaps: the earlier span wins, then the longer one.
    found.sort((a, b) => a.start - b.start || b.end - a.end);
    const kept: Span[] = [];
    for (const span of found) if (span.start >= (kept.at(-1)?.end ?? 0)) kept.push(span);
    return kept;
  };
  const scanner: EntityScanner = {
    scan,
    maxEntityLength: Math.max(...all.map((d) => d.maxLength)),
    contextLength: 2,
  };
  if (options.withUndecidedFrom) {
    return { ...scanner, undecidedFrom: (text) => Math.min(...all.map((d) => d.undecidedFrom(text))) };
  }
  return scanner;
}
