/** Who is calling: the verified identity every later stage decides on. */
export interface Principal {
  issuer: string;
  subject: string;
  email?: string;
  name?: string;
  groups: string[];
  /** OAuth client that obtained the token (`azp`/`client_id`), for service accounts. */
  clientId?: string;
  tokenId?: string;
  /** Epoch seconds. */
  expiresAt: number;
}
