// Features of the learned injection classifier, shared by the training
// script and the gateway so both see a text the same way. The hashing trick
// (Weinberger et al.) maps words and n-grams to a fixed number of signed
// buckets: no vocabulary to ship, any language and script welcome.
//  - text is folded (NFKC, invisible characters dropped, lower case, digit
//    runs collapsed) so "ＩＧＮＯＲＥ", "Ig\u200Bnore" and "ignore" agree and
//    ids or numbers are not memorised;
//  - word unigrams and bigrams carry the moves ("ignore previous", "you are");
//  - each word is also hashed with whether its sentence addresses the model
//    ("you", "your", "assistant", "ChatGPT", "vous", "du"…), so "rules" in
//    "you are not bound by any rules" and in "block packets by a set of rules"
//    are different features: the instruction aimed at the model is the
//    signal, not the topic;
//  - the first word of each sentence is hashed as an opener, so imperatives
//    ("ignore", "forget", "pretend") count apart from the same word inside
//    a sentence;
//  - function words ("the", "de", "que", "und", "का"…) get no feature of
//    their own, only their bigrams: alone they say which language a text is
//    in, and translated attacks outnumber translated benign prompts;
//  - character 3- to 5-grams carry misspellings, inflections and scripts
//    without spaces (Thai, Japanese, Chinese). Keeping them only inside
//    words outside the Latin script (charNgrams: 'nonlatin') was tried: it
//    lost more on the dev split than it gained on sources held out of
//    training (training/validate-injection.ts), so the shipped layout keeps
//    them over the whole text.
// Values are 1 + log(count), then the vector is scaled to unit length, so a
// long text and a short one are comparable. A squared norm under normFloor
// would be scaled as if it were that long (a few words carrying less evidence
// than a paragraph).

/** log2 of the number of buckets. */
export const FEATURE_BITS = 18;
export const FEATURE_DIM = 1 << FEATURE_BITS;
const MASK = FEATURE_DIM - 1;

export interface FeatureOptions {
  /** Character n-grams: over the whole text (the first model), only inside words outside the Latin script, or none. */
  charNgrams: 'all' | 'nonlatin' | 'none';
  /** Hash each word again with whether its sentence addresses the model. */
  addressed: boolean;
  /** Hash the first word of each sentence as an opener. */
  openers: boolean;
  /** Squared norm below which a text's vector is not scaled up to unit length; 0: always unit length. */
  normFloor: number;
  /** Hash each word again when it lies in data the prompt hands over (after "…: '", "…: <", HTML comments). Experimental. */
  embedded?: boolean;
  /** Leave out the single-word features (word, addressed word, opener) of function words, which say which language a text is in, not what it asks (bigrams keep them). */
  functionWords?: boolean;
}

/** The layout the shipped model was trained on (chosen by leave-one-source-out validation; see MODEL.md). */
export const FEATURES: Readonly<FeatureOptions> = { charNgrams: 'all', addressed: true, openers: true, normFloor: 0, functionWords: false };

/** A short name of a layout, stored with the weights so a model is only read with the features it was trained on. */
export function featureLayout(options: Readonly<FeatureOptions> = FEATURES): string {
  return `chars:${options.charNgrams} addressed:${options.addressed} openers:${options.openers} floor:${options.normFloor}${options.embedded === true ? ' embedded:true' : ''}${options.functionWords === false ? ' function-words:false' : ''}`;
}

/** @deprecated kept for callers of the first layout: the floor now lives in FeatureOptions. */
export const NORM_FLOOR = FEATURES.normFloor;

const CHAR_MIN = 3;
const CHAR_MAX = 5;
/** Seeds keep the feature families apart in the hash space. */
const SEED_WORD = 0x811c9dc5;
const SEED_BIGRAM = 0x9e3779b9;
const SEED_CHAR = 0x85ebca6b;
const SEED_ADDRESSED = 0x27d4eb2f;
const SEED_OPENER = 0x165667b1;
const SEED_EMBEDDED = 0x3c6ef372;

