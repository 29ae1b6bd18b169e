// Operator-supplied patterns, compiled with RE2 (linear time: no pattern can
// backtrack catastrophically) and prefiltered with one RE2.Set pass, so only
// the patterns that occur are run for positions.
import RE2 from 're2';
import type { ScanContext } from './context.js';
import type { Detector, ReportSpan } from './detector.js';
import type { EntityType } from './types.js';

export interface CustomPatternSpec {
  pattern: string;
  /** RE2 flags: any of `i`, `m`, `s`, `u`. Global matching is implied. */
  flags?: string;
  /** Defaults to `CUSTOM`. */
  type?: EntityType;
  /** Longest text the pattern can match; longer matches are not reported, so the streaming holdback stays a true bound. */
  maxLength: number;
  /** Defaults to 0.8. */
  confidence?: number;
}

export class CustomPatternError extends Error {
  constructor(readonly patternName: string, readonly reason: string) {
    super(`custom pattern "${patternName}": ${reason}`);
    this.name = 'CustomPatternError';
  }
}

export const MAX_CUSTOM_PATTERN_LENGTH = 64 * 1024;

// RE2 reports these as "invalid escape sequence" or "invalid perl operator"; say what they are.
function unsupportedConstruct(pattern: string): string | undefined {
  if (/(?<!\\)(?:\\\\)*\\(?:[1-9]|k<)/.test(pattern)) return 'backreferences are not supported (RE2 matches in linear time and cannot remember groups)';
  if (/\(\?<?[=!]/.test(pattern)) return 'lookahead and lookbehind are not supported (RE2 matches in linear time without them)';
  if (/\(\?>|[*+?}]\+/.test(pattern)) return 'atomic groups and possessive quantifiers are not supported by RE2';
  return undefined;
}

interface Compiled {
  name: string;
  source: string;
  flags: string;
  type: EntityType;
  maxLength: number;
  confidence: number;
  regex: RE2;
}

function compile(name: string, spec: CustomPatternSpec): Compiled {
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new CustomPatternError(name, "the name must use letters, digits, '_', '.' or '-'");
  if (typeof spec.pattern !== 'string' || spec.pattern.length === 0) throw new CustomPatternError(name, 'the pattern is empty');
  const flags = spec.flags ?? '';
  if (!/^[imsu]*$/.test(flags) || new Set(flags).size !== flags.length) throw new CustomPatternError(name, `unsupported flags "${flags}" (allowed: i, m, s, u)`);
  if (!Number.isInteger(spec.maxLength) || spec.maxLength < 1 || spec.maxLength > MAX_CUSTOM_PATTERN_LENGTH) {
    throw new CustomPatternError(name, `maxLength must be an integer from 1 to ${MAX_CUSTOM_PATTERN_LENGTH}`);
  }
  const confidence = spec.confidence ?? 0.8;
  if (!(confidence > 0 && confidence <= 1)) throw new CustomPatternError(name, 'confidence must be in (0, 1]');
  const unsupported = unsupportedConstruct(spec.pattern);
  if (unsupported !== undefined) throw new CustomPatternError(name, unsupported);
  let regex: RE2;
  try {
    regex = new RE2(spec.pattern, `${flags}gu`);
  } catch (error) {
    throw new CustomPatternError(name, `RE2 cannot compile it: ${(error as Error).message}`);
  }
  if (regex.test('')) throw new CustomPatternError(name, 'the pattern matches the empty string');
  regex.lastIndex = 0;
  return { name, source: spec.pattern, flags, type: spec.type ?? 'CUSTOM', maxLength: spec.maxLength, confidence, regex };
}

/** Walks a UTF-8 buffer once to turn ascending byte offsets into UTF-16 offsets. */
function byteToUtf16Offsets(buffer: Buffer, sortedBytes: readonly number[]): Map<number, number> {
  const result = new Map<number, number>();
  let byte = 0;
  let unit = 0;
  for (const target of sortedBytes) {
    while (byte < target) {
      const lead = buffer[byte]!;
      if (lead < 0x80) { byte += 1; unit += 1; }
      else if (lead < 0xe0) { byte += 2; unit += 1; }
      else if (lead < 0xf0) { byte += 3; unit += 1; }
      else { byte += 4; unit += 2; }
    }
    result.set(target, unit);
  }
  return result;
}

export function createCustomPatternDetector(specs: Record<string, CustomPatternSpec>): Detector | undefined {
  const compiled = Object.entries(specs).map(([name, spec]) => compile(name, spec));
  if (compiled.length === 0) return undefined;
  // Flags go inline so each pattern keeps its own in the shared automaton.
  const set = new RE2.Set(compiled.map((c) => {
    const inline = c.flags.replace(/[gu]/g, '');
    return inline === '' ? c.source : `(?${inline})${c.source}`;
  }), 'u');
  return {
    id: 'custom',
    types: [...new Set(compiled.map((c) => c.type))],
    keywords: [],
    maxLength: Math.max(...compiled.map((c) => c.maxLength)),
    lookbehind: 0,
    // Matching is leftmost-first and greedy: one more character can change where a match ends.
    lookahead: 1,
    detect(text: string, report: ReportSpan, context: ScanContext): void {
      const buffer = context.utf8Bytes();
      const fired = set.match(buffer);
      if (fired.length === 0) return;
      const found: Array<{ pattern: Compiled; start: number; end: number }> = [];
      for (const index of fired) {
        const pattern = compiled[index]!;
        pattern.regex.lastIndex = 0;
        for (let m = pattern.regex.exec(buffer); m !== null; m = pattern.regex.exec(buffer)) {
          const length = (m[0] as unknown as Buffer).length;
          if (length === 0) {
            pattern.regex.lastIndex++;
            continue;
          }
          found.push({ pattern, start: m.index, end: m.index + length });
        }
      }
      const ascii = buffer.length === text.length;
      const offsets = ascii ? undefined : byteToUtf16Offsets(buffer, [...new Set(found.flatMap((f) => [f.start, f.end]))].sort((a, b) => a - b));
      for (const { pattern, start, end } of found) {
        const from = offsets?.get(start) ?? start;
        const to = offsets?.get(end) ?? end;
        if (to - from > pattern.maxLength) continue;
        report({ type: pattern.type, start: from, end: to, confidence: pattern.confidence, rule: `custom.${pattern.name}`, validator: 're2' });
      }
    },
  };
}
