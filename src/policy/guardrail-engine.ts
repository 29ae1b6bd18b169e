// The guardrails policy, compiled once at start-up: scanners restricted to
// the entity types the rules actually use (fewer detectors is faster, and a
// shorter longest-entity means less streamed text held back), plus the
// per-request decisions. Pure: no I/O.
import { scoreInjection } from '../detect/injection/index.js';
import { createScanner, type Scanner } from '../detect/scanner.js';
import { BUILTIN_ENTITY_TYPES, categoryOf, NLP_ENTITY_TYPES, type EntityType } from '../detect/types.js';
import type { Principal } from '../identity/principal.js';
import type { MaskingSession } from '../mask/session.js';
import type { SpanRules } from '../mask/types.js';
import type { ModelRequest } from '../protocol/types.js';
import { createMaskingSession, evaluateInput, outputRulesFor, scannerOptionsFor, type InputEvaluation } from './guardrails.js';
import type { GuardrailsPolicy, Selector } from './guardrails-schema.js';

export class GuardrailEngine {
  private readonly inputScanner: Scanner | undefined;
  /** Undefined when no output rule exists: responses then pass through untouched. */
  readonly outputScanner: Scanner | undefined;

  constructor(readonly policy: GuardrailsPolicy) {
    const options = scannerOptionsFor(policy);
    const inputSelectors = policy.input.flatMap((rule) => rule.detect);
    const outputSelectors = policy.output.flatMap((rule) => [...(rule.mask?.types ?? []), ...(rule.end_stream_on ?? [])]);
    this.inputScanner = inputSelectors.some((s) => s.kind !== 'injection') ? createScanner({ ...options, types: builtinTypesFor(inputSelectors) }) : undefined;
    this.outputScanner = outputSelectors.length > 0 ? createScanner({ ...options, types: builtinTypesFor(outputSelectors) }) : undefined;
  }

  /** A masking session shared by a request's prompt and its response, so placeholders agree. */
  newSession(): MaskingSession {
    return createMaskingSession(this.policy);
  }

  inspect(principal: Principal, connection: string, request: ModelRequest, session: MaskingSession): InputEvaluation {
    const scanner = this.inputScanner;
    return evaluateInput(
      this.policy,
      { principal, connection, request },
      { scan: (text) => (scanner ? scanner.scan(text) : []), scoreInjection },
      session,
    );
  }

  outputRules(principal: Principal, connection: string): SpanRules | undefined {
    return this.outputScanner ? outputRulesFor(this.policy, { principal, connection }) : undefined;
  }
}

/** The built-in entity types a set of selectors can pick; dictionaries and custom patterns are configured separately. */
function builtinTypesFor(selectors: readonly Selector[]): EntityType[] {
  const types = new Set<EntityType>();
  for (const selector of selectors) {
    switch (selector.kind) {
      case 'type':
        // PERSON, LOCATION and ADDRESS only when named: a `pii` category does not turn them on.
        if (BUILTIN_ENTITY_TYPES.includes(selector.type) || NLP_ENTITY_TYPES.includes(selector.type)) types.add(selector.type);
        break;
      case 'category':
        for (const type of BUILTIN_ENTITY_TYPES) if (categoryOf(type) === selector.category) types.add(type);
        break;
      case 'rule':
        // A built-in rule id (e.g. secret.github_pat): keep its whole family.
        for (const type of BUILTIN_ENTITY_TYPES) if (selector.rule.startsWith(`${categoryOf(type)}.`)) types.add(type);
        break;
      case 'injection':
        break;
    }
  }
  return [...types];
}
