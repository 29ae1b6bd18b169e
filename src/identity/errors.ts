// Token refusals: 401 with an RFC 6750 WWW-Authenticate challenge, so
// clients and proxies know to fetch a new token. IdP outages fail closed
// with 503: no unverified request is ever let through.
import { GatewayError } from '../http/errors.js';

const REALM = 'modelgate';

export function missingToken(message: string): GatewayError {
  return new GatewayError(message, {
    status: 401,
    type: 'authentication_error',
    code: 'token_missing',
    headers: { 'www-authenticate': `Bearer realm="${REALM}"` },
  });
}

export function invalidToken(code: string, message: string): GatewayError {
  const description = message.replace(/["\\\r\n]/g, "'");
  return new GatewayError(message, {
    status: 401,
    type: 'authentication_error',
    code,
    headers: { 'www-authenticate': `Bearer realm="${REALM}", error="invalid_token", error_description="${description}"` },
  });
}

export function identityProviderUnavailable(issuer: string, cause: unknown): GatewayError {
  return new GatewayError(
    `Cannot verify the token: the identity provider ${issuer} is unreachable. The request was not forwarded; retry shortly.`,
    { status: 503, type: 'service_unavailable', code: 'idp_unavailable', headers: { 'retry-after': '5' }, cause },
  );
}
