// The scanner: one keyword pass picks the detectors that can match, those
// run with their validators, and overlapping candidates are resolved.
// Detectors see the normalised copy of the text (normalise.ts: NFKC,
// invisible characters removed, odd spaces as spaces, %40 as @); spans are
// mapped back, so they cover the original characters.
import { ScanContext } from './context.js';
import { createCustomPatternDetector, type CustomPatternSpec } from './custom.js';
import type { Detector } from './detector.js';
import { createDictionaryDetector } from './dictionary.js';
import { resolveOverlaps } from './overlap.js';
import { createPiiDetectors } from './pii/index.js';
import { normaliseForDetection, originalOffset, StreamPlainness, toOriginal, type NormalisedText } from './normalise.js';
import { createPhoneDetector, PHONE_DETECTOR_ID, type PhoneOptions } from './pii/phone.js';
import { AsciiKeywordIndex, isAscii, KeywordPrefilter, type KeywordStream } from './prefilter.js';
import { createSecretDetectors } from './secrets/index.js';
import { BUILTIN_ENTITY_TYPES, NLP_ENTITY_TYPES, type EntityType, type Span } from './types.js';

export type { CustomPatternSpec } from './custom.js';

export interface ScannerOptions {
  /** Built-in types to detect; default all of `BUILTIN_ENTITY_TYPES` (the opt-in `NLP_ENTITY_TYPES` only when listed). */
  types?: readonly EntityType[];
  /** Named term lists, matched case-insensitively as whole words; reported as `DICTIONARY`. */
  dictionaries?: Record<string, readonly string[]>;
  /** Regions and context words for national phone numbers; default DEFAULT_PHONE_REGIONS and DEFAULT_PHONE_WORDS. */
  phone?: PhoneOptions;
  /** Named RE2 patterns; invalid ones throw `CustomPatternError` naming the pattern and why. */
  customPatterns?: Record<string, CustomPatternSpec>;
  /**
   * How detectors are chosen on ASCII text: `fast` (default) one JavaScript keyword pass for every
   * lookbehind tier; `re2` the RE2.Set pass per tier that all other text gets. Both choose the same
   * detectors; `re2` is there so tests can hold the fast pass against it.
   */
  keywordPass?: 'fast' | 're2';
}

export interface Scanner {
  /** Non-overlapping spans sorted by start. */
  scan(text: string): Span[];
  /**
   * For a stream masked through a window (`text` is the end of it): the
   * spans of a scan of the whole stream that start at or after `from`, when
   * everything before `from` is final and no span crosses it (what the
   * streaming masker guarantees at its release point). Each detector looks
   * back only its own lookbehind from `from`, so released text is not
   * scanned again and the caller keeps only `lookbehindLength` of it.
   */
  scanFrom(text: string, from: number): Span[];
  /** No span is longer than this. */
  readonly maxEntityLength: number;
  /** Characters after a span that can still change whether or how it is reported. */
  readonly contextLength: number;
  /** Characters before a span that can change whether or how it is reported (context words, key names). */
  readonly lookbehindLength: number;
  /** The types this scanner can report. */
  readonly types: readonly EntityType[];
  /**
   * The smallest index at which a span could start that is not already final
   * in `scan(text)`, whatever text is appended (the streaming masker's
   * `undecidedFrom`): spans of `scan(text + more)` that start before it are
   * exactly those of `scan(text)`.
   */
  undecidedFrom(text: string, from?: number): number;
  /**
   * For one stream masked through a window: `scanFrom` and `undecidedFrom`
   * that remember what earlier windows of the stream showed, so each
   * character is read once by the keyword pass and the plain-text check
   * instead of once per frame while it stays in the window. Same results.
   */
  openStream(): StreamScan;
}

/**
 * `Scanner.scanFrom` and `undecidedFrom` for the windows of one stream. Each
 * window is the stream's text from `windowStart` (a stream offset) to its
 * end so far: a window that does not continue the last one is read afresh.
 */
export interface StreamScan {
  scanFrom(window: string, from: number, windowStart: number): Span[];
  undecidedFrom(window: string, from: number, windowStart: number): number;
}

/** What one stream's earlier windows showed: plain text or not, and where each detector's last keyword starts. */
interface StreamWindows {
  plainness: StreamPlainness;
  keywords: KeywordStream | undefined;
}

/**
 * Detectors are grouped by how far back they look, so a scan from a release
 * point gives each group a slice of its own (one keyword pass and one
 * ScanContext each): a detector needing 8 characters of context does not
 * rescan 320 characters of released text because one other needs them.
 */
