// Scores text for prompt injection and jailbreak attempts with explainable
// signals: the learned classifier's probability (classifier.ts) and each rule
// that matches (rules.ts). Signals combine as independent evidence (noisy-OR:
// 1 - Π(1 - weight)), so one strong move ("ignore all previous instructions")
// or a confident classifier crosses the threshold alone, while weak hints
// ("just say", a persona name, a hesitant classifier) need company.
import { injectionLogit, probabilityOf, shippedModel, type LoadedModel } from './classifier.js';
import { addressesModel, speaksToModel } from './cues.js';
import { findEncodedBlobs } from './decode.js';
import { INJECTION_RULES, type InjectionCategory } from './rules.js';

/**
 * Default decision threshold. Every rule weighted 0.5 or more is, alone, a
 * clear attack move; weaker hints need a second signal. The classifier's
 * probability is 0.5 at the logit the training script chose on the dev split
 * (injection_dev.jsonl, never trained on) for a false-positive rate of at most
 * 2% of the combined score: see MODEL.md.
 */
export const INJECTION_THRESHOLD = 0.5;

/** The classifier's signal is listed (and counted) from this probability up. */
const CLASSIFIER_FLOOR = 0.01;
/** Fewer words than this are no evidence for a bag of n-grams ("hi", "key?"): only the rules judge them. */
const CLASSIFIER_MIN_WORDS = 3;
/**
 * Up to this many characters, the classifier judges a text only if a rule
 * matched or it shows a sign of speaking to a model (cues.ts): on a few words
 * its n-grams only say which topics the training attacks were about ("What
 * is the capital of France?" scored 0.57, "Write a haiku about autumn
 * leaves." 0.79). Characters, not words, so scripts written without spaces
 * are measured alike. Chosen by leave-one-source-out validation (MODEL.md):
 * 50 characters moves nothing there beyond noise (held-out TPR 0.755 → 0.755,
 * FPR 0.120 → 0.115; ordinary sentences 0.032 → 0.003); 8 words gave
 * 0.749 / 0.117, 80 characters 0.747 / 0.114.
 */
export const SHORT_TEXT_CHARS = 50;
const WORDS = /[\p{L}\p{N}]+/gu;

function hasWords(text: string, n: number): boolean {
  WORDS.lastIndex = 0;
  for (let seen = 0; seen < n; seen++) if (WORDS.exec(text) === null) return false;
  return true;
}

/**
 * Whether the learned classifier may judge a text, given whether any rule
 * matched it; shared with the training script so the shift is calibrated on
 * the same decisions the gateway makes.
 */
export function classifierJudges(text: string, ruleMatched: boolean): boolean {
  if (!hasWords(text, CLASSIFIER_MIN_WORDS)) return false;
  return ruleMatched || text.trim().length > SHORT_TEXT_CHARS || speaksToModel(foldForCues(text));
}

// NFKC only where there is something to fold (ASCII is its own NFKC form): half the cost of the cue check on 4 KB of ASCII.
const foldForCues = (text: string): string => (NON_ASCII.test(text) ? text.normalize('NFKC') : text).toLowerCase();
const NON_ASCII = /[^\x00-\x7F]/;

/**
 * How far the classifier's logit is lowered, before calibration, on a text
 * that no rule matched and that does not address the model (cues.ts,
 * `addressesModel`): such a text is flagged only when the classifier is very
 * sure, since what it then reacts to is topic words (passwords, admin,
 * system prompts, "ignore") rather than the act of an injection.
 */
export const UNADDRESSED_PENALTY = 0.5;

/**
 * What is subtracted from the classifier's logit for a text: 0 when it
 * addresses the model, `penalty` when not, Infinity when the classifier does
 * not judge it at all (classifierJudges). Shared with the training script so
 * the shift is calibrated on the same decisions.
 */
export function classifierDiscount(text: string, ruleMatched: boolean, penalty: number = UNADDRESSED_PENALTY): number {
  if (!classifierJudges(text, ruleMatched)) return Infinity;
  if (penalty === 0) return 0;
  // Attack text quoted while discussing attacks ("is this a prompt injection: '…'") addresses no one: its rules and cues do not count.
  const discussed = ABOUT_ATTACKS.test(text) ? text.replace(QUOTED, ' ') : text;
  // A rule that matched does not lift it by itself: the discount matters only when the rules alone stay under the
  // threshold, i.e. when only weak hints matched ("enable developer mode" is also how Android and Chrome say it).
  return addressesModel(foldForCues(discussed)) ? 0 : penalty;
}

export interface InjectionSignal {
  rule: string;
  category: InjectionCategory | 'learned';
  reason: string;
  /** UTF-16 offsets of the evidence in the scored text. */
  start: number;
  end: number;
  weight: number;
}

export interface InjectionScore {
  /** 0..1. */
  score: number;
  signals: InjectionSignal[];
}

const MAX_DECODE_DEPTH = 2;

// Framing that signals the text is about attacks rather than an attack: applied only to quoted evidence.
const DISCUSSION = /\b(?:what\s+(?:is|are|does)|explain|for\s+example|an?\s+example\s+of|examples\s+of|how\s+(?:do|to|can|should)\s+(?:i\s+|we\s+|you\s+)?(?:detect|defend|prevent|mitigate|protect|block|recogni[sz]e|spot|handle|filter)|is\s+(?:this|it)\s+(?:a\s+)?(?:prompt\s+injection|jailbreak|an?\s+attack)|prompt[\s-]+injections?|injection\s+attacks?|jailbreak\s+(?:attempts?|prompts?|attacks?)|classify|label|detect(?:ion|or)?|research|paper|dataset|red[- ]team|training\s+data|test\s+case)\b/i;
const QUOTED = /"[^"\n]{1,2000}"|“[^”\n]{1,2000}”|«[^»\n]{1,2000}»|`[^`\n]{1,2000}`|'[^'\n]{12,2000}'/g;
const QUOTED_DISCUSSION_FACTOR = 0.4;
// Narrower than DISCUSSION ("paper", "research" also frame documents handed over to be processed): a prompt about attacks.
const ABOUT_ATTACKS = /\b(?:prompt[\s-]+injections?|injection\s+attacks?|jailbreak(?:s|ing)?|attacks?|malicious|classify|red[- ]team(?:ing)?|detect(?:s|ed|ion|or)?|filter(?:s|ing)?|phishing|test\s+cases?)\b/i;

