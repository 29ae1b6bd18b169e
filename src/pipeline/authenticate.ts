// Stage 1: who is calling. Runs before the body is read, so an
// unauthenticated caller cannot make the gateway buffer anything.
import { badRequest, GatewayError } from '../http/errors.js';
import { looksLikeServiceKey } from '../identity/service-keys.js';
import { TokenVerifier } from '../identity/verify-token.js';
import type { Principal } from '../identity/principal.js';
import type { RequestContext } from './context.js';
import type { GatewayServices } from './services.js';

export interface AuthenticateOptions {
  /**
   * Service keys are accepted only where this is set: model calls and what a
   * model client asks first (models, whoami). Whether the connection takes
   * them is checked once it is known (authorise).
   */
  serviceKeys?: boolean;
}

export function authenticate(services: GatewayServices, ctx: RequestContext, options: AuthenticateOptions = {}): Promise<Principal> {
  refuseAmbiguousCredentials(ctx);
  const token = TokenVerifier.bearerToken(ctx.req.headers.authorization);
  if (looksLikeServiceKey(token)) {
    if (!options.serviceKeys) {
      throw new GatewayError('Service keys are accepted only for model calls; this API needs a person\'s token (modelgate token).', {
        status: 403,
        type: 'permission_error',
        code: 'service_key_not_accepted',
      });
    }
    return services.identity.serviceKeys.authenticate(token);
  }
  return services.verifier.verify(token);
}

/**
 * Node keeps only the first `Authorization` header; a proxy in front may keep the last. Two of them mean
 * two parties could see two different callers, so the request is refused rather than one picked.
 */
function refuseAmbiguousCredentials(ctx: RequestContext): void {
  const raw = ctx.req.rawHeaders;
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === 'authorization') count++;
  if (count > 1) throw badRequest('duplicate_authorization', 'The request carries more than one Authorization header; send exactly one.');
}
