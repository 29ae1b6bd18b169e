// FROZEN: the feature extractor the shipped weights were trained with (features.ts as of a7cbabe),
// kept only as the reference of test/detect/features-equivalence.test.ts. Do not edit or speed up.
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

/**
 * Words that address the model, in the languages of the training data: the
 * second person (English, French, Spanish, Portuguese, Italian, German,
 * Russian…) and the names a prompt calls its model by.
 */
const ADDRESS_WORDS = new Set([
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
const FUNCTION_WORDS = new Set([
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

/** Character n-grams of padded[from, to), hashed incrementally from each start. */
function addCharNgrams(padded: string, from: number, to: number): void {
  for (let i = from; i + CHAR_MIN <= to; i++) {
    let h = SEED_CHAR;
    for (let n = 0; n < CHAR_MAX && i + n < to; n++) {
      h ^= padded.charCodeAt(i + n);
      h = Math.imul(h, 0x01000193);
      if (n + 1 >= CHAR_MIN) addHash(h ^ (n + 1));
    }
  }
}

// Word hashes of the current sentence, reused.
let sentence = new Int32Array(256);

const DATA_OPENING = /:\s*(?:['"“«`<]|\n)|<!--/;

function embeddedStart(folded: string): number {
  const m = DATA_OPENING.exec(folded);
  return m === null ? Infinity : m.index;
}

export function extractFeatures(text: string, options: Readonly<FeatureOptions> = FEATURES): FeatureVector {
  const folded = foldText(text);
  // Each character starts at most three n-grams, each word four features.
  resetTable(folded.length * 4 + 16);

  // Words: runs of letters, digits, marks, '_' and "'", hashed as they are read;
  // a sentence's words are held until its end shows whether it addresses the model.
  let previous = 0;
  let first = true;
  let h = SEED_WORD;
  let inWord = false;
  let wordStart = 0;
  let nonLatin = false;
  let count = 0;
  let addressed = false;
  const endSentence = (): void => {
    if (options.addressed) for (let k = 0; k < count; k++) if (options.functionWords !== false || !FUNCTION_WORDS.has(sentence[k]!)) addHash(Math.imul(sentence[k]! ^ SEED_ADDRESSED, 0x01000193) ^ (addressed ? 1 : 2));
    count = 0;
    addressed = false;
  };
  // Where handed-over data starts: after a colon followed by a quote, a tag or a line break, or inside an HTML comment.
  const dataStart = options.embedded === true ? embeddedStart(folded) : Infinity;
  for (let i = 0; i <= folded.length; i++) {
    const c = i < folded.length ? folded.charCodeAt(i) : 46;
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
      if (options.openers && count === 0 && single) addHash(Math.imul(h ^ SEED_OPENER, 0x01000193));
      if (options.charNgrams === 'nonlatin' && nonLatin) {
        const padded = ` ${folded.slice(wordStart, i)} `;
        addCharNgrams(padded, 0, padded.length);
      }
      if (count === sentence.length) {
        const grown = new Int32Array(count * 2);
        grown.set(sentence);
        sentence = grown;
      }
      sentence[count++] = h;
      if (ADDRESS_WORDS.has(h)) addressed = true;
      previous = h;
      first = false;
      h = SEED_WORD;
      inWord = false;
    }
    if (isSentenceEnd(c)) endSentence();
  }
  endSentence();

  if (options.charNgrams === 'all') {
    const padded = ` ${folded} `;
    addCharNgrams(padded, 0, padded.length);
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
  const scale = norm > 0 ? 1 / Math.sqrt(Math.max(norm, options.normFloor)) : 0;
  for (let i = 0; i < value.length; i++) value[i]! *= scale;
  return { index, value };
}
