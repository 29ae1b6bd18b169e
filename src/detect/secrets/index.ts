import type { Detector } from '../detector.js';
import { createAwsSecretKeyDetector } from './aws.js';
import { createGenericSecretDetectors } from './generic.js';
import { createJwtDetector } from './jwt.js';
import { createPrivateKeyDetector } from './private-key.js';
import { PROVIDER_RULES } from './providers.js';
import { createTokenDetector } from './token-rule.js';

export function createSecretDetectors(): Detector[] {
  return [
    ...PROVIDER_RULES.map(createTokenDetector),
    createAwsSecretKeyDetector(),
    createJwtDetector(),
    createPrivateKeyDetector(),
    ...createGenericSecretDetectors(),
  ];
}
