import type { Detector } from '../detector.js';
import { createCardContextDetector } from './card-context.js';
import { createCreditCardDetector } from './credit-card.js';
import { createDateOfBirthDetectors } from './date-of-birth.js';
import { createEmailDetector } from './email.js';
import { createIbanDetector } from './iban.js';
import { createIpAddressDetector } from './ip-address.js';
import { createNationalIdDetectors } from './national-id.js';
import { createMrzDetector } from './passport.js';
import { createPhoneDetector } from './phone.js';
import { createUsSsnDetector } from './us-ssn.js';
import { createAddressDetector } from './address.js';
import { createNamesDetector } from './names.js';

export function createPiiDetectors(): Detector[] {
  return [
    createEmailDetector(),
    createPhoneDetector(),
    createCreditCardDetector(),
    createCardContextDetector(),
    createUsSsnDetector(),
    createIbanDetector(),
    createIpAddressDetector(),
    ...createDateOfBirthDetectors(),
    createMrzDetector(),
    ...createNationalIdDetectors(),
    // Opt-in types (NLP_ENTITY_TYPES): they run only when a scanner asks for them.
    createNamesDetector(),
    createAddressDetector(),
  ];
}