// Zero-width and other invisible characters attackers insert between letters.
const INVISIBLE = /[\u00AD\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\uFEFF]/;

/** A normalised copy for matching, with a map from its offsets back to the original text. */
function normalise(text: string): { text: string; ascii: boolean; origin: (index: number) => number } {
  if (!/[^\x00-\x7F]/.test(text)) return { text, ascii: true, origin: (i) => i };
  let out = '';
  const map: number[] = [];
  for (let i = 0; i < text.length;) {
    const point = text.codePointAt(i)!;
    const width = point > 0xffff ? 2 : 1;
    const ch = String.fromCodePoint(point);
    const folded = INVISIBLE.test(ch) ? '' : ch.normalize('NFKC');
    for (let k = 0; k < folded.length; k++) map.push(i);
    out += folded;
    i += width;
  }
  map.push(text.length);
  return { text: out, ascii: false, origin: (index) => map[index] ?? text.length };
}

function quotedRanges(text: string): Array<[number, number]> {
  return [...text.matchAll(QUOTED)].map((m) => [m.index, m.index + m[0].length]);
}

function combine(weights: readonly number[]): number {
  return 1 - weights.reduce((rest, w) => rest * (1 - w), 1);
}

function scoreAt(text: string, depth: number, model: LoadedModel | null): InjectionScore {
  const { text: normalised, ascii, origin } = normalise(text);
  const discussion = DISCUSSION.test(normalised);
  const quoted = discussion ? quotedRanges(normalised) : [];
  const best = new Map<string, InjectionSignal>();
  const quotedRules = new Set<string>();
  const add = (signal: InjectionSignal): void => {
    const current = best.get(signal.rule);
    if (current === undefined || current.weight < signal.weight) best.set(signal.rule, signal);
  };

  for (const rule of INJECTION_RULES) {
    if (ascii && rule.nonAscii === true) continue;
    rule.pattern.lastIndex = 0;
    const m = rule.pattern.exec(normalised);
    if (m === null) continue;
    const start = m.index;
    const end = start + m[0].length;
    const inQuotes = quoted.some(([qs, qe]) => start >= qs && end <= qe);
    if (inQuotes) quotedRules.add(rule.rule);
    add({
      rule: rule.rule,
      category: rule.category,
      reason: inQuotes ? `${rule.reason} (quoted while discussing attacks, so weighed less)` : rule.reason,
      start: origin(start),
      end: origin(end),
      weight: inQuotes ? rule.weight * QUOTED_DISCUSSION_FACTOR : rule.weight,
    });
  }

  const discount = model === null ? Infinity : classifierDiscount(text, best.size > 0);
  if (model !== null && discount !== Infinity) {
    const logit = injectionLogit(model, text) - discount;
    const probability = probabilityOf(model, logit);
    if (probability >= CLASSIFIER_FLOOR) {
      add({
        rule: 'classifier.ngram_logistic',
        category: 'learned',
        reason: `learned classifier gives ${probability.toFixed(2)} (logit ${logit.toFixed(2)}${discount === 0 ? '' : `, lowered by ${discount} as the text does not address the model`}; 0.5 at ${model.shift.toFixed(2)})`,
        start: 0,
        end: text.length,
        weight: Math.round(probability * 1000) / 1000,
      });
    }
  }

  if (depth < MAX_DECODE_DEPTH) {
    for (const blob of findEncodedBlobs(text)) {
      const inner = scoreAt(blob.decoded, depth + 1, model);
      if (inner.score < INJECTION_THRESHOLD) continue;
      const preview = blob.decoded.length > 80 ? `${blob.decoded.slice(0, 77)}...` : blob.decoded;
      add({
        rule: `encoded.${blob.encoding}_instructions`,
        category: 'encoded_payload',
        reason: `${blob.encoding} blob decodes to instructions scoring ${inner.score.toFixed(2)} (${inner.signals.map((s) => s.rule).join(', ')}): "${preview}"`,
        start: blob.start,
        end: blob.end,
        weight: Math.max(0.75, inner.score),
      });
    }
  }

  const signals = [...best.values()].sort((a, b) => a.start - b.start || b.weight - a.weight);
  // Rules matched inside one quoted example of an attack, while discussing attacks, are one piece of evidence: only the
  // strongest counts, so an example that happens to hit three rules does not weigh three times.
  const quotedWeights = signals.filter((s) => quotedRules.has(s.rule)).map((s) => s.weight);
  const counted = [...signals.filter((s) => !quotedRules.has(s.rule)).map((s) => s.weight), ...(quotedWeights.length > 0 ? [Math.max(...quotedWeights)] : [])];
  return { score: Math.round(combine(counted) * 1000) / 1000, signals };
}

/**
 * Scores a text: rules plus the shipped classifier. `model: null` scores with
 * the rules alone (to compare, or to calibrate the classifier beside them).
 */
export function scoreInjection(text: string, model: LoadedModel | null = shippedModel()): InjectionScore {
  return scoreAt(text, 0, model);
}

export function isInjection(text: string, threshold = INJECTION_THRESHOLD): boolean {
  return scoreInjection(text).score >= threshold;
}
