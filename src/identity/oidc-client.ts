// openid-client discovery with one policy for the gateway and the CLI: an
// identity provider is reached over HTTPS, except on loopback (the
// development IdP), where plain HTTP cannot leave the machine.
import * as oidc from 'openid-client';

export function isLoopbackHttp(url: URL): boolean {
  return url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
}

export async function discoverOidcClient(issuer: string, clientId: string, clientSecret?: string, timeoutMs = 10_000): Promise<oidc.Configuration> {
  const url = new URL(issuer);
  const authentication = clientSecret === undefined ? oidc.None() : oidc.ClientSecretBasic(clientSecret);
  return oidc.discovery(url, clientId, undefined, authentication, {
    timeout: Math.ceil(timeoutMs / 1000),
    ...(isLoopbackHttp(url) ? { execute: [oidc.allowInsecureRequests] } : {}),
  });
}
