// Features of the learned injection classifier, shared by the training
// script and the gateway so both see a text the same way. The hashing trick
// (Weinberger et al.) maps word and character n-grams to a fixed number of
// signed buckets: no vocabulary to ship, any language and script welcome.
//  - text is folded (NFKC, invisible characters dropped, lower case, digit
//    runs collapsed) so "ＩＧＮＯＲＥ", "Ig\u200Bnore" and "ignore" agree and
//    ids or numbers are not memorised;
//  - word unigrams and bigrams carry the moves ("ignore previous", "you are");
//  - character 3- to 5-grams carry misspellings, inflections and scripts
//    without spaces (Thai, Japanese, Chinese).
// Values are 1 + log(count), then the vector is scaled to unit length, so a
// long text and a short one are comparable. A squared norm under NORM_FLOOR
// would be scaled as if it were that long (a few words carrying less evidence
// than a paragraph); the shipped model uses none, since 200 and 600 did not
// help under leave-one-source-out validation (training/validate-injection.ts).

/** log2 of the number of buckets. */
export const FEATURE_BITS = 18;
export const FEATURE_DIM = 1 << FEATURE_BITS;
const MASK = FEATURE_DIM - 1;

/** Squared norm below which a text's vector is not scaled up to unit length (200 is about 60 characters); 0: always unit length. */
export const NORM_FLOOR = 0;

const CHAR_MIN = 3;
const CHAR_MAX = 5;
/** Seeds keep the feature families apart in the hash space. */
const SEED_WORD = 0x811c9dc5;
const SEED_BIGRAM = 0x9e3779b9;
const SEED_CHAR = 0x85ebca6b;

const INVISIBLE = /[\u00AD\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\uFEFF]/g;
const DIGITS = /\p{Nd}+/gu;
const SPACES = /\s+/g;

/** The folded text the features are taken from. */
export function foldText(text: string): string {
  let t = /[^\x00-\x7F]/.test(text) ? text.normalize('NFKC').replace(INVISIBLE, '') : text;
  t = t.toLowerCase().replace(DIGITS, '0').replace(SPACES, ' ');
  return t;
}

const ASCII_WORD = new Uint8Array(128);
for (const ch of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_'") ASCII_WORD[ch.charCodeAt(0)] = 1;

/** Letters, digits and marks; outside ASCII, everything but spaces and the punctuation blocks (a table, not a Unicode regex: 4x faster). */
function isWordChar(c: number): boolean {
  if (c < 128) return ASCII_WORD[c] === 1;
  if (c <= 0xbf) return c === 0xaa || c === 0xb5 || c === 0xba;
  if (c >= 0x2000 && c <= 0x2bff) return false;
  if (c >= 0x3000 && c <= 0x303f) return false;
  if (c >= 0xff00 && c <= 0xff0f) return false;
  if (c >= 0xff1a && c <= 0xff20) return false;
  return true;
}

/** Sparse feature vector: parallel arrays of bucket indexes and values, unit length. */
export interface FeatureVector {
  index: Int32Array;
  value: Float32Array;
}

// A reused open-addressing table counts features without allocating per n-gram (a Map costs twice the time).
let slots = new Int32Array(1 << 14);
let slotCounts = new Float32Array(1 << 14);
let used: number[] = [];

function resetTable(expected: number): void {
  let size = slots.length;
  while (size < expected * 2) size <<= 1;
  if (size !== slots.length) {
    slots = new Int32Array(size);
    slotCounts = new Float32Array(size);
  } else {
    for (const slot of used) slots[slot] = 0;
  }
  used = [];
}

/** Adds a hashed feature: the low bits choose the bucket, the top bit the sign (so collisions cancel on average). */
function addHash(h: number): void {
  const bucket = h & MASK;
  const key = h < 0 ? -(bucket + 1) : bucket + 1;
  const mask = slots.length - 1;
  let slot = Math.imul(key, 0x9e3779b1) & mask;
  for (;;) {
    const current = slots[slot]!;
    if (current === key) {
      slotCounts[slot]! += 1;
      return;
    }
    if (current === 0) {
      slots[slot] = key;
      slotCounts[slot] = 1;
      used.push(slot);
      return;
    }
    slot = (slot + 1) & mask;
  }
}

export function extractFeatures(text: string, normFloor: number = NORM_FLOOR): FeatureVector {
  const folded = foldText(text);
  // Each character starts at most three n-grams, each word two.
  resetTable(folded.length * 4 + 16);

  // Words: runs of letters, digits, marks, '_' and "'", hashed as they are read.
  let previous = 0;
  let first = true;
  let h = SEED_WORD;
  let inWord = false;
  for (let i = 0; i <= folded.length; i++) {
    const c = i < folded.length ? folded.charCodeAt(i) : 32;
    if (isWordChar(c)) {
      h = Math.imul(h ^ c, 0x01000193);
      inWord = true;
      continue;
    }
    if (!inWord) continue;
    addHash(h);
    if (!first) addHash(Math.imul(previous ^ SEED_BIGRAM, 0x01000193) ^ h);
    previous = h;
    first = false;
    h = SEED_WORD;
    inWord = false;
  }

  // Character n-grams over " text ", hashed incrementally from each start.
  const padded = ` ${folded} `;
  for (let i = 0; i + CHAR_MIN <= padded.length; i++) {
    let h = SEED_CHAR;
    for (let n = 0; n < CHAR_MAX && i + n < padded.length; n++) {
      h ^= padded.charCodeAt(i + n);
      h = Math.imul(h, 0x01000193);
      if (n + 1 >= CHAR_MIN) addHash(h ^ (n + 1));
    }
  }

  const index = new Int32Array(used.length);
  const value = new Float32Array(used.length);
  let norm = 0;
  for (let k = 0; k < used.length; k++) {
    const slot = used[k]!;
    const key = slots[slot]!;
    const v = (1 + Math.log(slotCounts[slot]!)) * (key < 0 ? -1 : 1);
    index[k] = Math.abs(key) - 1;
    value[k] = v;
    norm += v * v;
  }
  const scale = norm > 0 ? 1 / Math.sqrt(Math.max(norm, normFloor)) : 0;
  for (let i = 0; i < value.length; i++) value[i]! *= scale;
  return { index, value };
}
