// One trusted OIDC issuer: its discovery document and its JWKS. Discovery
// runs once and is retried after a failure; the JWKS is cached by jose and
// refetched on an unknown `kid`, at most once per cooldown.
import { createRemoteJWKSet, customFetch, type JWTVerifyGetKey } from 'jose';
import type { IssuerConfig } from '../config/schema.js';

type RemoteJwks = ReturnType<typeof createRemoteJWKSet>;

const DISCOVERY_RETRY_MS = 5_000;

export class TrustedIssuer {
  private jwks: RemoteJwks | undefined;
  private discovery: Promise<RemoteJwks> | undefined;
  private lastFailureAt = 0;

  constructor(
    readonly config: IssuerConfig,
    /** Told about every JWKS fetch, so operators can see refetch storms. */
    private readonly onJwksFetch: (issuer: string) => void = () => {},
  ) {}

  get id(): string {
    return this.config.issuer;
  }

  /** True once the JWKS has been fetched at least once. */
  get ready(): boolean {
    return this.jwks?.jwks() !== undefined;
  }

  /** The key resolver for jose's jwtVerify; discovers the JWKS URL on first use. */
  async keyResolver(): Promise<JWTVerifyGetKey> {
    if (this.jwks) return this.jwks;
    if (!this.discovery) {
      if (Date.now() - this.lastFailureAt < DISCOVERY_RETRY_MS) {
        throw new Error(`discovery for ${this.id} failed recently; retrying in a few seconds`);
      }
      this.discovery = this.discover().then(
        (jwks) => (this.jwks = jwks),
        (err) => {
          this.discovery = undefined;
          this.lastFailureAt = Date.now();
          throw err;
        },
      );
    }
    return this.discovery;
  }

  /** Fetches discovery and the JWKS now, so readiness reflects the IdP. */
  async warmUp(): Promise<void> {
    const jwks = (await this.keyResolver()) as RemoteJwks;
    await jwks.reload();
  }

  private async discover(): Promise<RemoteJwks> {
    const { jwks_uri: configured, jwks } = this.config;
    const jwksUri = configured ?? (await this.fetchJwksUri(jwks.timeout));
    return createRemoteJWKSet(new URL(jwksUri), {
      timeoutDuration: jwks.timeout,
      cooldownDuration: jwks.refetch_cooldown,
      cacheMaxAge: jwks.cache_max_age,
      [customFetch]: (url, init) => {
        this.onJwksFetch(this.id);
        return fetch(url, init);
      },
    });
  }

  private async fetchJwksUri(timeoutMs: number): Promise<string> {
    const url = `${this.id.replace(/\/$/, '')}/.well-known/openid-configuration`;
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
    if (!response.ok) throw new Error(`discovery at ${url} answered HTTP ${response.status}`);
    const document = (await response.json()) as { issuer?: unknown; jwks_uri?: unknown };
    // OIDC Discovery §4.3: the document must name exactly the issuer we asked for.
    if (document.issuer !== this.id) {
      throw new Error(`discovery at ${url} names issuer ${String(document.issuer)}, expected ${this.id}`);
    }
    if (typeof document.jwks_uri !== 'string') throw new Error(`discovery at ${url} has no jwks_uri`);
    return document.jwks_uri;
  }
}
