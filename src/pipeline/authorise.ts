// Stage 3: may this principal use the model it asked for, and where does
// that model live. Unknown and forbidden models are told apart, with the
// next step for each.
import { GatewayError } from '../http/errors.js';
import type { Principal } from '../identity/principal.js';
import { decideAccess, groupsGranting } from '../policy/access.js';
import type { ModelRoute } from '../proxy/model-routes.js';
import type { Dialect } from '../protocol/types.js';
import type { Review } from '../approvals/review.js';
import type { RequestContext } from './context.js';
import type { GatewayServices } from './services.js';

export async function authorise(services: GatewayServices, ctx: RequestContext): Promise<ModelRoute> {
  const { request } = ctx;
  if (!request) throw new Error('authorise() runs after parse');
  return authoriseModel(services, ctx, request.model, request.dialect);
}

/** The access check alone, for calls that name a model without being model calls (Ollama's /api/show). */
export async function authoriseModel(services: GatewayServices, ctx: RequestContext, model: string, dialect: Dialect): Promise<ModelRoute> {
  const { principal } = ctx;
  if (!principal) throw new Error('authorise() runs after authenticate');
  const route = services.routes.resolve(model);
  if (!route) {
    throw new GatewayError(`The model "${model}" does not exist on this gateway. ${dialect === 'ollama' ? 'GET /api/tags' : 'GET /v1/models'} lists the models you may use.`, {
      status: 404,
      type: 'not_found_error',
      code: 'model_not_found',
      param: 'model',
    });
  }
  if (principal.method === 'service_key' && !route.connection.service_keys) {
    throw new GatewayError(
      `Service keys are not accepted on connection "${route.connection.name}" (model "${route.model}"). An administrator can enable them with \`service_keys: true\` on the connection, or call it with a person's or workload's token.`,
      { status: 403, type: 'permission_error', code: 'service_key_not_enabled' },
    );
  }
  const decision = decideAccess(services.config.access, principal, route.connection.name, route.model);
  // Only a caller the rules refuse pays for the grant lookup.
  if (!decision.allowed) ctx.accessGrant = await grantFor(services, principal, route.connection.name);
  if (!decision.allowed && !ctx.accessGrant) {
    const groups = principal.groups.length > 0 ? principal.groups.join(', ') : 'none';
    const granting = groupsGranting(services.config.access, route.connection.name, route.model);
    const lacking = granting.length > 0 ? ` It is granted to members of ${granting.join(' or ')}, and you are in none of them.` : ' No group is granted it.';
    throw new GatewayError(
      `You (${principal.subject}, groups: ${groups}) are not allowed to use model "${route.model}" on connection "${route.connection.name}".${lacking} Ask an administrator for access, or request temporary access: modelgate access request --connection ${route.connection.name} --for 1h --reason "..."`,
      { status: 403, type: 'permission_error', code: 'model_forbidden', param: 'model' },
    );
  }
  if (dialect === 'ollama' && route.connection.kind !== 'ollama') {
    throw new GatewayError(
      `Model "${route.model}" is served by an OpenAI-compatible server, which does not speak the Ollama API; call /v1/chat/completions instead.`,
      { status: 400, type: 'invalid_request_error', code: 'protocol_not_supported' },
    );
  }
  return route;
}

/** Every model route the principal may use, for GET /v1/models: by the access rules, or by a running grant. */
export async function allowedRoutes(services: GatewayServices, principal: Principal): Promise<ModelRoute[]> {
  const granted = new Map<string, boolean>();
  const routes: ModelRoute[] = [];
  for (const route of services.routes.all) {
    if (principal.method === 'service_key' && !route.connection.service_keys) continue;
    if (decideAccess(services.config.access, principal, route.connection.name, route.model).allowed) {
      routes.push(route);
      continue;
    }
    const name = route.connection.name;
    if (!granted.has(name)) granted.set(name, (await grantFor(services, principal, name)) !== undefined);
    if (granted.get(name)) routes.push(route);
  }
  return routes;
}

async function grantFor(services: GatewayServices, principal: Principal, connection: string): Promise<Review | undefined> {
  if (!services.approvals) return undefined;
  try {
    return await services.approvals.grantFor(principal, connection);
  } catch (err) {
    // Fail closed: without the store, only the static access rules apply.
    services.log.warn({ err: (err as Error).message }, 'could not check access grants; static access rules apply');
    return undefined;
  }
}
