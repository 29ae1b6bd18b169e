// Federated workload identity: a CI system's OIDC token (GitHub Actions,
// GitLab) is trusted only when its claims meet every condition of one of
// the issuer's bindings, and then acts as that binding's service identity.
import type { WorkloadBinding } from '../config/identity-schema.js';
import { readClaim } from './claims.js';
import { invalidToken } from './errors.js';

/** The first binding whose conditions all hold. Claim values are compared exactly, as strings. */
export function matchWorkloadBinding(claims: Record<string, unknown>, bindings: readonly WorkloadBinding[]): WorkloadBinding | undefined {
  return bindings.find((binding) =>
    Object.entries(binding.conditions).every(([claim, allowed]) => {
      const value = readClaim(claims, claim);
      return typeof value === 'string' && allowed.includes(value);
    }),
  );
}

export function workloadNotBound(issuer: string, claims: Record<string, unknown>, bindings: readonly WorkloadBinding[]): Error {
  const names = [...new Set(bindings.flatMap((b) => Object.keys(b.conditions)))];
  const seen = names.map((name) => `${name}=${JSON.stringify(readClaim(claims, name) ?? null)}`).join(', ');
  return invalidToken(
    'token_workload_not_bound',
    `No workload binding of ${issuer} matches this token (${seen}). Ask an administrator to bind this pipeline to a service identity.`,
  );
}
