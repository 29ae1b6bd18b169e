// Stage: send the (possibly rewritten) request to the connection's model
// server. Headers are built from scratch: nothing the client sent reaches
// the upstream except the body, so the client's Authorization (and any
// smuggled hop-by-hop header) never does. The gateway injects the
// connection's own credential instead.
import type { ConnectionConfig } from '../config/schema.js';
import { neverReachedUpstream } from '../proxy/direct-transport.js';
import type { UpstreamResponse } from '../proxy/transport.js';
import { withUsageRequested } from '../usage/meter.js';
import type { RequestContext } from './context.js';
import type { GatewayServices } from './services.js';

export async function forward(services: GatewayServices, ctx: RequestContext, path: string): Promise<UpstreamResponse> {
  const { request, route } = ctx;
  if (!request || !route) throw new Error('forward() runs after parse and authorise');

  const body = { ...forwardedBody(ctx), model: route.upstreamModel };
  const accept = request.stream ? (request.framing === 'sse' ? 'text/event-stream' : 'application/x-ndjson') : 'application/json';
  const headers = await upstreamHeaders(services, ctx, route.connection, accept);
  headers['content-type'] = 'application/json';

  ctx.trace?.startUpstream(request, route.model, route.connection.name);
  services.tracing.propagate(ctx.trace, ctx.req.headers, headers);

  const transport = services.transports.get(route.connection.name)!;
  ctx.upstreamMayHavePrompt = true;
  try {
    const upstream = await transport.send({ method: 'POST', path, headers, body: JSON.stringify(body), signal: ctx.abort.signal });
    ctx.trace?.upstreamAnswered(upstream.status);
    return upstream;
  } catch (err) {
    if (neverReachedUpstream(err)) ctx.upstreamMayHavePrompt = false;
    services.metrics.upstreamErrors.inc({ connection: route.connection.name, reason: (err as { code?: string }).code ?? 'error' });
    throw err;
  }
}

/**
 * The body as it goes upstream: the prompt as inspection left it, and, for an
 * OpenAI stream whose client did not ask for usage, `include_usage` so the
 * gateway can count tokens (the meter removes the extra usage again).
 */
export function forwardedBody(ctx: RequestContext): Record<string, unknown> {
  const body = ctx.forwardBody ?? ctx.request!.body;
  return ctx.usage?.stripsUsage ? withUsageRequested(body) : body;
}

/** The headers every upstream call carries: the connection's credential and identity assertion, never the client's. */
export async function upstreamHeaders(services: GatewayServices, ctx: RequestContext, connection: ConnectionConfig, accept: string): Promise<Record<string, string>> {
  const headers: Record<string, string> = { accept, 'x-request-id': ctx.id, 'user-agent': 'modelgate' };
  const credential = connection.credential;
  if (credential) headers[credential.header.toLowerCase()] = credential.value;
  const assertion = await services.identity.upstreamAssertion(ctx.principal!, connection, ctx.id);
  if (assertion) headers[assertion[0]] = assertion[1];
  return headers;
}
