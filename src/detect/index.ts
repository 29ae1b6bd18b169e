// Public surface of the detection layer.
export { createScanner, type Scanner, type ScannerOptions, type CustomPatternSpec } from './scanner.js';
export { CustomPatternError } from './custom.js';
export { BUILTIN_ENTITY_TYPES, categoryOf, type EntityCategory, type EntityType, type Span } from './types.js';
export {
  INJECTION_THRESHOLD,
  isInjection,
  scoreInjection,
  type InjectionCategory,
  type InjectionScore,
  type InjectionSignal,
} from './injection/index.js';
