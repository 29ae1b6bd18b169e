// Scores the detectors on labelled corpora (format: ../shared/eval/README.md).
// PII: a predicted span is a true positive when it overlaps a labelled span
// of the same type; recall counts labelled spans hit by such a prediction.
// Injection: a text is flagged when scoreInjection reaches the threshold.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { INJECTION_THRESHOLD, scoreInjection } from '../src/detect/injection/index.js';
import { createScanner } from '../src/detect/scanner.js';
import { BUILTIN_ENTITY_TYPES, NLP_ENTITY_TYPES, type EntityType, type Span } from '../src/detect/types.js';

export interface LabelledEntity {
  type: string;
  start: number;
  end: number;
  value?: string;
}

interface PiiRow {
  id: string;
  text: string;
  entities: LabelledEntity[];
  /** Real corpora (../shared/eval/real/): where the row comes from. Other extra fields are ignored. */
  source?: string;
}

interface InjectionRow {
  id: string;
  text: string;
  label: 'injection' | 'benign';
  source?: string;
  subtype?: string;
}

/** Flagged share of one slice of an injection corpus (a source, or a label and subtype). */
export interface InjectionSlice {
  rows: number;
  flagged: number;
}

export interface TypeScore {
  labelled: number;
  predicted: number;
  truePositives: number;
  /** Labelled spans found. */
  found: number;
  precision: number;
  recall: number;
}

export interface FalsePositive {
  id: string;
  type: string;
  rule: string;
  value: string;
  /** What the text looks like: a near-miss class or another labelled type. */
  kind: string;
}

export interface PiiReport {
  rows: number;
  /** Labelled types no detector reports (ORGANIZATION, DATE_TIME, ...): listed, not scored. */
  unscored: Record<string, number>;
  byType: Record<string, TypeScore>;
  /** Types the corpus labels; the JSON summary uses these names. */
  corpusTypes: string[];
  overall: TypeScore;
  falsePositives: FalsePositive[];
  misses: Array<{ id: string; type: string; value: string }>;
}

export interface InjectionReport {
  rows: number;
  threshold: number;
  truePositives: number;
  falseNegatives: number;
  falsePositives: number;
  trueNegatives: number;
  tpr: number;
  fpr: number;
  misclassified: Array<{ id: string; label: string; score: number; text: string }>;
  /** By `label · source` and by `label · subtype`, when the rows carry them. */
  bySource: Record<string, InjectionSlice>;
  bySubtype: Record<string, InjectionSlice>;
}

export interface EvalReport {
  dir: string;
  pii?: PiiReport;
  injection?: InjectionReport;
}

function readJsonl<T>(path: string): T[] {
  return readFileSync(path, 'utf8').split('\n').filter((line) => line.trim() !== '').map((line, i) => {
    try {
      return JSON.parse(line) as T;
    } catch (error) {
      throw new Error(`${path}:${i + 1}: ${(error as Error).message}`);
    }
  });
}

const ratio = (num: number, den: number): number => (den === 0 ? 1 : num / den);

function score(labelled: number, predicted: number, truePositives: number, found: number): TypeScore {
  return { labelled, predicted, truePositives, found, precision: ratio(truePositives, predicted), recall: ratio(found, labelled) };
}

const overlaps = (a: { start: number; end: number }, b: { start: number; end: number }): boolean => a.start < b.end && b.start < a.end;

/** Names the README's near-miss classes so false positives can be read at a glance. */
export function nearMissKind(value: string): string {
  const v = value.trim();
  if (/^[0-9a-f]{40}$/i.test(v)) return 'git SHA';
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v)) return 'UUID';
  if (/^v?\d+(?:\.\d+){1,3}$/.test(v)) return 'version';
  if (/\.{3}|x{3,}|YOUR_|<[^>]+>/i.test(v)) return 'placeholder key';
  if (/^[A-Z]{2,4}-\d+$/.test(v)) return 'order number';
  if (/^[A-Z]{2}\d{2}[A-Z0-9 ]+$/.test(v)) return 'IBAN-like (bad check)';
  if (/^\d{3}-\d{2}-\d{4}$/.test(v)) return 'SSN-like (invalid area/group/serial)';
  if (/^\d[\d -]{11,22}\d$/.test(v)) return 'card-like (Luhn/issuer)';
  return 'other';
}

/** Types the evaluation scans for: the default set plus the opt-in NLP types (PERSON, LOCATION, ADDRESS). */
const EVALUATED_TYPES: readonly EntityType[] = [...BUILTIN_ENTITY_TYPES, ...NLP_ENTITY_TYPES];

