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
import { normaliseForDetection, originalOffset, toOriginal, type NormalisedText } from './normalise.js';
import { createPhoneDetector, PHONE_DETECTOR_ID, type PhoneOptions } from './pii/phone.js';
import { KeywordPrefilter } from './prefilter.js';
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
}

export interface Scanner {
  /** Non-overlapping spans sorted by start. */
  scan(text: string): Span[];
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
  undecidedFrom(text: string): number;
}

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

  const contextLength = Math.max(0, ...detectors.map((d) => d.lookahead));

  // Candidates before overlap resolution, for the last text seen: the masker asks scan and undecidedFrom about the same window.
  let last: { text: string; normalised: NormalisedText | undefined; candidates: Span[]; selected: Set<number> } | undefined;
  const scanned = (text: string): NonNullable<typeof last> => {
    if (last?.text === text) return last;
    const candidates: Span[] = [];
    const normalised = normaliseForDetection(text);
    const seen = normalised?.text ?? text;
    const context = new ScanContext(seen);
    const add = normalised === undefined
      ? (span: Span) => { candidates.push(span); }
      : (span: Span) => { candidates.push({ ...span, ...toOriginal(normalised, span.start, span.end) }); };
    const selected = new Set(prefilter.select(context));
    for (const index of selected) {
      const detector = detectors[index]!;
      // Custom patterns may be declared with a built-in type the caller did not ask for; they still count.
      const keep = detector === custom || detector === dictionary
        ? add
        : (span: Span) => { if (wanted.has(span.type)) add(span); };
      detector.detect(seen, keep, context);
    }
    last = { text, normalised, candidates, selected };
    return last;
  };
  const candidatesOf = (text: string): Span[] => scanned(text).candidates;

  return {
    maxEntityLength: Math.max(0, ...detectors.map((d) => d.maxLength)),
    contextLength,
    lookbehindLength: Math.max(0, ...detectors.map((d) => d.lookbehind)),
    types: [...reportable],
    scan(text: string): Span[] {
      // Copies, so a caller that edits a span cannot change the remembered candidates.
      return text.length === 0 ? [] : resolveOverlaps(candidatesOf(text)).map((span) => ({ ...span }));
    },
    undecidedFrom(original: string): number {
      const { normalised, candidates, selected } = scanned(original);
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
    },
  };

  /**
   * From each detector's shape: the earliest start of a span in `text` (what
   * detectors see) that is not final. Each detector is judged by its own
   * lookahead, not the scanner's longest: a phone's eight characters of right
   * context must not hold prose back when no digit is near the end.
   * `selected`: the detectors whose keywords the text holds (the prefilter's choice).
   */
  function shapeBound(text: string, selected: ReadonlySet<number>): number {
    let from = text.length;
    for (const [index, detector] of detectors.entries()) {
      const settled = text.length - detector.lookahead;
      let open: number;
      if (detector.openFrom !== undefined) open = detector.openFrom(text, Math.max(0, settled));
      else if (detector.spanChars === undefined) open = settled - detector.maxLength;
      // Without one of its keywords in the text, a detector can only be waiting for a run still growing at the end.
      else open = openRunStart(text, settled, detector.spanChars, selected.has(index) ? detector.spanAnchor : NOTHING, detector.maxLength);
      from = Math.min(from, open);
    }
    return Math.max(0, from);
  }
}

/**
 * For a detector whose spans are runs of `chars`: a span not yet final ends
 * after `settled` (or is still growing), so its last character is a span
 * character at or after `settled`; it starts in that character's run, at most
 * `maxLength` back. A run that appended text cannot extend and that holds no
 * `anchor` character holds no span.
 */
function openRunStart(text: string, settled: number, chars: RegExp, anchor: RegExp | undefined, maxLength: number): number {
  let open = text.length;
  let runEnd = text.length;
  for (let p = text.length - 1; p >= Math.max(0, settled); p--) {
    if (!chars.test(text[p]!)) {
      runEnd = p;
      continue;
    }
    // The run around p: [runStart, runEnd), looked at once from its last character at or after settled.
    let runStart = p;
    while (runStart > 0 && p + 1 - runStart < maxLength && chars.test(text[runStart - 1]!)) runStart--;
    const growing = runEnd === text.length;
    if (growing || anchor === undefined || hasAnchor(text, runStart, runEnd, anchor)) open = Math.min(open, runStart);
    // Earlier characters of this run start no earlier spans: skip to before it.
    p = runStart;
    runEnd = runStart;
  }
  return open;
}

/** An anchor no character matches. */
const NOTHING = /[^\s\S]/;

function hasAnchor(text: string, start: number, end: number, anchor: RegExp): boolean {
  for (let i = start; i < end; i++) if (anchor.test(text[i]!)) return true;
  return false;
}
