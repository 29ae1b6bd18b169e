// A secret shape in the gitleaks manner: keywords gate it, a pattern finds
// it, then entropy and an optional validator (checksum, decoding) decide.
import type { EntityType } from '../types.js';
import { clampConfidence, forEachMatch, NON_WHITESPACE, type Detector, type ReportSpan } from '../detector.js';
import { shannonEntropy } from '../text.js';

export interface TokenCheck {
  confidence: number;
  validator: string;
}

export interface TokenRule {
  rule: string;
  type: EntityType;
  keywords: readonly string[];
  /** Global regex. With the `d` flag and a group named `secret`, only that group is the span. */
  pattern: RegExp;
  maxLength: number;
  lookbehind?: number;
  lookahead?: number;
  confidence: number;
  validator: string;
  /** Bits per character over the random part (the secret without `prefixLength` characters). */
  minEntropy?: number;
  prefixLength?: number;
  /** Returns a better verdict, or false to drop the candidate. */
  check?: (secret: string, text: string, start: number) => TokenCheck | false | undefined;
}

const PLACEHOLDER = /x{6,}|X{6,}|\*{4,}|0{10,}|(.)\1{7,}|example|sample|placeholder|dummy|your[_-]?(?:api[_-]?)?(?:key|token|secret)|redacted|changeme/i;

export function looksLikePlaceholder(value: string): boolean {
  return PLACEHOLDER.test(value);
}

export function createTokenDetector(rule: TokenRule): Detector {
  return {
    id: rule.rule,
    types: [rule.type],
    keywords: rule.keywords,
    spanChars: NON_WHITESPACE,
    maxLength: rule.maxLength,
    lookbehind: rule.lookbehind ?? 1,
    lookahead: rule.lookahead ?? 1,
    detect(text: string, report: ReportSpan): void {
      forEachMatch(rule.pattern, text, (m) => {
        const group = m.indices?.groups?.['secret'];
        const [start, end] = group ?? [m.index, m.index + m[0].length];
        if (end - start > rule.maxLength) return;
        const secret = text.slice(start, end);
        const random = secret.slice(rule.prefixLength ?? 0);
        if (looksLikePlaceholder(random)) return;
        if (rule.minEntropy !== undefined && shannonEntropy(random) < rule.minEntropy) return;
        let confidence = rule.confidence;
        let validator = rule.validator;
        const verdict = rule.check?.(secret, text, start);
        if (verdict === false) return;
        if (verdict !== undefined) ({ confidence, validator } = verdict);
        report({ type: rule.type, start, end, confidence: clampConfidence(confidence), rule: rule.rule, validator });
      });
    },
  };
}
