// PERSON and LOCATION through compromise (MIT, pure JavaScript, its English
// lexicon ships in the package: no download). Opt-in: not in the default
// types, since tagging costs far more than the pattern detectors (measured in
// eval/README.md), and names are ambiguous ("Baker", "Georgia"). The library
// is loaded on first use, so a gateway that never asks pays nothing.
import { createRequire } from 'node:module';
import type { Detector, ReportSpan } from '../detector.js';

export const MAX_NAME_LENGTH = 64;

interface CompromiseMatch {
  text: string;
  offset: { start: number; length: number };
}
interface CompromiseView {
  json(options: { offset: true }): CompromiseMatch[];
}
interface CompromiseDoc {
  people(): CompromiseView;
  places(): CompromiseView;
}
type Compromise = (text: string) => CompromiseDoc;

let compromise: Compromise | undefined;
function load(): Compromise {
  compromise ??= createRequire(import.meta.url)('compromise') as Compromise;
  return compromise;
}

// Compromise tags pronouns and titles into people ("he", "Mr"): a name has a capital or a letter beyond them.
const NOT_A_NAME = /^(?:i|me|my|he|him|his|she|her|hers|they|them|their|we|us|you|your|it|mr|mrs|ms|dr|sir|madam)$/i;
const EDGE = /^[\s.,;:!?'"()[\]-]+|[\s.,;:!?'"()[\]-]+$/g;

export function createNamesDetector(): Detector {
  return {
    id: 'pii.nlp',
    types: ['PERSON', 'LOCATION'],
    keywords: [],
    maxLength: MAX_NAME_LENGTH,
    // Tagging reads the sentence around a name; a sentence's worth either side.
    lookbehind: 64,
    lookahead: 32,
    detect(text: string, report: ReportSpan): void {
      if (!/\p{Lu}/u.test(text)) return;
      const doc = load()(text);
      const emit = (matches: CompromiseMatch[], type: 'PERSON' | 'LOCATION', rule: string, confidence: number): void => {
        for (const match of matches) {
          // Trim the punctuation compromise keeps at the edges, and re-find the offsets in the text.
          const raw = text.slice(match.offset.start, match.offset.start + match.offset.length);
          const lead = raw.length - raw.replace(/^[\s.,;:!?'"()[\]-]+/, '').length;
          const value = raw.replace(EDGE, '');
          if (value.length < 2 || value.length > MAX_NAME_LENGTH || NOT_A_NAME.test(value) || !/\p{L}/u.test(value)) continue;
          const start = match.offset.start + lead;
          if (text.slice(start, start + value.length) !== value) continue;
          report({ type, start, end: start + value.length, confidence, rule });
        }
      };
      emit(doc.people().json({ offset: true }), 'PERSON', 'pii.nlp.person', 0.6);
      emit(doc.places().json({ offset: true }), 'LOCATION', 'pii.nlp.location', 0.55);
    },
  };
}
