// `npm run validate:injection`: leave-one-source-out validation of the
// injection classifier's training settings. Each source family is held out in
// turn: the model trains on the other families' training rows, its shift is
// chosen on the other families' dev rows (combined FPR ≤ 2%, as in
// train-injection.ts), and the family held out — train and dev rows — is
// scored: its TPR if it holds attacks, its FPR if it holds benign prompts.
// That is the question the gateway faces on public sources it never saw, and
// the hyperparameters in TRAINING are chosen on it, not on the dev split that
// reports the figures nor on the template corpus.
//
//   node --import tsx training/validate-injection.ts [--data DIR] [--grid]
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { extractFeatures, FEATURES, type FeatureOptions, type FeatureVector } from '../src/detect/injection/features.js';
import { classifierDiscount, INJECTION_THRESHOLD, scoreInjection } from '../src/detect/injection/score.js';
import { fitMlp, mlpLogit } from './mlp.js';
import { authoredRows } from './hard-negatives.js';
import { AUTHORED_FAMILY, chooseShift, familyOf, fit, readRows, sample, shiftFloor, TRAINING, trainingRows, type Row, type TrainingConfig } from './train-injection.js';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export { familyOf };

interface Scored {
  row: Row;
  family: string;
  rules: number;
  /** Subtracted from the classifier's logit (score.ts, classifierDiscount): Infinity when it does not judge the text at all. */
  discount: number;
}

const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));

/** The combined score as score.ts computes it: rules and, when it judges the text, the classifier (noisy-OR). */
const combinedScore = (s: Scored, logit: number, shift: number): number => (s.discount !== Infinity ? 1 - (1 - s.rules) * (1 - sigmoid(logit - s.discount - shift)) : s.rules);

interface Fitted {
  logit: (features: FeatureVector) => number;
  /** The logit of a text without known n-grams, for the emptyProbability floor. */
  empty: number;
}

/** The model `config.model` names, fitted on the rows. */
/** A text's features; with an ensemble, also those of the second model's layout. */
type Features = FeatureVector & { second?: FeatureVector };

function fitModel(rows: readonly Row[], features: readonly Features[], config: TrainingConfig): Fitted {
  if (config.model === 'ensemble') {
    const one = fitModel(rows, features, { ...config, model: 'logistic' });
    const two = fitModel(rows, features.map((f) => f.second!), { ...config, model: 'logistic' });
    return { logit: (f: Features) => (one.logit(f) + two.logit(f.second!)) / 2, empty: (one.empty + two.empty) / 2 };
  }
  if (config.model === 'mlp') {
    const m = fitMlp(rows, features, config);
    return { logit: (f) => mlpLogit(m, f), empty: mlpLogit(m, { index: new Int32Array(0), value: new Float32Array(0) }) };
  }
  const { weights, bias } = fit(rows, features, config);
  return {
    logit: ({ index, value }) => {
      let z = bias;
      for (let i = 0; i < index.length; i++) z += weights[index[i]!]! * value[i]!;
      return z;
    },
    empty: bias,
  };
}

const logits = (fitted: Fitted, features: readonly Features[]): Float64Array => Float64Array.from(features, fitted.logit);

export interface FoldResult {
  family: string;
  label: 'injection' | 'benign';
  rows: number;
  flagged: number;
}

/** Every family held out once; the share of its rows flagged (TPR for attacks, FPR for benign). */
// The rules' score of a text does not depend on the settings compared: computed once per text.
const rulesScores = new Map<string, number>();
const rulesScore = (text: string): number => {
  let score = rulesScores.get(text);
  if (score === undefined) rulesScores.set(text, (score = scoreInjection(text, null).score));
  return score;
};