const LOOKBEHIND_TIERS = [8, 72];

let builtins: readonly Detector[] | undefined;

/** Built-in detectors hold only compiled patterns and tables: build them once. */
function builtinDetectors(): readonly Detector[] {
  builtins ??= [...createPiiDetectors(), ...createSecretDetectors()];
  return builtins;
}

export function createScanner(options: ScannerOptions = {}): Scanner {
  const wanted = new Set<EntityType>(options.types ?? BUILTIN_ENTITY_TYPES);
  for (const type of wanted) {
    if (!BUILTIN_ENTITY_TYPES.includes(type) && !NLP_ENTITY_TYPES.includes(type)) throw new Error(`"${type}" is not a built-in entity type; configure dictionaries or custom patterns instead`);
  }
  let detectors: Detector[] = builtinDetectors().filter((d) => d.types.some((t) => wanted.has(t)));
  // Phone regions and words are the operator's: a phone detector of their own replaces the shared one.
  if (options.phone !== undefined) detectors = detectors.map((d) => (d.id === PHONE_DETECTOR_ID ? createPhoneDetector(options.phone) : d));
  const reportable = new Set<EntityType>(wanted);
  const dictionary = createDictionaryDetector(options.dictionaries ?? {});
  if (dictionary !== undefined) {
    detectors.push(dictionary);
    reportable.add('DICTIONARY');
  }
  const custom = createCustomPatternDetector(options.customPatterns ?? {});
  if (custom !== undefined) {
    detectors.push(custom);
    for (const type of custom.types) reportable.add(type);
  }
  const prefilter = new KeywordPrefilter(detectors);
  // The shape checks run on every streamed frame: each detector's character tests looked up once, here.
  const spanTests = detectors.map((d) => (d.spanChars === undefined ? undefined : charClass(d.spanChars)));
  const anchorTests = detectors.map((d) => (d.spanAnchor === undefined ? undefined : charClass(d.spanAnchor)));
  // Detectors are objects of many shapes: their numbers and hooks read once into arrays, not per frame.
  const lookaheads = detectors.map((d) => d.lookahead);
  const maxLengths = detectors.map((d) => d.maxLength);
  const openFroms = detectors.map((d) => d.openFrom?.bind(d));

  const contextLength = Math.max(0, ...detectors.map((d) => d.lookahead));

  const lookbehindLength = Math.max(0, ...detectors.map((d) => d.lookbehind));
  // Each detector's tier: the smallest tier reach that covers its lookbehind.
  const reaches = [...new Set(detectors.map((d) => LOOKBEHIND_TIERS.find((t) => t >= d.lookbehind) ?? lookbehindLength))].sort((a, b) => a - b);
  const tiers = reaches.map((reach) => {
    const members = [...detectors.keys()].filter((index) => reaches.find((r) => r >= detectors[index]!.lookbehind) === reach);
    // A keyword pass of the tier's own: the widest slice is searched only for the few keywords that need it.
    return { reach, members, prefilter: new KeywordPrefilter(members.map((index) => detectors[index]!)) };
  });

  // On ASCII text (nearly every streamed window) one keyword pass serves every tier's slice.
  const asciiKeywords = options.keywordPass === 're2' ? undefined : AsciiKeywordIndex.for(detectors);
  const widestReach = Math.max(0, ...reaches);

  // Candidates before overlap resolution, for the last text seen: the masker asks scan and undecidedFrom about the same window.
  let last: { text: string; from: number; normalised: NormalisedText | undefined; candidates: Span[]; selected: Uint8Array } | undefined;
  const selectedByLastScan = new Uint8Array(detectors.length);
  // `stream` and `windowStart`: the stream `text` is a window of, read incrementally (the results are the same).
  const scanned = (text: string, from: number, stream?: StreamWindows, windowStart = 0): NonNullable<typeof last> => {
    if (last?.text === text && last.from === from) return last;
    const candidates: Span[] = [];
    // Plain ASCII without `%40` (nearly every streamed window) is not copied, and takes the fast keyword pass.
    const kind = stream !== undefined ? stream.plainness.read(text, windowStart) : !isAscii(text) ? 2 : text.includes('%40') ? 1 : 0;
    const ascii = kind !== 2;
    const normalised = kind === 0 ? undefined : normaliseForDetection(text);
    const seen = normalised?.text ?? text;
    // 1 for each detector the keyword pass chose (a typed array, one per scanner: this runs on every
    // streamed frame, and only the last scan's choice is ever read).
    last = undefined;
    const selected = selectedByLastScan.fill(0);
    const run = (index: number, slice: string, at: number, context: ScanContext, copyFrom: number): void => {
      const detector = detectors[index]!;
      // Custom patterns may be declared with a built-in type the caller did not ask for; they still count.
      const any = detector === custom || detector === dictionary;
      detector.detect(slice, (span) => {
        if (!any && !wanted.has(span.type)) return;
        const start = span.start + at;
        // Before the release point everything is final: a candidate there (or one crossing it, which
        // lost to the span ending there) changes nothing, and one at the slice's edge may be invented.
        if (start < copyFrom) return;
        if (normalised !== undefined) candidates.push({ ...span, ...toOriginal(normalised, start, span.end + at) });
        else candidates.push(at === 0 ? span : { ...span, start, end: span.end + at });
      }, context);
    };
    const copyFrom = from <= 0 ? 0 : normalised === undefined ? Math.min(from, seen.length) : copyOffset(normalised, from, seen.length);
    // Per detector, where its last keyword starts: it fires on a slice that begins at or before that. ASCII only,
    // where the pass knows every keyword that can occur; text outside ASCII that normalisation leaves as it is
    // ('né le', 'आधार') takes the RE2 pass.
    const lastKeyword = asciiKeywords !== undefined && (normalised === undefined ? ascii : isAscii(seen))
      ? normalised === undefined && stream?.keywords !== undefined
        ? stream.keywords.lastKeywordStarts(text, windowStart)
        : asciiKeywords.lastKeywordStarts(seen, Math.max(0, copyFrom - widestReach))
      : undefined;
    if (from <= 0) {
      const context = new ScanContext(seen);
      if (lastKeyword !== undefined) {
        for (let index = 0; index < detectors.length; index++) {
          if (lastKeyword[index]! < 0) continue;
          selected[index] = 1;
          run(index, seen, 0, context, 0);
        }
      } else {
        for (const index of prefilter.select(context)) {
          selected[index] = 1;
          run(index, seen, 0, context, 0);
        }
      }
    } else {
      let context: ScanContext | undefined;
      let at = -1;
      for (const tier of tiers) {
        const sliceAt = Math.max(0, copyFrom - tier.reach);
        if (lastKeyword !== undefined) {
          for (const index of tier.members) {
            if (lastKeyword[index]! < sliceAt) continue;
            // Built only for a tier that runs something.
            if (sliceAt !== at) {
              at = sliceAt;
              context = new ScanContext(at === 0 ? seen : seen.slice(at));
            }
            selected[index] = 1;
            run(index, context!.text, at, context!, copyFrom);
          }
          continue;
        }
        if (sliceAt !== at) {
          at = sliceAt;
          context = new ScanContext(at === 0 ? seen : seen.slice(at));
        }
        for (const local of tier.prefilter.select(context!)) {
          const index = tier.members[local]!;
          selected[index] = 1;
          run(index, context!.text, at, context!, copyFrom);
        }
      }
    }
    last = { text, from, normalised, candidates, selected };
    return last;
  };

  return {
    maxEntityLength: Math.max(0, ...detectors.map((d) => d.maxLength)),
    contextLength,
    lookbehindLength,
    types: [...reportable],
    scan(text: string): Span[] {
      // Copies, so a caller that edits a span cannot change the remembered candidates.
      return text.length === 0 ? [] : resolveOverlaps(scanned(text, 0).candidates).map((span) => ({ ...span }));
    },
    scanFrom: (text: string, from: number): Span[] => scanFrom(text, from),
    undecidedFrom: (text: string, releasedUpTo = 0): number => undecidedFrom(text, releasedUpTo),
    openStream(): StreamScan {
      const stream: StreamWindows = { plainness: new StreamPlainness(), keywords: asciiKeywords?.stream() };
      return {
        scanFrom: (window, from, windowStart) => scanFrom(window, from, stream, windowStart),
        undecidedFrom: (window, from, windowStart) => undecidedFrom(window, from, stream, windowStart),
      };
    },
  };

  function scanFrom(text: string, from: number, stream?: StreamWindows, windowStart = 0): Span[] {
    if (text.length === 0) return [];
    const { candidates } = scanned(text, from, stream, windowStart);
    // Most streamed windows hold no candidate at all.
    return candidates.length === 0 ? [] : resolveOverlaps(candidates).map((span) => ({ ...span }));
  }

  function undecidedFrom(original: string, releasedUpTo: number, stream?: StreamWindows, windowStart = 0): number {
    const { normalised, candidates, selected } = scanned(original, releasedUpTo, stream, windowStart);
    // Decided on the copy, then mapped back; the last two characters stay open, since one more
    // character can still change how they normalise ('%4' + '0', a letter + a combining mark).
    let from = normalised === undefined
      ? shapeBound(original, selected)
      : Math.max(0, Math.min(originalOffset(normalised, shapeBound(normalised.text, selected), original.length), original.length - 2));
    // A candidate across that point may be suppressed by, or suppress, a span that is still growing.
    for (let moved = true; moved;) {
      moved = false;
      for (const c of candidates) {
        if (c.start < from && c.end > from) {
          from = c.start;
          moved = true;
        }
      }
    }
    return from;
  }

  /**
   * From each detector's shape: the earliest start of a span in `text` (what
   * detectors see) that is not final. Each detector is judged by its own
   * lookahead, not the scanner's longest: a phone's eight characters of right
   * context must not hold prose back when no digit is near the end.
   * `selected`: the detectors whose keywords the text holds (the prefilter's choice).
   */
  function shapeBound(text: string, selected: Uint8Array): number {
    let from = text.length;
    for (let index = 0; index < detectors.length; index++) {
      const settled = text.length - lookaheads[index]!;
      const openFrom = openFroms[index];
      const isSpanChar = spanTests[index];
      let open: number;
      if (openFrom !== undefined) open = openFrom(text, Math.max(0, settled));
      else if (isSpanChar === undefined) open = settled - maxLengths[index]!;
      // Without one of its keywords in the text, a detector can only be waiting for a run still growing at the end.
      else open = openRunStart(text, settled, isSpanChar, selected[index] === 1 ? anchorTests[index] : NO_ANCHOR, maxLengths[index]!);
      if (open < from) from = open;
    }
    return Math.max(0, from);
  }
}

