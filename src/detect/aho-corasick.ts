// Aho-Corasick multi-pattern matcher over UTF-16 code units. Used twice: as
// the keyword prefilter that decides which detectors run, and for operator
// dictionaries. Hand-written because the packages on npm are trie-of-Maps
// implementations without case folding, and this runs on every request.

export type VisitMatch = (pattern: number, start: number, end: number) => boolean | void;

export interface AhoCorasickOptions {
  /** Fold case per code unit (so a match has the same length as its pattern). */
  caseInsensitive?: boolean;
}

// Above this many table cells (16 MiB of Int32) the automaton keeps sparse
// transitions and follows failure links instead of a dense table.
const DENSE_TABLE_LIMIT = 1 << 22;

function foldUnit(unit: number): number {
  const lower = String.fromCharCode(unit).toLowerCase();
  return lower.length === 1 ? lower.charCodeAt(0) : unit;
}

export class AhoCorasick {
  readonly patternCount: number;
  readonly longestPattern: number;
  private readonly lengths: Int32Array;
  private readonly classOf: Uint16Array;
  private readonly classCount: number;
  private readonly outputs: Array<readonly number[]>;
  private readonly hasOutput: Uint8Array;
  private readonly dense: Int32Array | undefined;
  private readonly sparse: Array<Map<number, number>>;
  private readonly fail: Int32Array;

  constructor(patterns: readonly string[], options: AhoCorasickOptions = {}) {
    const caseInsensitive = options.caseInsensitive ?? false;
    this.patternCount = patterns.length;
    this.lengths = new Int32Array(patterns.length);
    this.classOf = new Uint16Array(65536);
    let classes = 1;
    const classFor = (unit: number): number => {
      const folded = caseInsensitive ? foldUnit(unit) : unit;
      let cls = this.classOf[folded] ?? 0;
      if (cls === 0) {
        if (classes === 65535) throw new Error('too many distinct characters in patterns');
        cls = classes++;
        this.classOf[folded] = cls;
        if (caseInsensitive) {
          const upper = String.fromCharCode(folded).toUpperCase();
          if (upper.length === 1) this.classOf[upper.charCodeAt(0)] = cls;
        }
      }
      if (caseInsensitive) this.classOf[unit] = cls;
      return cls;
    };

    const goto: Array<Map<number, number>> = [new Map()];
    const own: number[][] = [[]];
    let longest = 0;
    patterns.forEach((pattern, index) => {
      this.lengths[index] = pattern.length;
      if (pattern.length === 0) return;
      longest = Math.max(longest, pattern.length);
      let state = 0;
      for (let i = 0; i < pattern.length; i++) {
        const cls = classFor(pattern.charCodeAt(i));
        const row = goto[state]!;
        let next = row.get(cls);
        if (next === undefined) {
          next = goto.length;
          goto.push(new Map());
          own.push([]);
          row.set(cls, next);
        }
        state = next;
      }
      own[state]!.push(index);
    });
    this.longestPattern = longest;
    this.classCount = classes;

    // Breadth-first: failure links and merged outputs.
    const stateCount = goto.length;
    const fail = new Int32Array(stateCount);
    const outputs: number[][] = own.map((list) => list.slice());
    const order: number[] = [];
    for (const next of goto[0]!.values()) order.push(next);
    for (let head = 0; head < order.length; head++) {
      const state = order[head]!;
      for (const [cls, next] of goto[state]!) {
        let f = fail[state]!;
        while (f !== 0 && !goto[f]!.has(cls)) f = fail[f]!;
        const target = goto[f]!.get(cls);
        fail[next] = target !== undefined && target !== next ? target : 0;
        const inherited = outputs[fail[next]!]!;
        if (inherited.length > 0) outputs[next] = outputs[next]!.concat(inherited);
        order.push(next);
      }
    }
    this.fail = fail;
    this.sparse = goto;
    this.outputs = outputs;
    this.hasOutput = new Uint8Array(stateCount);
    outputs.forEach((list, state) => { if (list.length > 0) this.hasOutput[state] = 1; });

    if (stateCount * classes <= DENSE_TABLE_LIMIT) {
      const table = new Int32Array(stateCount * classes);
      for (const [cls, next] of goto[0]!) table[cls] = next;
      for (const state of order) {
        const base = state * classes;
        const failBase = fail[state]! * classes;
        for (let cls = 0; cls < classes; cls++) table[base + cls] = table[failBase + cls]!;
        for (const [cls, next] of goto[state]!) table[base + cls] = next;
      }
      this.dense = table;
    }
  }

  /**
   * Visit every occurrence, overlapping ones included, in order of their end.
   * Returning true from `visit` stops the scan. `state` resumes a scan where
   * an earlier one over the text before `from` ended (its return value), so
   * a stream can be scanned piece by piece: the occurrences are those of one
   * scan of the whole, an occurrence across the pieces' boundary included.
   * Returns the automaton's state after the last character scanned.
   */
  scan(text: string, visit: VisitMatch, from = 0, state = 0): number {
    if (this.longestPattern === 0) return 0;
    const { classOf, hasOutput, outputs, lengths } = this;
    const n = text.length;
    if (this.dense !== undefined) {
      const table = this.dense;
      const width = this.classCount;
      for (let i = from; i < n; i++) {
        state = table[state * width + classOf[text.charCodeAt(i)]!]!;
        if (hasOutput[state] === 1) {
          for (const pattern of outputs[state]!) {
            if (visit(pattern, i + 1 - lengths[pattern]!, i + 1) === true) return state;
          }
        }
      }
      return state;
    }
    const { sparse, fail } = this;
    for (let i = from; i < n; i++) {
      const cls = classOf[text.charCodeAt(i)]!;
      let next = sparse[state]!.get(cls);
      while (next === undefined && state !== 0) {
        state = fail[state]!;
        next = sparse[state]!.get(cls);
      }
      state = next ?? 0;
      if (hasOutput[state] === 1) {
        for (const pattern of outputs[state]!) {
          if (visit(pattern, i + 1 - lengths[pattern]!, i + 1) === true) return state;
        }
      }
    }
    return state;
  }
}