export function leaveOneSourceOut(data: string, config: TrainingConfig, featureOptions: Readonly<FeatureOptions> = FEATURES, log: (line: string) => void = () => {}, sampleSize?: number): FoldResult[] {
  // Ordinary sentences are always scored when held out, so settings with and without them compare.
  const train: Scored[] = sample(trainingRows(data, { ...config, ordinaryBenign: true }), sampleSize).map((row) => ({ row, family: familyOf(row), rules: 0, discount: 0 }));
  const trainable = (s: Scored): boolean => config.ordinaryBenign || s.row.subtype !== 'benign_ordinary';
  const dev: Scored[] = sample(readRows(join(data, 'injection_dev.jsonl')), sampleSize).map((row) => ({ row, family: familyOf(row), rules: 0, discount: 0 }));
  for (const s of [...train, ...dev]) {
    s.rules = rulesScore(s.row.text);
    s.discount = classifierDiscount(s.row.text, s.rules > 0, config.unaddressedPenalty);
  }
  const featuresOf = (text: string): Features => {
    const f: Features = extractFeatures(text, featureOptions);
    if (config.model === 'ensemble') f.second = extractFeatures(text, { ...featureOptions, ...config.second });
    return f;
  };
  const trainFeatures = train.map((s) => featuresOf(s.row.text));
  const devFeatures = dev.map((s) => featuresOf(s.row.text));
  // Rows written for this project are training material, not a public source: never held out, and their validation templates are scored below.
  const families = [...new Set(train.map((s) => s.family))].filter((f) => f !== AUTHORED_FAMILY).sort();
  const results: FoldResult[] = [];
  for (const family of families) {
    const keep = train.map((s, i) => [s, i] as const).filter(([s]) => s.family !== family && trainable(s));
    const fitted = fitModel(keep.map(([s]) => s.row), keep.map(([, i]) => trainFeatures[i]!), config);
    const devKeep = dev.map((s, i) => [s, i] as const).filter(([s]) => s.family !== family && s.row.label === 'benign');
    const devLogits = logits(fitted, devKeep.map(([, i]) => devFeatures[i]!));
    const shift = Math.max(chooseShift(devKeep.map(([s], k) => ({ rules: s.rules, logit: devLogits[k]! - s.discount })), config.devFprBudget), shiftFloor(fitted.empty, config.emptyProbability));
    // System prompts added as benign rows are training material, not rows of the family: the table stays comparable with and without them.
    const heldOut = [...train.map((s, i) => [s, trainFeatures[i]!] as const), ...dev.map((s, i) => [s, devFeatures[i]!] as const)].filter(([s]) => s.family === family && s.row.subtype !== 'benign_system_prompt');
    const heldLogits = logits(fitted, heldOut.map(([, f]) => f));
    for (const label of ['injection', 'benign'] as const) {
      let rows = 0;
      let flagged = 0;
      heldOut.forEach(([s], k) => {
        if (s.row.label !== label) return;
        rows++;
        const combined = combinedScore(s, heldLogits[k]!, shift);
        if (combined >= INJECTION_THRESHOLD) flagged++;
      });
      if (rows > 0) results.push({ family, label, rows, flagged });
    }
    log(`  held out ${family}: ${results.filter((r) => r.family === family).map((r) => `${r.label} ${r.flagged}/${r.rows}`).join(', ')}`);
  }
  // All families in: the dev split's own figures (calibrated on it, as train-injection.ts does).
  const all = train.map((s, i) => [s, i] as const).filter(([s]) => trainable(s));
  const fitted = fitModel(all.map(([s]) => s.row), all.map(([, i]) => trainFeatures[i]!), config);
  const devLogits = logits(fitted, devFeatures);
  const benignDev = dev.map((s, k) => ({ rules: s.rules, logit: devLogits[k]! - s.discount, label: s.row.label })).filter((d) => d.label === 'benign');
  const shift = Math.max(chooseShift(benignDev, config.devFprBudget), shiftFloor(fitted.empty, config.emptyProbability));
  for (const label of ['injection', 'benign'] as const) {
    let rows = 0;
    let flagged = 0;
    dev.forEach((s, k) => {
      if (s.row.label !== label) return;
      rows++;
      if (combinedScore(s, devLogits[k]!, shift) >= INJECTION_THRESHOLD) flagged++;
    });
    results.push({ family: 'dev split (all families in)', label, rows, flagged });
  }
  // The held-out templates of the authored rows (training/hard-negatives.ts), scored by the same model and shift.
  const validation: Scored[] = authoredRows().filter((r) => r.split === 'validation').map((row) => {
    const rules = rulesScore(row.text);
    return { row, family: AUTHORED_FAMILY, rules, discount: classifierDiscount(row.text, rules > 0, config.unaddressedPenalty) };
  });
  const validationLogits = logits(fitted, validation.map((s) => featuresOf(s.row.text)));
  for (const label of ['injection', 'benign'] as const) {
    const scored = validation.map((s, k) => [s, k] as const).filter(([s]) => s.row.label === label);
    if (scored.length === 0) continue;
    results.push({ family: 'authored validation (all families in)', label, rows: scored.length, flagged: scored.filter(([s, k]) => combinedScore(s, validationLogits[k]!, shift) >= INJECTION_THRESHOLD).length });
  }
  log(`  dev split, all families in (empty-text logit ${fitted.empty.toFixed(2)}, shift ${shift.toFixed(2)}): ${results.filter((r) => r.family.endsWith('(all families in)')).map((r) => `${r.label} ${r.flagged}/${r.rows}`).join(', ')}`);
  return results;
}

/** Mean TPR over attack families and mean FPR over benign families (each family counts once). */
export function summarise(all: readonly FoldResult[]): { tpr: number; fpr: number } {
  const results = all.filter((r) => !r.family.endsWith('(all families in)'));
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  return {
    tpr: mean(results.filter((r) => r.label === 'injection').map((r) => r.flagged / r.rows)),
    fpr: mean(results.filter((r) => r.label === 'benign').map((r) => r.flagged / r.rows)),
  };
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      data: { type: 'string', default: resolve(projectRoot, '..', 'shared', 'eval', 'real') },
      grid: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log('usage: node --import tsx training/validate-injection.ts [--data DIR] [--grid JSON]\n\n' +
      'Leave-one-source-out validation of the injection classifier\'s training settings (TRAINING in train-injection.ts).\n' +
      '--grid takes a JSON array of partial settings and feature options (charNgrams, addressed, openers, normFloor, embedded, functionWords;\n' +
      'model "mlp" for the one-hidden-layer network of training/mlp.ts)\n' +
      'to compare, e.g. \'[{"l2":1e-4},{"charNgrams":"all","addressed":false,"openers":false}]\'.');
    process.exit(0);
  }
  const grid = values.grid === undefined ? [{}] : (JSON.parse(values.grid) as Array<Partial<TrainingConfig> & Partial<FeatureOptions>>);
  for (const change of grid) {
    const { charNgrams = FEATURES.charNgrams, addressed = FEATURES.addressed, openers = FEATURES.openers, normFloor = FEATURES.normFloor, embedded = false, functionWords = FEATURES.functionWords ?? true, ...rest } = change;
    const config = { ...TRAINING, ...rest };
    const featureOptions: FeatureOptions = { charNgrams, addressed, openers, normFloor, embedded, functionWords };
    console.log(`settings ${JSON.stringify({ ...rest, ...featureOptions })}`);
    const started = Date.now();
    const results = leaveOneSourceOut(values.data, config, featureOptions, (line) => console.log(line));
    const { tpr, fpr } = summarise(results);
    console.log(`  mean over held-out families: TPR ${tpr.toFixed(3)}, FPR ${fpr.toFixed(3)} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  }
}
