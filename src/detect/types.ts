// What every detector reports. Detectors are pure: text in, spans out; no
// I/O, no clock, no globals, so they are fast to test and safe to run on
// every request and every streamed chunk.

/** Entity types use the names of the shared evaluation corpus where one exists. */
export type EntityType =
  // PII
  | 'EMAIL'
  | 'PHONE'
  | 'CREDIT_CARD'
  | 'US_SSN'
  | 'IBAN'
  | 'IP_ADDRESS'
  | 'DATE_OF_BIRTH'
  | 'PASSPORT'
  | 'NATIONAL_ID'
  | 'PERSON'
  | 'LOCATION'
  | 'ADDRESS'
  // Secrets
  | 'AWS_ACCESS_KEY'
  | 'AWS_SECRET_KEY'
  | 'GITHUB_TOKEN'
  | 'GITLAB_TOKEN'
  | 'SLACK_TOKEN'
  | 'STRIPE_KEY'
  | 'OPENAI_KEY'
  | 'ANTHROPIC_KEY'
  | 'GOOGLE_API_KEY'
  | 'AZURE_KEY'
  | 'JWT'
  | 'PRIVATE_KEY'
  | 'GENERIC_SECRET'
  // Configured by the operator
  | 'DICTIONARY'
  | 'CUSTOM';

export type EntityCategory = 'pii' | 'secret' | 'dictionary' | 'custom';

export interface Span {
  type: EntityType;
  /** UTF-16 code-unit offsets into the scanned text: `text.slice(start, end)` is the entity. */
  start: number;
  end: number;
  /** 0..1: how sure the detector is (validator passed, context words present, entropy...). */
  confidence: number;
  /** Which rule produced it, e.g. `pii.credit_card`, `secret.github_pat`, `dictionary.codenames`, `custom.ticket_id`. */
  rule: string;
  /** The check that confirmed the candidate, e.g. `luhn`, `mod97`, `ssn-area-group-serial`, `entropy`, `libphonenumber`. */
  validator?: string;
}

/** Types reported by the built-in detectors (dictionaries and custom patterns are configured separately). */
export const BUILTIN_ENTITY_TYPES: readonly EntityType[] = [
  'EMAIL', 'PHONE', 'CREDIT_CARD', 'US_SSN', 'IBAN', 'IP_ADDRESS', 'DATE_OF_BIRTH', 'PASSPORT', 'NATIONAL_ID',
  'AWS_ACCESS_KEY', 'AWS_SECRET_KEY', 'GITHUB_TOKEN', 'GITLAB_TOKEN', 'SLACK_TOKEN', 'STRIPE_KEY', 'OPENAI_KEY',
  'ANTHROPIC_KEY', 'GOOGLE_API_KEY', 'AZURE_KEY', 'JWT', 'PRIVATE_KEY', 'GENERIC_SECRET',
];

/**
 * Names, places and street addresses: built in, but never in a default set,
 * since they are slower and less precise than the validated types (figures in
 * eval/README.md). A scanner or policy rule names them to turn them on.
 */
export const NLP_ENTITY_TYPES: readonly EntityType[] = ['PERSON', 'LOCATION', 'ADDRESS'];

const PII_TYPES: ReadonlySet<EntityType> = new Set<EntityType>([
  'EMAIL', 'PHONE', 'CREDIT_CARD', 'US_SSN', 'IBAN', 'IP_ADDRESS', 'DATE_OF_BIRTH', 'PASSPORT', 'NATIONAL_ID', ...NLP_ENTITY_TYPES,
]);

export function categoryOf(type: EntityType): EntityCategory {
  if (type === 'DICTIONARY') return 'dictionary';
  if (type === 'CUSTOM') return 'custom';
  return PII_TYPES.has(type) ? 'pii' : 'secret';
}
