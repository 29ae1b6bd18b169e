import type { Span } from './types.js';

function outranks(a: Span, b: Span): number {
  return b.confidence - a.confidence || (b.end - b.start) - (a.end - a.start) || a.start - b.start;
}

/**
 * Non-overlapping spans sorted by start. Where spans overlap, the more
 * confident one wins, then the longer, then the earlier. Spans are grouped
 * into runs of mutually overlapping candidates first, so the greedy choice
 * only ever looks at a handful of spans.
 */
export function resolveOverlaps(spans: readonly Span[]): Span[] {
  const sorted = spans.filter((s) => s.end > s.start).sort((a, b) => a.start - b.start || b.end - a.end);
  const result: Span[] = [];
  let i = 0;
  while (i < sorted.length) {
    let j = i + 1;
    let clusterEnd = sorted[i]!.end;
    while (j < sorted.length && sorted[j]!.start < clusterEnd) {
      clusterEnd = Math.max(clusterEnd, sorted[j]!.end);
      j++;
    }
    if (j - i === 1) {
      result.push(sorted[i]!);
    } else {
      const kept: Span[] = [];
      for (const span of sorted.slice(i, j).sort(outranks)) {
        if (kept.every((k) => k.end <= span.start || span.end <= k.start)) kept.push(span);
      }
      result.push(...kept.sort((a, b) => a.start - b.start));
    }
    i = j;
  }
  return result;
}