const INVISIBLE = /[\u00AD\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\uFEFF]/g;

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

/** Ends a sentence: . ! ? ; and their full-width and CJK forms. */
function isSentenceEnd(c: number): boolean {
  return c === 46 || c === 33 || c === 63 || c === 59 || c === 0x3002 || c === 0xff01 || c === 0xff1f || c === 0xff1b || c === 0x0964 || c === 0x061f;
}

/** Outside Latin (and its extensions, and combining marks): Greek, Cyrillic, Arabic, Indic, Thai, CJK, Hangul… */
function isNonLatin(c: number): boolean {
  return c >= 0x0370 && !(c >= 0x1e00 && c <= 0x1eff);
}

const hashWord = (word: string): number => {
  let h = SEED_WORD;
  for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 0x01000193);
  return h;
};

/** A fixed set of word hashes, asked about every word: open addressing over an Int32Array, not a Set. */
interface WordSet {
  has(hash: number): boolean;
}

function wordSet(hashes: readonly number[]): WordSet {
  const bits = Math.max(4, Math.ceil(Math.log2(hashes.length * 4)));
  const mask = (1 << bits) - 1;
  const slots = new Int32Array(mask + 1);
  const filled = new Uint8Array(mask + 1);
  const slotOf = (hash: number): number => Math.imul(hash, 0x9e3779b1) >>> (32 - bits);
  for (const hash of hashes) {
    let slot = slotOf(hash);
    while (filled[slot] === 1 && slots[slot] !== hash) slot = (slot + 1) & mask;
    slots[slot] = hash;
    filled[slot] = 1;
  }
  return {
    has(hash: number): boolean {
      for (let slot = slotOf(hash); filled[slot] === 1; slot = (slot + 1) & mask) if (slots[slot] === hash) return true;
      return false;
    },
  };
}

/**
 * Words that address the model, in the languages of the training data: the
 * second person (English, French, Spanish, Portuguese, Italian, German,
 * Russian…) and the names a prompt calls its model by.
 */
const ADDRESS_WORDS = wordSet([
  'you', 'your', 'yours', 'yourself', 'yourselves', "you're", "you'll", "you've", "you'd", 'u', 'ur', 'thou', 'thee',
  'assistant', 'chatgpt', 'gpt', 'ai', 'llm', 'chatbot', 'claude', 'bard', 'gemini',
  'tu', 'toi', 'te', 'ton', 'ta', 'tes', 'vous', 'votre', 'vos', 'tú', 'usted', 'ustedes', 'tus', 'ti', 'tuo', 'tua', 'tuoi',
  'você', 'vocês', 'du', 'dich', 'dir', 'dein', 'deine', 'deinen', 'deinem', 'deiner', 'ты', 'тебя', 'тебе', 'вы', 'вас', 'вам', 'твой', 'ваш',
  'jij', 'jou', 'jouw', 'sen', 'siz', 'anda', 'kamu', 'あなた', '당신', '너', 'आप', 'तुम',
].map(hashWord));

/**
 * Function words of the languages in the training data (articles,
 * prepositions, conjunctions, copulas; not the second person, which is the
 * address signal): they mark a language, and translated attacks outnumber
 * translated benign prompts, so their weights learn "this language".
 */
