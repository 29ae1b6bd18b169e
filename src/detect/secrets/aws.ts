// AWS secret access keys are 40 characters of base64 with no prefix, the same
// shape as many harmless strings (a git SHA is 40 hex characters), so they
// count only next to their name (`aws_secret_access_key = ...`,
// `"SecretAccessKey": "..."`) or right after an access key id.
import { clampConfidence, forEachMatch, NON_WHITESPACE, type Detector, type ReportSpan } from '../detector.js';
import { characterClassCount, shannonEntropy } from '../text.js';
import { looksLikePlaceholder } from './token-rule.js';

const NAMED = /(?:aws[\w .-]{0,24}?secret[\w .-]{0,16}?|secret[_ .-]?access[_ .-]?key)["']?\s*(?:[:=]|=>|:=)?\s*["']?(?<![A-Za-z0-9/+])(?<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])/dgi;
const AFTER_KEY_ID = /(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z2-7]{16}(?![A-Za-z0-9])[^A-Za-z0-9/+]{1,40}?(?<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])/dg;
const LOOKBEHIND = 64;

/** Random base64 of 40 characters: mixed classes, high entropy, and not just hex. */
export function awsSecretShape(value: string): boolean {
  return !/^[0-9a-f]{40}$/i.test(value) && characterClassCount(value) >= 3 && shannonEntropy(value) >= 4 && !looksLikePlaceholder(value);
}

export function createAwsSecretKeyDetector(): Detector {
  return {
    id: 'secret.aws_secret_access_key',
    types: ['AWS_SECRET_KEY'],
    keywords: ['aws', 'secret_access', 'secretaccess', 'secret-access', 'secret access', 'akia', 'asia'],
    spanChars: NON_WHITESPACE,
    maxLength: 40,
    lookbehind: LOOKBEHIND,
    lookahead: 1,
    detect(text: string, report: ReportSpan): void {
      const emit = (m: RegExpExecArray, confidence: number, validator: string): void => {
        const [start, end] = m.indices?.groups?.['secret'] ?? [0, 0];
        if (end - start !== 40 || !awsSecretShape(text.slice(start, end))) return;
        report({ type: 'AWS_SECRET_KEY', start, end, confidence: clampConfidence(confidence), rule: 'secret.aws_secret_access_key', validator });
      };
      forEachMatch(NAMED, text, (m) => emit(m, 0.9, 'key-name+entropy'));
      forEachMatch(AFTER_KEY_ID, text, (m) => emit(m, 0.85, 'key-id-pair+entropy'));
    },
  };
}
