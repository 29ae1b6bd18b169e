// The learned half of injection scoring: a logistic regression over hashed
// word and character n-grams (features.ts), trained by
// training/train-injection.ts on ../shared/eval/real/injection_train.jsonl,
// shipped as int8 weights in model.ts (provenance and metrics: MODEL.md).
// Runs in-process, no I/O: a 4 KB prompt costs about 0.3 ms in any script
// (bench/detect.ts; features.ts says how).
import { FEATURE_BITS, FEATURE_DIM, featureLayout, linearScore, type BucketWeights } from './features.js';
import { INJECTION_MODEL } from './model.js';

export interface InjectionModel {
  /** Must equal FEATURE_BITS: a model trained on other features cannot be read. */
  bits: number;
  /** Must equal featureLayout(): which n-grams and context features the weights were trained on. */
  layout: string;
  /** int8 weights, base64; the weight of bucket i is weights[i] * scale. */
  weights: string;
  scale: number;
  bias: number;
  /** Logit at which the classifier alone reaches 0.5, chosen on the dev split (see MODEL.md). */
  shift: number;
}

export interface LoadedModel {
  /** The weight of each bucket (what training and tests read). */
  weights: Float32Array;
  /** The same weights as int8 codes and the value of each code, for scoring (linearScore). */
  buckets: BucketWeights;
  bias: number;
  shift: number;
}

export function loadModel(model: InjectionModel): LoadedModel {
  if (model.bits !== FEATURE_BITS) throw new Error(`injection model has ${model.bits}-bit features; this build reads ${FEATURE_BITS}`);
  if (model.layout !== featureLayout()) throw new Error(`injection model has features "${model.layout}"; this build reads "${featureLayout()}"`);
  const bytes = Buffer.from(model.weights, 'base64');
  if (bytes.length !== FEATURE_DIM) throw new Error(`injection model has ${bytes.length} weights; expected ${FEATURE_DIM}`);
  const codes = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.length).slice();
  const weights = new Float32Array(FEATURE_DIM);
  for (let i = 0; i < FEATURE_DIM; i++) weights[i] = codes[i]! * model.scale;
  // levels[code & 255] is exactly weights[i] (the float32 of code * scale) for every bucket with that code.
  const levels = new Float64Array(256);
  for (let code = -128; code < 128; code++) levels[code & 255] = Math.fround(code * model.scale);
  return { weights, buckets: { codes, levels }, bias: model.bias, shift: model.shift };
}

/**
 * Texts up to WHOLE characters are scored in one pass (a 4 KB prompt stays
 * within its latency budget); longer ones in overlapping windows of WINDOW,
 * so one paragraph of instructions inside a long document is not diluted.
 */
export const WHOLE = 4096;
export const WINDOW = 2048;
const STRIDE = WINDOW / 2;

/** The logit of the text as one bag of features, however long. */
export function logitOf(model: LoadedModel, text: string): number {
  return linearScore(text, model.buckets, model.bias);
}

/** The highest logit over the text (whole, or its windows). */
export function injectionLogit(model: LoadedModel, text: string): number {
  if (text.length <= WHOLE) return logitOf(model, text);
  let best = -Infinity;
  for (let start = 0; start < text.length - STRIDE; start += STRIDE) best = Math.max(best, logitOf(model, text.slice(start, start + WINDOW)));
  return best;
}

/** 0..1, 0.5 at the logit chosen on the dev split. */
export function probabilityOf(model: LoadedModel, logit: number): number {
  return 1 / (1 + Math.exp(-(logit - model.shift)));
}

let shipped: LoadedModel | undefined;

/** The model shipped in the package, decoded on first use. */
export function shippedModel(): LoadedModel {
  shipped ??= loadModel(INJECTION_MODEL);
  return shipped;
}
