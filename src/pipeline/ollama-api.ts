// The Ollama API calls that are not model calls: what a model is
// (/api/show), which models are loaded (/api/ps) and the API version
// (/api/version). Each is authenticated and answers only about models the
// caller may use, under the gateway's model names. Upstream answers are
// rebuilt from the fields the gateway knows, so a model server's file paths
// (`modelfile`) and anything new it adds never reach the client unread.
import { GatewayError } from '../http/errors.js';
import { readJsonBody } from '../http/read-json-body.js';
import { sendJson } from '../http/send.js';
import { isJsonObject } from '../protocol/body-path.js';
import type { ModelRoute } from '../proxy/model-routes.js';
import { authenticate } from './authenticate.js';
import { allowedRoutes, authoriseModel } from './authorise.js';
import type { RequestContext } from './context.js';
import { upstreamHeaders } from './forward.js';
import type { GatewayServices } from './services.js';

/** The Ollama release whose API the gateway serves; clients compare it to enable features. */
export const OLLAMA_API_VERSION = '0.6.8';
/** `/api/show` can carry a licence text and model metadata; more than this is not a description. */
const MAX_UPSTREAM_BODY_BYTES = 1024 * 1024;
/** `/api/show` fields passed on; `modelfile` is left out because it names the server's blob paths. */
const SHOW_FIELDS = ['license', 'parameters', 'template', 'system', 'details', 'model_info', 'capabilities', 'modified_at'] as const;
/** `/api/ps` entry fields passed on, besides the names the gateway rewrites. */
const PS_FIELDS = ['size', 'size_vram', 'digest', 'details', 'expires_at', 'context_length'] as const;

/** The non-model Ollama paths, answered by `handleOllamaApi`. */
export const OLLAMA_INFO_PATHS: ReadonlyMap<string, 'GET' | 'POST'> = new Map([
  ['/api/show', 'POST'],
  ['/api/ps', 'GET'],
  ['/api/version', 'GET'],
]);

export async function handleOllamaApi(services: GatewayServices, ctx: RequestContext, path: string): Promise<void> {
  ctx.principal = await authenticate(services, ctx, { serviceKeys: true });
  switch (path) {
    case '/api/version':
      return sendJson(ctx.res, 200, { version: OLLAMA_API_VERSION });
    case '/api/show':
      return show(services, ctx);
    case '/api/ps':
      return runningModels(services, ctx);
  }
}

/** POST /api/show `{"model": "..."}`: the model's details, if the caller may use it. */
async function show(services: GatewayServices, ctx: RequestContext): Promise<void> {
  const body = await readJsonBody(ctx.req, services.config.server.max_body_bytes, { lenientContentType: true });
  // Older clients send `name`.
  const model = isJsonObject(body) ? (body.model ?? body.name) : undefined;
  if (typeof model !== 'string' || model === '') {
    throw new GatewayError('Send {"model": "<name>"}; GET /api/tags lists the models you may use.', { status: 400, type: 'invalid_request_error', code: 'invalid_model', param: 'model' });
  }
  const route = await authoriseModel(services, ctx, model, 'ollama');
  ctx.route = route;
  const upstream = await upstreamJson(services, ctx, route, 'POST', '/api/show', { model: route.upstreamModel, ...(isJsonObject(body) && body.verbose === true && { verbose: true }) });
  const answer: Record<string, unknown> = {};
  for (const field of SHOW_FIELDS) if (upstream[field] !== undefined) answer[field] = upstream[field];
  sendJson(ctx.res, 200, answer);
}

/** GET /api/ps: the loaded models the caller may use, from every Ollama connection that serves one. */
async function runningModels(services: GatewayServices, ctx: RequestContext): Promise<void> {
  const routes = (await allowedRoutes(services, ctx.principal!)).filter((r) => r.connection.kind === 'ollama');
  const byConnection = new Map<string, ModelRoute[]>();
  for (const route of routes) byConnection.set(route.connection.name, [...(byConnection.get(route.connection.name) ?? []), route]);

  const lists = await Promise.all(
    [...byConnection.values()].map(async (served) => {
      const upstream = await upstreamJson(services, ctx, served[0]!, 'GET', '/api/ps');
      const loaded = Array.isArray(upstream.models) ? upstream.models.filter(isJsonObject) : [];
      return served.flatMap((route) => {
        const entry = loaded.find((m) => m.model === route.upstreamModel || m.name === route.upstreamModel);
        if (!entry) return [];
        const answer: Record<string, unknown> = { name: route.model, model: route.model };
        for (const field of PS_FIELDS) if (entry[field] !== undefined) answer[field] = entry[field];
        return [answer];
      });
    }),
  );
  sendJson(ctx.res, 200, { models: lists.flat() });
}

/** One small JSON call to a connection's model server; its failures become the gateway's own errors. */
async function upstreamJson(services: GatewayServices, ctx: RequestContext, route: ModelRoute, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Record<string, unknown>> {
  const headers = await upstreamHeaders(services, ctx, route.connection, 'application/json');
  if (body !== undefined) headers['content-type'] = 'application/json';
  const transport = services.transports.get(route.connection.name)!;
  const response = await transport.send({ method, path, headers, ...(body !== undefined && { body: JSON.stringify(body) }), signal: ctx.abort.signal });
  ctx.upstreamTarget = response.target;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_UPSTREAM_BODY_BYTES) {
      response.body.destroy();
      throw upstreamFailed(route, path, `an answer larger than ${MAX_UPSTREAM_BODY_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  if (response.status === 404 && path === '/api/show') {
    throw new GatewayError(`Model "${route.model}" is configured on connection "${route.connection.name}", but its model server does not have it.`, {
      status: 404,
      type: 'not_found_error',
      code: 'model_not_found',
    });
  }
  if (response.status < 200 || response.status >= 300) throw upstreamFailed(route, path, `HTTP ${response.status}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw upstreamFailed(route, path, 'a body that is not JSON');
  }
  if (!isJsonObject(parsed)) throw upstreamFailed(route, path, 'a body that is not a JSON object');
  return parsed;
}

function upstreamFailed(route: ModelRoute, path: string, what: string): GatewayError {
  return new GatewayError(`The model server of connection "${route.connection.name}" answered ${path} with ${what}.`, {
    status: 502,
    type: 'upstream_error',
    code: 'upstream_error',
  });
}
