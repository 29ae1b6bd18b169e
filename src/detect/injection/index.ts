export { INJECTION_THRESHOLD, isInjection, scoreInjection, type InjectionScore, type InjectionSignal } from './score.js';
export { INJECTION_RULES, type InjectionCategory, type InjectionRule } from './rules.js';
export { findEncodedBlobs, type EncodedBlob } from './decode.js';
