// Operator dictionaries (project code names, customer names...): one
// Aho-Corasick pass over all terms of all dictionaries, case-insensitive,
// whole words only.
import { AhoCorasick } from './aho-corasick.js';
import type { Detector, ReportSpan } from './detector.js';
import { isWordCharAt } from './text.js';

export const DICTIONARY_CONFIDENCE = 0.9;

interface Term {
  dictionary: string;
  /** Whether the first / last character is a word character, so "whole word" needs a boundary there. */
  boundaryBefore: boolean;
  boundaryAfter: boolean;
}

export function createDictionaryDetector(dictionaries: Record<string, readonly string[]>): Detector | undefined {
  const patterns: string[] = [];
  const terms: Term[] = [];
  for (const [name, list] of Object.entries(dictionaries)) {
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new Error(`dictionary name "${name}" must use letters, digits, '_', '.' or '-'`);
    for (const raw of list) {
      const term = raw.trim();
      if (term.length === 0) continue;
      patterns.push(term);
      terms.push({ dictionary: name, boundaryBefore: isWordCharAt(term, 0), boundaryAfter: isWordCharAt(term, term.length - 1) });
    }
  }
  if (patterns.length === 0) return undefined;
  const automaton = new AhoCorasick(patterns, { caseInsensitive: true });
  return {
    id: 'dictionary',
    types: ['DICTIONARY'],
    keywords: [],
    maxLength: automaton.longestPattern,
    lookbehind: 1,
    lookahead: 1,
    detect(text: string, report: ReportSpan): void {
      automaton.scan(text, (index, start, end) => {
        const term = terms[index]!;
        if (term.boundaryBefore && isWordCharAt(text, start - 1)) return;
        if (term.boundaryAfter && isWordCharAt(text, end)) return;
        report({
          type: 'DICTIONARY',
          start,
          end,
          confidence: DICTIONARY_CONFIDENCE,
          rule: `dictionary.${term.dictionary}`,
          validator: 'whole-word',
        });
      });
    },
  };
}
