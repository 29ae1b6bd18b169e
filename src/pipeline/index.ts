// The data path, top to bottom. Each stage is a small module; this file is
// the table of contents. A stage either returns what the next one needs or
// throws a GatewayError that names the refusal. Nothing reaches a model
// unless every stage before `forward` has passed.
//
//   authenticate → read body → parse → authorise → limit → record (start)
//     → inspect → approve → record (durable) → strip output bypass → forward
//     → relay (masked, recorded, metered) → record (end), limits settled with real usage
//
// Approve holds a high-risk prompt until a person decides; output masking
// and recording are transforms over relay's frame stream. When tracing is
// on, each stage runs in its own span (`stage`).
import { readJsonBody } from '../http/read-json-body.js';
import { sendJson } from '../http/send.js';
import type { Endpoint } from '../protocol/endpoints.js';
import { parseModelRequest } from '../protocol/parse-request.js';
import { authenticate } from './authenticate.js';
import { holdForApproval } from './approve.js';
import { allowedRoutes, authorise } from './authorise.js';
import type { RequestContext } from './context.js';
import { forward } from './forward.js';
import { inspect } from './inspect.js';
import { limit } from './limit.js';
import { makeDurable, startRecording } from './record.js';
import { relay, stripOutputBypass } from './relay.js';
import type { GatewayServices } from './services.js';
import { retryHintForUpstreamStatus } from '../http/retry-hint.js';

/** A model call: chat, completion, embedding, response, or their Ollama forms. */
export async function handleModelCall(services: GatewayServices, ctx: RequestContext, endpoint: Endpoint, path: string): Promise<void> {
  const stage = <T>(name: string, run: () => Promise<T> | T): Promise<T> | T => (ctx.trace ? ctx.trace.stage(name, run) : run());
  ctx.principal = await stage('authenticate', () => authenticate(services, ctx, { serviceKeys: true }));
  const body = await readJsonBody(ctx.req, services.config.server.max_body_bytes, {
    lenientContentType: endpoint.dialect === 'ollama',
    maxDepth: services.config.server.max_json_depth,
  });
  ctx.request = parseModelRequest(endpoint.operation, body);
  ctx.route = await stage('authorise', () => authorise(services, ctx));
  await stage('limit', () => limit(services, ctx));
  startRecording(services, ctx, body);
  await stage('inspect', () => inspect(services, ctx));
  await stage('approve', () => holdForApproval(services, ctx));
  stripOutputBypass(services, ctx);
  await makeDurable(ctx);
  const upstream = await forward(services, ctx, path);
  const retryHint = retryHintForUpstreamStatus(upstream.status);
  if (retryHint) ctx.res.setHeader('x-should-retry', retryHint);
  await stage('relay', () => relay(services, ctx, upstream));
}

/** GET /v1/models (OpenAI) or GET /api/tags (Ollama): only what the caller may use. */
export async function handleListModels(services: GatewayServices, ctx: RequestContext, dialect: 'openai' | 'ollama'): Promise<void> {
  ctx.principal = await authenticate(services, ctx, { serviceKeys: true });
  const routes = await allowedRoutes(services, ctx.principal);
  if (dialect === 'ollama') {
    const models = routes
      .filter((r) => r.connection.kind === 'ollama')
      .map((r) => ({ name: r.model, model: r.model, modified_at: new Date(0).toISOString(), details: { connection: r.connection.name } }));
    sendJson(ctx.res, 200, { models });
    return;
  }
  sendJson(ctx.res, 200, {
    object: 'list',
    data: routes.map((r) => ({ id: r.model, object: 'model', created: 0, owned_by: r.connection.name })),
  });
}
