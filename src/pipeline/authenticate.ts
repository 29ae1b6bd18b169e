// Stage 1: who is calling. Runs before the body is read, so an
// unauthenticated caller cannot make the gateway buffer anything.
import { TokenVerifier } from '../identity/verify-token.js';
import type { Principal } from '../identity/principal.js';
import type { RequestContext } from './context.js';
import type { GatewayServices } from './services.js';

export function authenticate(services: GatewayServices, ctx: RequestContext): Promise<Principal> {
  const token = TokenVerifier.bearerToken(ctx.req.headers.authorization);
  return services.verifier.verify(token);
}
