// Stage: guardrails on the prompt. Limits, detectors and injection
// heuristics decide to block, mask, flag or ask for approval; every
// decision is kept for the record, and a refusal names its rule.
import { GatewayError } from '../http/errors.js';
import { decidingDecision, guardrailError } from '../policy/guardrails.js';
import type { RequestContext } from './context.js';
import { recordDecisions } from './record.js';
import type { GatewayServices } from './services.js';

export function inspect(services: GatewayServices, ctx: RequestContext): void {
  const { principal, route, request } = ctx;
  if (!principal || !route || !request) throw new Error('inspect() runs after authorise');
  const engine = services.guardrails;
  ctx.masking = engine.newSession();
  const evaluation = engine.inspect(principal, route.connection.name, request, ctx.masking);
  ctx.decisions.push(...evaluation.decisions);
  recordDecisions(ctx, evaluation.decisions, 'input');
  for (const decision of evaluation.decisions) services.metrics.guardrailDecisions.inc({ rule: decision.rule, action: decision.action });

  const refusal = guardrailError(evaluation);
  if (refusal) throw refusal;
  if (evaluation.action === 'require_approval') {
    // Fail closed until the approvals workflow exists on this gateway.
    const decision = decidingDecision(evaluation)!;
    throw new GatewayError(
      `Guardrail rule "${decision.rule}" requires a human approval for this prompt (${decision.reason}), and this gateway has no approval workflow enabled; the request was not forwarded.`,
      { status: 403, type: 'permission_error', code: 'approval_required' },
    );
  }
  if (evaluation.maskedBody) ctx.forwardBody = evaluation.maskedBody;
}