const FUNCTION_WORDS = wordSet([
  'the', 'a', 'an', 'of', 'and', 'or', 'to', 'in', 'on', 'for', 'with', 'is', 'are', 'was', 'be', 'that', 'this', 'it', 'as', 'by', 'at', 'from',
  'de', 'del', 'la', 'el', 'los', 'las', 'un', 'una', 'unos', 'y', 'o', 'que', 'en', 'con', 'por', 'para', 'es', 'se', 'al', 'lo', 'su', 'sus',
  'do', 'da', 'dos', 'das', 'um', 'uma', 'e', 'no', 'na', 'nos', 'nas', 'com', 'os', 'as', 'é', 'ao', 'pelo', 'pela',
  'le', 'les', 'des', 'du', 'une', 'et', 'ou', 'dans', 'sur', 'pour', 'avec', 'est', 'qui', 'ce', 'cette', 'au', 'aux', "l'", "d'",
  'il', 'di', 'della', 'delle', 'dei', 'degli', 'gli', 'uno', 'ed', 'che', 'per', 'nel', 'nella', 'è', 'si', 'sono',
  'der', 'die', 'das', 'den', 'dem', 'des', 'ein', 'eine', 'einen', 'einem', 'einer', 'und', 'oder', 'zu', 'im', 'mit', 'von', 'für', 'ist', 'auf', 'sich',
  'yang', 'dan', 'di', 'ke', 'dari', 'untuk', 'dengan', 'ini', 'itu', 'ang', 'ng', 'mga', 'sa', 'at', 'ay', 'bir', 've', 'bu', 'için', 'ile',
  'và', 'của', 'là', 'các', 'một', 'có', 'cho', 'được', 'trong', 'и', 'в', 'на', 'с', 'что', 'не', 'по', 'для', 'как', 'это',
  'का', 'की', 'के', 'में', 'है', 'और', 'को', 'से', 'पर', 'एक', 'यह', 'कि', 'ও', 'এবং', 'একটি', 'এই', 'করে', 'في', 'من', 'على', 'و', 'إلى', 'أن',
].map(hashWord));

/** Sparse feature vector: parallel arrays of bucket indexes and values, unit length. */
export interface FeatureVector {
  index: Int32Array;
  value: Float32Array;
}

// Speed (bench/detect.ts): the folded text is written once into a reused array
// of code units, every feature is counted in a reused open-addressing table,
// and nothing is allocated per word or n-gram. The features, their order and
// their values are those of the first implementation, kept as the reference in
// test/detect/reference/features-v1.ts (test/detect/features-equivalence.test.ts).

/** The folded text's code units from index 1, with a space before and after it (the padding of the character n-grams). */
let folded = new Uint16Array(8192);
let foldedLength = 0;

/** Class of a code unit after lower-casing: 0 not looked up yet, then OTHER, DIGIT (\p{Nd}) or SPACE (\s). */
const OTHER = 1;
const DIGIT = 2;
const SPACE = 3;
const unitClass = new Uint8Array(0x10000);
for (let c = 0; c < 128; c++) unitClass[c] = c >= 48 && c <= 57 ? DIGIT : c === 32 || (c >= 9 && c <= 13) ? SPACE : OTHER;
const ND = /^\p{Nd}$/u;
const NON_ASCII = /[^\x00-\x7F]/;
const WHITE = /^\s$/;

function classOf(c: number): number {
  let k = unitClass[c]!;
  if (k === 0) {
    const ch = String.fromCharCode(c);
    // A lone surrogate is neither: \p{Nd} is read by code point, and pairs are looked at by digitPair.
    k = ND.test(ch) ? DIGIT : WHITE.test(ch) ? SPACE : OTHER;
    unitClass[c] = k;
  }
  return k;
}

/** Whether t[i], t[i+1] is a surrogate pair coding a decimal digit outside the BMP (Osmanya, Brahmi…). */
function digitPair(t: string, i: number): boolean {
  const c = t.charCodeAt(i);
  if (c < 0xd800 || c > 0xdbff) return false;
  const d = t.charCodeAt(i + 1);
  return d >= 0xdc00 && d <= 0xdfff && ND.test(t.slice(i, i + 2));
}

