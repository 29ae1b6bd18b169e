// Stage 3: may this principal use the model it asked for, and where does
// that model live. Unknown and forbidden models are told apart, with the
// next step for each.
import { GatewayError } from '../http/errors.js';
import type { Principal } from '../identity/principal.js';
import { decideAccess } from '../policy/access.js';
import type { ModelRoute } from '../proxy/model-routes.js';
import type { ModelRequest } from '../protocol/types.js';
import type { GatewayServices } from './services.js';

export function authorise(services: GatewayServices, principal: Principal, request: ModelRequest): ModelRoute {
  const route = services.routes.resolve(request.model);
  if (!route) {
    throw new GatewayError(`The model "${request.model}" does not exist on this gateway. GET /v1/models lists the models you may use.`, {
      status: 404,
      type: 'not_found_error',
      code: 'model_not_found',
      param: 'model',
    });
  }
  const decision = decideAccess(services.config.access, principal, route.connection.name, route.model);
  if (!decision.allowed) {
    const groups = principal.groups.length > 0 ? principal.groups.join(', ') : 'none';
    throw new GatewayError(
      `You (${principal.subject}, groups: ${groups}) are not allowed to use model "${route.model}" on connection "${route.connection.name}". Ask an administrator for access.`,
      { status: 403, type: 'permission_error', code: 'model_forbidden', param: 'model' },
    );
  }
  if (request.dialect === 'ollama' && route.connection.kind !== 'ollama') {
    throw new GatewayError(
      `Model "${route.model}" is served by an OpenAI-compatible server, which does not speak the Ollama API; call /v1/chat/completions instead.`,
      { status: 400, type: 'invalid_request_error', code: 'protocol_not_supported' },
    );
  }
  return route;
}

/** Every model route the principal may use, for GET /v1/models. */
export function allowedRoutes(services: GatewayServices, principal: Principal): ModelRoute[] {
  return services.routes.all.filter(
    (route) => decideAccess(services.config.access, principal, route.connection.name, route.model).allowed,
  );
}
