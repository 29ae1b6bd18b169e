// Stage 1: who is calling. Runs before the body is read, so an
// unauthenticated caller cannot make the gateway buffer anything.
import { badRequest } from '../http/errors.js';
import { TokenVerifier } from '../identity/verify-token.js';
import type { Principal } from '../identity/principal.js';
import type { RequestContext } from './context.js';
import type { GatewayServices } from './services.js';

export function authenticate(services: GatewayServices, ctx: RequestContext): Promise<Principal> {
  refuseAmbiguousCredentials(ctx);
  const token = TokenVerifier.bearerToken(ctx.req.headers.authorization);
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