/** foldText(text) into `folded`: digit runs as one 0 and space runs as one space, in one pass instead of two regex replaces. */
function foldInto(text: string): void {
  let t = NON_ASCII.test(text) ? text.normalize('NFKC').replace(INVISIBLE, '') : text;
  t = t.toLowerCase();
  if (folded.length < t.length + 2) folded = new Uint16Array(Math.max(t.length + 2, folded.length * 2));
  const out = folded;
  let n = 1;
  let run = OTHER;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    let k = c < 128 ? unitClass[c]! : classOf(c);
    if (k === OTHER && c >= 0xd800 && c <= 0xdbff && digitPair(t, i)) {
      k = DIGIT;
      i++;
    }
    if (k === OTHER) out[n++] = c;
    else if (k !== run) out[n++] = k === DIGIT ? 48 : 32;
    run = k;
  }
  out[0] = 32;
  out[n] = 32;
  foldedLength = n - 1;
}


/** The folded text the features are taken from. */
export function foldText(text: string): string {
  foldInto(text);
  let s = '';
  for (let at = 1; at <= foldedLength; at += 4096) s += String.fromCharCode(...folded.subarray(at, Math.min(at + 4096, foldedLength + 1)));
  return s;
}

// Counting table: open addressing (linear probing, at most half full), one int32 a feature:
// its key in the low 20 bits (bucket | sign << 18, plus 1; 0 is empty) and its count above
// (saturating at COUNT_MAX, the rest kept in `overflow`), so a probe reads one entry and the
// table of a 4 KB text stays at 64 KB. Features are numbered in the order first seen, which
// is the order of the vector; slotOf[ordinal] finds each again.
const KEY_BITS = 20;
const KEY_MASK = (1 << KEY_BITS) - 1;
const COUNT_ONE = 1 << KEY_BITS;
const COUNT_MAX = (1 << (32 - KEY_BITS)) - 1;
let table = new Int32Array(1 << 14);
let slotOf = new Int32Array(1 << 13);
let unique = 0;
/** False from counting a text until its features are taken out (and the table emptied). */
let taken = true;
/** Counts beyond COUNT_MAX, by key. */
const overflow = new Map<number, number>();

const spread = (key: number, mask: number): number => Math.imul(key, 0x9e3779b1) >>> 8 & mask;

/** A new feature at `slot`; doubles the table when it is half full. */
function insert(slot: number, key: number): void {
  table[slot] = key | COUNT_ONE;
  slotOf[unique++] = slot;
  if (unique * 2 >= table.length) grow();
}

function grow(): void {
  const next = new Int32Array(table.length * 2);
  const mask = next.length - 1;
  for (let k = 0; k < unique; k++) {
    const entry = table[slotOf[k]!]!;
    let slot = spread(entry & KEY_MASK, mask);
    while (next[slot] !== 0) slot = (slot + 1) & mask;
    next[slot] = entry;
    slotOf[k] = slot;
  }
  table = next;
  const longer = new Int32Array(next.length / 2);
  longer.set(slotOf.subarray(0, unique));
  slotOf = longer;
}

/** Adds a hashed feature: the low bits choose the bucket, the top bit the sign (so collisions cancel on average). */
function addHash(h: number): void {
  const key = ((h & MASK) | ((h >>> 31) << FEATURE_BITS)) + 1;
  const t = table;
  const mask = t.length - 1;
  let slot = spread(key, mask);
  for (;;) {
    const entry = t[slot]!;
    if ((entry & KEY_MASK) === key) {
      if (entry >>> KEY_BITS !== COUNT_MAX) t[slot] = entry + COUNT_ONE;
      else overflow.set(key, (overflow.get(key) ?? 0) + 1);
      return;
    }
    if (entry === 0) return insert(slot, key);
    slot = (slot + 1) & mask;
  }
}

