import type { Detector } from '../detector.js';
import { createCreditCardDetector } from './credit-card.js';
import { createDateOfBirthDetectors } from './date-of-birth.js';
import { createEmailDetector } from './email.js';
import { createIbanDetector } from './iban.js';
import { createIpAddressDetector } from './ip-address.js';
import { createNationalIdDetectors } from './national-id.js';
import { createMrzDetector } from './passport.js';
import { createPhoneDetector } from './phone.js';
import { createUsSsnDetector } from './us-ssn.js';

export function createPiiDetectors(): Detector[] {
  return [
    createEmailDetector(),
    createPhoneDetector(),
    createCreditCardDetector(),
    createUsSsnDetector(),
    createIbanDetector(),
    createIpAddressDetector(),
    ...createDateOfBirthDetectors(),
    createMrzDetector(),
    ...createNationalIdDetectors(),
  ];
}