export function evaluatePii(rows: readonly PiiRow[]): PiiReport {
  // The opt-in types only when the corpus labels them: elsewhere their spans are not errors, just unlabelled.
  const labelledTypes = new Set(rows.flatMap((row) => row.entities.map((e) => e.type)));
  const types = EVALUATED_TYPES.filter((type) => BUILTIN_ENTITY_TYPES.includes(type) || labelledTypes.has(type));
  const scanner = createScanner({ types });
  const scored = new Set<string>(types);
  const unscored: Record<string, number> = {};
  const counts = new Map<string, { labelled: number; predicted: number; tp: number; found: number }>();
  const bucket = (type: string) => {
    let c = counts.get(type);
    if (c === undefined) counts.set(type, (c = { labelled: 0, predicted: 0, tp: 0, found: 0 }));
    return c;
  };
  const corpusTypes = new Set<string>();
  const falsePositives: FalsePositive[] = [];
  const misses: PiiReport['misses'] = [];
  for (const row of rows) {
    const predicted: Span[] = scanner.scan(row.text);
    for (const entity of row.entities) {
      if (!scored.has(entity.type)) {
        unscored[entity.type] = (unscored[entity.type] ?? 0) + 1;
        continue;
      }
      corpusTypes.add(entity.type);
      const c = bucket(entity.type);
      c.labelled++;
      if (predicted.some((p) => p.type === entity.type && overlaps(p, entity))) c.found++;
      else misses.push({ id: row.id, type: entity.type, value: row.text.slice(entity.start, entity.end) });
    }
    for (const span of predicted) {
      const c = bucket(span.type);
      c.predicted++;
      if (row.entities.some((e) => e.type === span.type && overlaps(span, e))) {
        c.tp++;
        continue;
      }
      const value = row.text.slice(span.start, span.end);
      const other = row.entities.find((e) => overlaps(span, e));
      falsePositives.push({ id: row.id, type: span.type, rule: span.rule, value, kind: other === undefined ? nearMissKind(value) : `labelled ${other.type}` });
    }
  }
  const byType: Record<string, TypeScore> = {};
  let labelled = 0, predictedTotal = 0, tp = 0, found = 0;
  for (const [type, c] of [...counts.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    byType[type] = score(c.labelled, c.predicted, c.tp, c.found);
    labelled += c.labelled;
    predictedTotal += c.predicted;
    tp += c.tp;
    found += c.found;
  }
  return {
    rows: rows.length,
    unscored,
    byType,
    corpusTypes: [...corpusTypes].sort(),
    overall: score(labelled, predictedTotal, tp, found),
    falsePositives,
    misses,
  };
}

export function evaluateInjection(rows: readonly InjectionRow[], threshold = INJECTION_THRESHOLD): InjectionReport {
  let tp = 0, fn = 0, fp = 0, tn = 0;
  const misclassified: InjectionReport['misclassified'] = [];
  const bySource: Record<string, InjectionSlice> = {};
  const bySubtype: Record<string, InjectionSlice> = {};
  const count = (slices: Record<string, InjectionSlice>, key: string, flagged: boolean): void => {
    const slice = (slices[key] ??= { rows: 0, flagged: 0 });
    slice.rows++;
    if (flagged) slice.flagged++;
  };
  for (const row of rows) {
    const { score: s } = scoreInjection(row.text);
    const flagged = s >= threshold;
    const attack = row.label === 'injection';
    if (row.source !== undefined) count(bySource, `${row.label} · ${row.source}`, flagged);
    if (row.subtype !== undefined) count(bySubtype, `${row.label} · ${row.subtype}`, flagged);
    if (attack && flagged) tp++;
    else if (attack) fn++;
    else if (flagged) fp++;
    else tn++;
    if (flagged !== attack) misclassified.push({ id: row.id, label: row.label, score: s, text: row.text });
  }
  return { rows: rows.length, threshold, truePositives: tp, falseNegatives: fn, falsePositives: fp, trueNegatives: tn, tpr: ratio(tp, tp + fn), fpr: fp + tn === 0 ? 0 : fp / (fp + tn), misclassified, bySource, bySubtype };
}

/**
 * The corpus file of a kind in a folder: `<kind>.jsonl` (the template corpus),
 * else `<kind>_dev.jsonl` (the real corpus: its dev split, never the training split).
 */
export function corpusFile(dir: string, kind: 'pii' | 'injection'): string | undefined {
  return [join(dir, `${kind}.jsonl`), join(dir, `${kind}_dev.jsonl`)].find((path) => existsSync(path));
}

/** Evaluates whichever of the PII and injection corpora the folder holds. */
export function evaluateDir(dir: string): EvalReport {
  const report: EvalReport = { dir };
  const piiPath = corpusFile(dir, 'pii');
  const injectionPath = corpusFile(dir, 'injection');
  if (piiPath !== undefined) report.pii = evaluatePii(readJsonl<PiiRow>(piiPath));
  if (injectionPath !== undefined) report.injection = evaluateInjection(readJsonl<InjectionRow>(injectionPath));
  return report;
}

const round = (n: number): number => Math.round(n * 10000) / 10000;

/** The one-line summary: corpus type names, then overall, then injection rates. */
export function summary(report: EvalReport): { pii: Record<string, { precision: number; recall: number }> | null; injection: { tpr: number; fpr: number } | null } {
  let pii: Record<string, { precision: number; recall: number }> | null = null;
  if (report.pii !== undefined) {
    pii = {};
    for (const type of report.pii.corpusTypes) {
      const s = report.pii.byType[type]!;
      pii[type] = { precision: round(s.precision), recall: round(s.recall) };
    }
    pii['overall'] = { precision: round(report.pii.overall.precision), recall: round(report.pii.overall.recall) };
  }
  const injection = report.injection === undefined ? null : { tpr: round(report.injection.tpr), fpr: round(report.injection.fpr) };
  return { pii, injection };
}

const pct = (n: number): string => n.toFixed(3);

export function formatReport(report: EvalReport): string {
  const lines: string[] = [`Evaluation corpus: ${report.dir}`];
  if (report.pii !== undefined) {
    const { pii } = report;
    lines.push('', `PII (${pii.rows} texts)`, '');
    lines.push(`${'type'.padEnd(16)} ${'labelled'.padStart(8)} ${'predicted'.padStart(9)} ${'TP'.padStart(5)} ${'precision'.padStart(9)} ${'recall'.padStart(7)}`);
    for (const [type, s] of Object.entries(pii.byType)) {
      const note = pii.corpusTypes.includes(type) ? '' : '  (type not labelled in this corpus)';
      lines.push(`${type.padEnd(16)} ${String(s.labelled).padStart(8)} ${String(s.predicted).padStart(9)} ${String(s.truePositives).padStart(5)} ${pct(s.precision).padStart(9)} ${(s.labelled === 0 ? '-' : pct(s.recall)).padStart(7)}${note}`);
    }
    const o = pii.overall;
    lines.push(`${'overall'.padEnd(16)} ${String(o.labelled).padStart(8)} ${String(o.predicted).padStart(9)} ${String(o.truePositives).padStart(5)} ${pct(o.precision).padStart(9)} ${pct(o.recall).padStart(7)}`);
    lines.push('', `False positives: ${pii.falsePositives.length}`);
    const kinds = new Map<string, number>();
    for (const fp of pii.falsePositives) kinds.set(`${fp.type} on ${fp.kind}`, (kinds.get(`${fp.type} on ${fp.kind}`) ?? 0) + 1);
    for (const [kind, n] of [...kinds.entries()].sort((a, b) => b[1] - a[1])) lines.push(`  ${String(n).padStart(4)}  ${kind}`);
    for (const fp of pii.falsePositives.slice(0, 10)) lines.push(`        ${fp.id} ${fp.rule}: ${JSON.stringify(fp.value.slice(0, 60))}`);
    const unscored = Object.entries(pii.unscored);
    if (unscored.length > 0) lines.push(`Labelled but not scored (no detector): ${unscored.map(([type, n]) => `${type} ${n}`).join(', ')}`);
    lines.push(`Missed labelled spans: ${pii.misses.length}`);
    for (const miss of pii.misses.slice(0, 10)) lines.push(`        ${miss.id} ${miss.type}: ${JSON.stringify(miss.value.slice(0, 60))}`);
  } else {
    lines.push('', 'PII: no pii.jsonl in this folder');
  }
  if (report.injection !== undefined) {
    const i = report.injection;
    lines.push('', `Prompt injection (${i.rows} texts, threshold ${i.threshold})`, '');
    lines.push(`  true positives  ${String(i.truePositives).padStart(5)}   false negatives ${String(i.falseNegatives).padStart(5)}   TPR ${pct(i.tpr)}`);
    lines.push(`  false positives ${String(i.falsePositives).padStart(5)}   true negatives  ${String(i.trueNegatives).padStart(5)}   FPR ${pct(i.fpr)}`);
    for (const [title, slices] of [['By source', i.bySource], ['By subtype', i.bySubtype]] as const) {
      if (Object.keys(slices).length === 0) continue;
      lines.push('', `  ${title} (share flagged: TPR for injection rows, FPR for benign ones)`);
      for (const [key, slice] of Object.entries(slices).sort(([a], [b]) => a.localeCompare(b))) {
        lines.push(`    ${pct(slice.flagged / slice.rows)}  ${String(slice.rows).padStart(5)}  ${key}`);
      }
    }
    lines.push('');
    for (const m of i.misclassified.slice(0, 10)) lines.push(`        ${m.id} ${m.label} scored ${m.score.toFixed(2)}: ${JSON.stringify(m.text.slice(0, 90))}`);
  } else {
    lines.push('', 'Prompt injection: no injection.jsonl in this folder');
  }
  return lines.join('\n');
}

export type { EntityType };
