// /.well-known/modelgate: what a client needs to sign in to this gateway.
// /.well-known/jwks.json: the public keys of gateway-issued tokens and
// identity assertions.
import type { Config } from '../config/schema.js';

export interface GatewayDiscovery {
  gateway: string;
  openai_base_url: string;
  /** How `modelgate login` obtains tokens; absent when the gateway has no login issuer. */
  login?: {
    issuer: string;
    client_id: string;
    scopes: string[];
    resource?: string;
    bearer: 'access_token' | 'id_token';
    flow: 'auto' | 'device' | 'browser';
  };
  token_issuer: string;
  jwks_uri: string;
  whoami_endpoint: string;
  web_login: { oidc?: string; saml?: string };
}

export function gatewayDiscovery(config: Config, publicUrl: string): GatewayDiscovery {
  const document: GatewayDiscovery = {
    gateway: publicUrl,
    openai_base_url: `${publicUrl}/v1`,
    token_issuer: publicUrl,
    jwks_uri: `${publicUrl}/.well-known/jwks.json`,
    whoami_endpoint: `${publicUrl}/auth/whoami`,
    web_login: {},
  };
  const login = config.identity.login;
  const issuer = login?.issuer ?? config.identity.issuers.find((i) => i.workload.length === 0)?.issuer;
  if (login && issuer) {
    document.login = { issuer, client_id: login.client_id, scopes: login.scopes, bearer: login.bearer, flow: login.flow };
    if (login.resource) document.login.resource = login.resource;
  }
  if (config.identity.web.oidc) document.web_login.oidc = `${publicUrl}/auth/oidc/login`;
  if (config.identity.web.saml) document.web_login.saml = `${publicUrl}/auth/saml/login`;
  return document;
}