/** An anchor test no character passes. */
const NO_ANCHOR: CharTest = () => false;

/**
 * For a detector whose spans are runs of `chars`: a span not yet final ends
 * after `settled` (or is still growing), so its last character is a span
 * character at or after `settled`; it starts in that character's run, at most
 * `maxLength` back. A run that appended text cannot extend and that holds no
 * `anchor` character holds no span.
 */
function openRunStart(text: string, settled: number, isSpanChar: CharTest, isAnchor: CharTest | undefined, maxLength: number): number {
  let open = text.length;
  let runEnd = text.length;
  for (let p = text.length - 1; p >= Math.max(0, settled); p--) {
    if (!isSpanChar(text, p)) {
      runEnd = p;
      continue;
    }
    // The run around p: [runStart, runEnd), looked at once from its last character at or after settled.
    let runStart = p;
    while (runStart > 0 && p + 1 - runStart < maxLength && isSpanChar(text, runStart - 1)) runStart--;
    const growing = runEnd === text.length;
    if (growing || isAnchor === undefined || hasAnchor(text, runStart, runEnd, isAnchor)) open = Math.min(open, runStart);
    // Earlier characters of this run start no earlier spans: skip to before it.
    p = runStart;
    runEnd = runStart;
  }
  return open;
}

function hasAnchor(text: string, start: number, end: number, isAnchor: CharTest): boolean {
  if (isAnchor === NO_ANCHOR) return false;
  for (let i = start; i < end; i++) if (isAnchor(text, i)) return true;
  return false;
}

type CharTest = (text: string, at: number) => boolean;
const charClasses = new WeakMap<RegExp, CharTest>();

/**
 * A one-character class as a test of `text[at]`: ASCII from a table built
 * once (the shape checks run on every streamed frame, for every detector),
 * anything else by the regex itself.
 */
function charClass(pattern: RegExp): CharTest {
  let test = charClasses.get(pattern);
  if (test === undefined) {
    const ascii = new Uint8Array(128);
    for (let code = 0; code < 128; code++) ascii[code] = pattern.test(String.fromCharCode(code)) ? 1 : 0;
    test = (text, at) => {
      const code = text.charCodeAt(at);
      return code < 128 ? ascii[code] === 1 : pattern.test(text[at]!);
    };
    charClasses.set(pattern, test);
  }
  return test;
}

/** The copy index where original offset `from` begins: the first copy character whose source starts at or after it. */
function copyOffset(normalised: NormalisedText, from: number, copyLength: number): number {
  let low = 0;
  let high = copyLength;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (normalised.sourceStart(mid) < from) low = mid + 1;
    else high = mid;
  }
  return low;
}
