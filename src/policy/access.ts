// Who may use which connection and model. Pure: identity and rules in,
// decision out. Deny by default: with no matching rule, nothing is allowed.
import type { AccessRule } from '../config/schema.js';
import { personIssuer, type Principal } from '../identity/principal.js';

export interface AccessDecision {
  allowed: boolean;
  /** Index of the rule that allowed access, for the audit record. */
  ruleIndex?: number;
}

export function decideAccess(
  rules: readonly AccessRule[],
  principal: Pick<Principal, 'subject' | 'groups' | 'issuer' | 'origin'>,
  connection: string,
  model: string,
): AccessDecision {
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    if (appliesTo(rule, principal) && matches(rule.connections, connection) && matches(rule.models, model)) {
      return { allowed: true, ruleIndex: i };
    }
  }
  return { allowed: false };
}

function appliesTo(rule: AccessRule, principal: Pick<Principal, 'subject' | 'groups' | 'issuer' | 'origin'>): boolean {
  return (rule.subjects.includes(principal.subject) && fromIssuer(rule, principal)) || rule.groups.some((g) => principal.groups.includes(g));
}

/**
 * A subject means something only at its issuer (access rules and limit rules alike). A person's issuer is the IdP that authenticated them (a
 * gateway token's `idp`). Without `issuer` the configuration has one source of identities (checked at start-up).
 */
export function fromIssuer(rule: { issuer?: string | undefined }, principal: Pick<Principal, 'issuer' | 'origin'>): boolean {
  return rule.issuer === undefined || rule.issuer === personIssuer(principal);
}

function matches(patterns: readonly string[], name: string): boolean {
  return patterns.includes('*') || patterns.includes(name);
}

/** The groups whose members the rules let use this model, so a refusal can name what the caller lacks. */
export function groupsGranting(rules: readonly AccessRule[], connection: string, model: string): string[] {
  const groups = rules.filter((r) => matches(r.connections, connection) && matches(r.models, model)).flatMap((r) => r.groups);
  return [...new Set(groups)];
}
