/** How the caller proved who they are. */
export type AuthenticationMethod =
  /** A token from a trusted OIDC issuer (people, and service accounts via client credentials). */
  | 'oidc'
  /** A CI system's token, bound to a service identity by claim conditions. */
  | 'workload'
  /** A token the gateway signed itself, after a browser sign-in (SAML or OIDC). */
  | 'gateway'
  /** A long-lived service key (`modelgate keys`), accepted only where a connection enables them. */
  | 'service_key';

/** Who is calling: the verified identity every later stage decides on. */
export interface Principal {
  issuer: string;
  subject: string;
  email?: string;
  /** The issuer asserted `email_verified` and is trusted (`trust_email`) to merge people by email. */
  emailTrusted?: boolean;
  name?: string;
  groups: string[];
  /** OAuth client that obtained the token (`azp`/`client_id`), for service accounts. */
  clientId?: string;
  tokenId?: string;
  /** Epoch seconds. */
  expiresAt: number;
  method?: AuthenticationMethod;
  /**
   * The identity provider that authenticated the person, when the token's
   * issuer is not it (gateway-issued tokens after browser sign-in carry it
   * as `idp`). The same person then has one identity: (origin ?? issuer, subject).
   */
  origin?: string;
  /** For workloads: the CI token's own subject (e.g. `repo:org/repo:ref:refs/heads/main`), for attribution. */
  workloadSubject?: string;
  /** For service keys: the person who created the service identity, recorded with each of its requests. */
  owner?: { issuer: string; subject: string; email?: string };
}

/**
 * The identity provider that vouches for the person: the token's issuer, or,
 * for a gateway-issued token, the IdP they signed in with (`idp`). With the
 * subject it names one person; the gateway's own issuer would merge the
 * people of every IdP that signs in through the browser.
 */
export function personIssuer(principal: Pick<Principal, 'issuer' | 'origin'>): string {
  return principal.origin ?? principal.issuer;
}