/** Character n-grams of codes[from, to), hashed incrementally from each start. */
function addCharNgrams(codes: Uint16Array, from: number, to: number): void {
  let i = from;
  // Starts with all of 3, 4 and 5 characters ahead, unrolled.
  for (; i + CHAR_MAX <= to; i++) {
    let h = Math.imul(SEED_CHAR ^ codes[i]!, 0x01000193);
    h = Math.imul(h ^ codes[i + 1]!, 0x01000193);
    h = Math.imul(h ^ codes[i + 2]!, 0x01000193);
    addHash(h ^ 3);
    h = Math.imul(h ^ codes[i + 3]!, 0x01000193);
    addHash(h ^ 4);
    h = Math.imul(h ^ codes[i + 4]!, 0x01000193);
    addHash(h ^ 5);
  }
  for (; i + CHAR_MIN <= to; i++) {
    let h = SEED_CHAR;
    for (let n = 0; n < CHAR_MAX && i + n < to; n++) {
      h ^= codes[i + n]!;
      h = Math.imul(h, 0x01000193);
      if (n + 1 >= CHAR_MIN) addHash(h ^ (n + 1));
    }
  }
}

// Hashes of the current sentence's words that get an addressed feature, reused.
let sentence = new Int32Array(256);
let sentenceLength = 0;
let sentenceAddressed = false;
// A non-Latin word with its padding, for charNgrams: 'nonlatin'.
let word = new Uint16Array(64);

function endSentence(options: Readonly<FeatureOptions>): void {
  if (options.addressed) {
    const tag = sentenceAddressed ? 1 : 2;
    for (let k = 0; k < sentenceLength; k++) addHash(Math.imul(sentence[k]! ^ SEED_ADDRESSED, 0x01000193) ^ tag);
  }
  sentenceLength = 0;
  sentenceAddressed = false;
}

