// Street addresses by shape: a house number next to a street word ("221B
// Baker Street", "Via Franscini 71", "Mellemvej 32", "Erzsébet tér 19") and
// the unit that follows ("Apt. 595", "Suite 838"). Opt-in like PERSON and
// LOCATION. Street words in English, German, Nordic, Dutch, Finnish,
// Hungarian and Romance languages.
import { forEachMatch, type Detector, type ReportSpan } from '../detector.js';

export const MAX_ADDRESS_LENGTH = 120;

const UNIT = String.raw`(?:apt|apartment|suite|ste|unit|flat)\.?\s*#?\d{1,5}[a-z]?`;
const EN_STREET = String.raw`(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|square|sq|terrace|parkway|pkwy|highway|hwy|circle|cir|trail|crescent|close)`;
const SUFFIX_STREET = String.raw`(?:straße|strasse|str\.|weg|gasse|platz|allee|vej|gade|gatan|gata|vägen|veien|vegen|tie|katu|kuja|polku|laan|straat|plein|gracht|utca|út|tér|u\.)`;
const PREFIX_STREET = String.raw`(?:rue|via|viale|piazza|calle|avenida|rua|plaza|ul\.|ulica)`;
const WORD = String.raw`[\p{Lu}][\p{L}'’-]*`;

const ADDRESS = new RegExp(
  [
    // 221B Baker Street[, Apt. 4]
    String.raw`\b\d{1,6}[A-Za-z]?\s+(?:${WORD}\s+){1,4}${EN_STREET}\b\.?(?:,?\s+${UNIT})?`,
    // Mellemvej 32, Erzsébet tér 19, Via Franscini 71
    String.raw`(?<![\p{L}])(?:[\p{L}'’-]*${SUFFIX_STREET}|${WORD}\s+${SUFFIX_STREET}|${PREFIX_STREET}\s+(?:${WORD}\s+){0,3}${WORD})\s+\d{1,5}[a-z]?\b\.?(?:,?\s+${UNIT})?`,
    // Apt. 595 alone
    String.raw`\b${UNIT}\b`,
  ].join('|'),
  'giu',
);

export function createAddressDetector(): Detector {
  return {
    id: 'pii.address',
    types: ['ADDRESS'],
    keywords: [],
    maxLength: MAX_ADDRESS_LENGTH,
    lookbehind: 8,
    lookahead: 16,
    detect(text: string, report: ReportSpan): void {
      if (!/\d/.test(text)) return;
      forEachMatch(ADDRESS, text, (m) => {
        const value = m[0].replace(/[\s.,]+$/, '');
        if (value.length > MAX_ADDRESS_LENGTH) return;
        report({ type: 'ADDRESS', start: m.index, end: m.index + value.length, confidence: /^\d/.test(value) || /\d$/.test(value) ? 0.6 : 0.5, rule: 'pii.address.street' });
      });
    },
  };
}
