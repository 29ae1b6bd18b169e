// Stage: guardrails on the prompt. Limits, detectors and injection
// heuristics decide to block, mask, flag or ask for approval; every
// decision is kept for the record, and a refusal names its rule. Fields the
// protocol does not document are inspected like any text, or dropped first
// when the connection says so.
import { decidingDecision, guardrailError } from '../policy/guardrails.js';
import { withoutUnknownParams } from '../protocol/request-fields.js';
import type { RequestContext } from './context.js';
import { recordDecisions } from './record.js';
import type { GatewayServices } from './services.js';

export function inspect(services: GatewayServices, ctx: RequestContext): void {
  const { principal, route } = ctx;
  if (!principal || !route || !ctx.request) throw new Error('inspect() runs after authorise');
  if (route.connection.unknown_fields === 'drop') ctx.request = withoutUnknownParams(ctx.request);
  const request = ctx.request;
  const engine = services.guardrails;
  ctx.masking = engine.newSession();
  const evaluation = engine.inspect(principal, route.connection.name, request, ctx.masking);
  ctx.decisions.push(...evaluation.decisions);
  recordDecisions(ctx, evaluation.decisions, 'input');
  for (const decision of evaluation.decisions) services.metrics.guardrailDecisions.inc({ rule: decision.rule, action: decision.action });

  const refusal = guardrailError(evaluation);
  if (refusal) throw refusal;
  if (evaluation.action === 'require_approval') {
    ctx.approvalNeed = {
      decision: decidingDecision(evaluation)!,
      reasons: evaluation.decisions.filter((d) => d.action === 'require_approval').map((d) => `${d.rule}: ${d.reason}`),
      reviewBody: evaluation.reviewBody,
    };
  }
  if (evaluation.maskedBody) ctx.forwardBody = evaluation.maskedBody;
}
