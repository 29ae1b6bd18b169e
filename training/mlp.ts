// A one-hidden-layer network over the classifier's hashed features, for
// leave-one-source-out comparison with the shipped logistic model
// (`npm run validate:injection -- --grid '[{"model":"mlp"}]'`). Not shipped:
// MODEL.md has its figures and why. Deterministic like the logistic fit
// (seeded initialisation and order, no threads).
//
// The 262,144 buckets are folded to 2^MLP.bits by their low bits (a coarser
// hashing, sign kept), so the first layer stays a few MB.
import type { FeatureVector } from '../src/detect/injection/features.js';
import { rng, rowWeights, type Row, type TrainingConfig } from './train-injection.js';

export const MLP = {
  hidden: 32,
  bits: 16,
  epochs: 6,
  learningRate: 0.1, // AdaGrad
  l2: 1e-4,
} as const;

export interface Mlp {
  /** First layer, bucket-major: w1[bucket * hidden + h]. */
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: number;
}

const MASK = (1 << MLP.bits) - 1;
const hidden = new Float32Array(MLP.hidden);

/** The network's logit; leaves the hidden activations in `hidden` for the backward pass. */
export function mlpLogit(m: Mlp, { index, value }: FeatureVector): number {
  const H = MLP.hidden;
  hidden.set(m.b1);
  for (let i = 0; i < index.length; i++) {
    const base = (index[i]! & MASK) * H;
    const v = value[i]!;
    for (let h = 0; h < H; h++) hidden[h]! += m.w1[base + h]! * v;
  }
  let z = m.b2;
  for (let h = 0; h < H; h++) {
    if (hidden[h]! < 0) hidden[h] = 0;
    z += hidden[h]! * m.w2[h]!;
  }
  return z;
}

/** Weighted log loss (the logistic model's row weights), AdaGrad on every layer, L2 on the weights. */
export function fitMlp(rows: readonly Row[], features: readonly FeatureVector[], config: TrainingConfig): Mlp {
  const H = MLP.hidden;
  const { learningRate: lr, l2 } = MLP;
  const random = rng(config.seed);
  const w1 = new Float32Array((MASK + 1) * H);
  const g1 = new Float32Array(w1.length).fill(1e-8);
  for (let i = 0; i < w1.length; i++) w1[i] = (random() - 0.5) * 0.02;
  const b1 = new Float32Array(H).fill(0.01);
  const gb1 = new Float32Array(H).fill(1e-8);
  const w2 = new Float32Array(H);
  for (let h = 0; h < H; h++) w2[h] = ((random() - 0.5) * 2) / Math.sqrt(H);
  const gw2 = new Float32Array(H).fill(1e-8);
  let gb2 = 1e-8;
  const m: Mlp = { w1, b1, w2, b2: 0 };
  const rowWeight = rowWeights(rows, config.groupPower, config.balanceLanguages);
  const order = rows.map((_, i) => i);
  const delta = new Float32Array(H);
  for (let epoch = 0; epoch < MLP.epochs; epoch++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (const k of order) {
      const f = features[k]!;
      const z = mlpLogit(m, f);
      const g = (1 / (1 + Math.exp(-z)) - (rows[k]!.label === 'injection' ? 1 : 0)) * rowWeight[k]!;
      for (let h = 0; h < H; h++) {
        delta[h] = hidden[h]! > 0 ? g * w2[h]! : 0;
        const gw = g * hidden[h]! + l2 * w2[h]!;
        gw2[h]! += gw * gw;
        w2[h]! -= (lr * gw) / Math.sqrt(gw2[h]!);
      }
      gb2 += g * g;
      m.b2 -= (lr * g) / Math.sqrt(gb2);
      for (let h = 0; h < H; h++) {
        const d = delta[h]!;
        gb1[h]! += d * d;
        b1[h]! -= (lr * d) / Math.sqrt(gb1[h]!);
      }
      for (let i = 0; i < f.index.length; i++) {
        const base = (f.index[i]! & MASK) * H;
        const v = f.value[i]!;
        for (let h = 0; h < H; h++) {
          const d = delta[h]!;
          if (d === 0) continue;
          const gg = d * v + l2 * w1[base + h]!;
          g1[base + h]! += gg * gg;
          w1[base + h]! -= (lr * gg) / Math.sqrt(g1[base + h]!);
        }
      }
    }
  }
  return m;
}
