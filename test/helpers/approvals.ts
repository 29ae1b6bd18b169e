// The approval rules the approvals tests share. The dev configuration
// already holds prompts naming "nightingale" for one approver; this adds a
// rule that needs two.
import type { ConfigInput } from '../../src/config/schema.js';

type Guardrails = NonNullable<ConfigInput['guardrails']>;

/** The dev guardrails plus `two-person-rule`: prompts mentioning "merger" need two approvers. */
export function withTwoPersonRule(guardrails: ConfigInput['guardrails']): Guardrails {
  const base = (guardrails ?? {}) as Guardrails;
  return {
    ...base,
    dictionaries: [...(base.dictionaries ?? []), { name: 'crown_jewels', terms: ['merger'] }],
    input: [...(base.input ?? []), { name: 'two-person-rule', detect: ['dictionary.crown_jewels'], action: 'require_approval', approvers: ['approvers'], required_approvals: 2 }],
  };
}
