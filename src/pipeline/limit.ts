// Stage: usage limits and budgets. Before anything is forwarded, the call is
// admitted against every limit that applies to the caller, the connection
// and the model (requests, tokens as prompt estimate + max_tokens,
// concurrency, the group's monthly budget), or refused with 429 naming the
// limit (and recorded, metadata only, as a refused session naming the limit).
// Every admitted response carries the remaining-quota headers.
//
// When the call ends (`settleUsage`), what it really used, read by the usage
// meter, replaces the reservations, frees its concurrency slots, and is
// counted in metrics and kept for the session record and the access log.
import { generatesText, needsUsageRequested, requestedMaxTokens, UsageMeter } from '../usage/meter.js';
import { Grant, LimitRefusal } from '../usage/limiter.js';
import type { RequestContext } from './context.js';
import { startRecording } from './record.js';
import type { GatewayServices } from './services.js';

export async function limit(services: GatewayServices, ctx: RequestContext): Promise<void> {
  const { principal, route, request } = ctx;
  if (!principal || !route || !request) throw new Error('limit() runs after authorise');
  ctx.usage = new UsageMeter(request, { stripUsage: needsUsageRequested(request) });
  const limiter = services.limiter;
  if (!limiter.active) return;
  const maxTokens = generatesText(request.operation) ? (requestedMaxTokens(request) ?? limiter.config.default_max_tokens) : 0;
  let grant: Grant;
  try {
    // In memory the decision is made at once; only a shared store (Redis) is waited for.
    const decided = limiter.decide({
      principal,
      connection: route.connection.name,
      model: route.model,
      requestId: ctx.id,
      promptEstimate: ctx.usage.promptEstimate,
      maxTokens,
    });
    grant = decided instanceof Grant ? decided : await decided;
  } catch (err) {
    // Recorded like every refusal (the session ends `refused`, naming the limit), but as metadata only:
    // a flood of refused calls costs no inspection and stores no prompts.
    if (err instanceof LimitRefusal) {
      startRecording(services, ctx, undefined, { bodies: false });
      ctx.recording?.limit({ outcome: 'refused', code: err.code, ...err.refusedBy });
    }
    throw err;
  }
  ctx.limits = grant;
  for (const [name, value] of Object.entries(grant.headers)) ctx.res.setHeader(name, value);
}

/** When the call has ended: usage into metrics and the context, limits settled. Never throws. */
export function settleUsage(services: GatewayServices, ctx: RequestContext, outcome: string, seconds: number): void {
  const route = ctx.route;
  // Nothing reached a model: nothing was used, and any reservation is returned.
  const usage = ctx.upstreamTarget && ctx.usage ? ctx.usage.result() : undefined;
  ctx.usageResult = usage;
  const cost = usage && route ? services.limiter.costs.cost(route.model, usage.prompt_tokens, usage.completion_tokens, seconds) : 0;
  if (usage && route && ctx.principal) {
    const { tokens, cost: costMetric } = services.metrics;
    const subjectLabel = services.config.usage.metrics_subject_label ? { subject: ctx.principal.subject } : {};
    const estimated = String(usage.estimated);
    for (const group of ctx.principal.groups.length > 0 ? ctx.principal.groups : ['']) {
      const labels = { connection: route.connection.name, model: route.model, group, outcome, estimated, ...subjectLabel };
      tokens.inc({ ...labels, type: 'prompt' }, usage.prompt_tokens);
      tokens.inc({ ...labels, type: 'completion' }, usage.completion_tokens);
      if (cost > 0) costMetric.inc({ connection: route.connection.name, model: route.model, group }, cost);
    }
  }
  try {
    ctx.limits?.settle(usage, cost)?.catch((err: unknown) => ctx.log.warn({ err: (err as Error).message }, 'limit counters not settled'));
  } catch (err) {
    ctx.log.warn({ err: (err as Error).message }, 'limit counters not settled');
  }
}

