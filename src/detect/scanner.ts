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
  let last: { text: string; normalised: NormalisedText | undefined; candidates: Span[] } | undefined;
  const scanned = (text: string): NonNullable<typeof last> => {
    if (last?.text === text) return last;
    const candidates: Span[] = [];
    const normalised = normaliseForDetection(text);
    const seen = normalised?.text ?? text;
    const context = new ScanContext(seen);
    const add = normalised === undefined
      ? (span: Span) => { candidates.push(span); }
      : (span: Span) => { candidates.push({ ...span, ...toOriginal(normalised, span.start, span.end) }); };
    for (const index of prefilter.select(context)) {
      const detector = detectors[index]!;
      // Custom patterns may be declared with a built-in type the caller did not ask for; they still count.
      const keep = detector === custom || detector === dictionary
        ? add
        : (span: Span) => { if (wanted.has(span.type)) add(span); };
      detector.detect(seen, keep, context);
    }
    last = { text, normalised, candidates };
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
      const { normalised, candidates } = scanned(original);
      // Decided on the copy, then mapped back; the last two characters stay open, since one more
      // character can still change how they normalise ('%4' + '0', a letter + a combining mark).
      let from = normalised === undefined
        ? shapeBound(original)
        : Math.max(0, Math.min(originalOffset(normalised, shapeBound(normalised.text), original.length), original.length - 2));
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

  /** From each detector's shape: the earliest start of a span in `text` (what detectors see) that is not final. */
  function shapeBound(text: string): number {
    const settled = text.length - contextLength;
    if (settled <= 0) return 0;
    // How far back the trailing run of each detector's span characters reaches, at most its maxLength.
    const runs = new Map<RegExp, number>();
    const trailingRun = (chars: RegExp, limit: number): number => {
      let run = runs.get(chars) ?? 0;
      while (run < limit && run < settled && chars.test(text[settled - run - 1]!)) run++;
      runs.set(chars, Math.max(run, runs.get(chars) ?? 0));
      return Math.min(run, limit);
    };
    let from = settled;
    for (const detector of detectors) {
      const open = detector.openFrom?.(text, settled)
        ?? settled - (detector.spanChars === undefined ? detector.maxLength : trailingRun(detector.spanChars, detector.maxLength));
      from = Math.min(from, open);
    }
    return Math.max(0, from);
  }
}