const DATA_OPENING = /:\s*(?:['"“«`<]|\n)|<!--/;

function embeddedStart(text: string): number {
  const m = DATA_OPENING.exec(text);
  return m === null ? Infinity : m.index;
}

/** Counts the features of `text` in the table, in the order they are first seen. */
function countFeatures(text: string, options: Readonly<FeatureOptions>): void {
  // Where handed-over data starts: after a colon followed by a quote, a tag or a line break, or inside an HTML comment.
  const dataStart = options.embedded === true ? embeddedStart(foldText(text)) : Infinity;
  foldInto(text);
  const codes = folded;
  const length = foldedLength;
  // A text cut short by an exception left its entries.
  if (!taken) for (let k = 0; k < unique; k++) table[slotOf[k]!] = 0;
  taken = false;
  overflow.clear();
  unique = 0;
  sentenceLength = 0;
  sentenceAddressed = false;
  let wordsInSentence = 0;

  // Words: runs of letters, digits, marks, '_' and "'", hashed as they are read;
  // a sentence's words are held until its end shows whether it addresses the model.
  let previous = 0;
  let first = true;
  let h = SEED_WORD;
  let inWord = false;
  let wordStart = 0;
  let nonLatin = false;
  for (let i = 0; i <= length; i++) {
    const c = i < length ? codes[i + 1]! : 46;
    if (isWordChar(c)) {
      if (!inWord) {
        wordStart = i;
        nonLatin = false;
      }
      h = Math.imul(h ^ c, 0x01000193);
      if (c >= 0x0370 && isNonLatin(c)) nonLatin = true;
      inWord = true;
      continue;
    }
    if (inWord) {
      const single = options.functionWords !== false || !FUNCTION_WORDS.has(h);
      if (single) addHash(h);
      if (i > dataStart) addHash(Math.imul(h ^ SEED_EMBEDDED, 0x01000193));
      if (!first) addHash(Math.imul(previous ^ SEED_BIGRAM, 0x01000193) ^ h);
      if (options.openers && wordsInSentence === 0 && single) addHash(Math.imul(h ^ SEED_OPENER, 0x01000193));
      if (options.charNgrams === 'nonlatin' && nonLatin) {
        const padded = i - wordStart + 2;
        if (word.length < padded) word = new Uint16Array(padded * 2);
        word[0] = 32;
        word.set(codes.subarray(wordStart + 1, i + 1), 1);
        word[padded - 1] = 32;
        addCharNgrams(word, 0, padded);
      }
      if (sentenceLength === sentence.length) {
        const grown = new Int32Array(sentenceLength * 2);
        grown.set(sentence);
        sentence = grown;
      }
      if (single) sentence[sentenceLength++] = h;
      wordsInSentence++;
      if (ADDRESS_WORDS.has(h)) sentenceAddressed = true;
      previous = h;
      first = false;
      h = SEED_WORD;
      inWord = false;
    }
    if (isSentenceEnd(c)) {
      endSentence(options);
      wordsInSentence = 0;
    }
  }
  endSentence(options);

  if (options.charNgrams === 'all') addCharNgrams(codes, 0, length + 2);
}

/** 1 + ln(count), the value of a feature seen `count` times, for small counts. */
const LOG_VALUES = new Float64Array(1024);
for (let count = 1; count < LOG_VALUES.length; count++) LOG_VALUES[count] = 1 + Math.log(count);

/** The features by ordinal: key (bucket | sign << 18) and value before scaling (rounded to float32, as the vector stores it). */
let keyOf = new Int32Array(1 << 13);
let rawValues = new Float32Array(1 << 13);

/**
 * Reads the features out of the table in order into keyOf and rawValues,
 * emptying it for the next text, and returns 1 / the vector's length (a
 * squared norm under normFloor counts as normFloor).
 */
function takeFeatures(options: Readonly<FeatureOptions>): number {
  if (keyOf.length < unique) {
    keyOf = new Int32Array(slotOf.length);
    rawValues = new Float32Array(slotOf.length);
  }
  const t = table;
  const keys = keyOf;
  const raw = rawValues;
  let norm = 0;
  for (let k = 0; k < unique; k++) {
    const slot = slotOf[k]!;
    const entry = t[slot]!;
    t[slot] = 0;
    const key = (entry & KEY_MASK) - 1;
    let count = entry >>> KEY_BITS;
    if (count === COUNT_MAX) count += overflow.get(key + 1) ?? 0;
    const magnitude = count < 1024 ? LOG_VALUES[count]! : 1 + Math.log(count);
    const v = key > MASK ? -magnitude : magnitude;
    keys[k] = key;
    raw[k] = v;
    // The norm sums the unrounded values, as the first implementation did.
    norm += v * v;
  }
  taken = true;
  return norm > 0 ? 1 / Math.sqrt(Math.max(norm, options.normFloor)) : 0;
}

export function extractFeatures(text: string, options: Readonly<FeatureOptions> = FEATURES): FeatureVector {
  countFeatures(text, options);
  const scale = takeFeatures(options);
  const index = new Int32Array(unique);
  const value = new Float32Array(unique);
  for (let k = 0; k < unique; k++) {
    index[k] = keyOf[k]! & MASK;
    value[k] = rawValues[k]! * scale;
  }
  return { index, value };
}

/**
 * Weights of a linear model over the buckets as int8 codes and the weight
 * each code stands for (levels[code & 255]): a quarter of the memory of
 * float32 weights, so the lookups of a text's features mostly hit the cache.
 */
export interface BucketWeights {
  codes: Int8Array;
  levels: Float64Array;
}

/**
 * bias + the dot product of the text's features (the shipped layout) with
 * the weights, to the bit what `extractFeatures` and a loop over its entries
 * with the float32 weights give, without building the vector.
 */
export function linearScore(text: string, weights: BucketWeights, bias: number): number {
  countFeatures(text, FEATURES);
  const scale = takeFeatures(FEATURES);
  const { codes, levels } = weights;
  const raw = rawValues;
  let z = bias;
  for (let k = 0; k < unique; k++) {
    z += levels[codes[keyOf[k]! & MASK]! & 255]! * Math.fround(raw[k]! * scale);
  }
  return z;
}
