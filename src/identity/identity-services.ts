// Everything identity the gateway runs: the token verifier (OIDC issuers,
// workload issuers and the gateway's own tokens), the shared identity state,
// the gateway's signing keys, and identity assertions for upstreams. Built
// with the gateway; `start` opens the state once the gateway's URL is known.
import type { Config, ConnectionConfig } from '../config/schema.js';
import type { Logger } from '../ops/logger.js';
import { GatewayTokens } from './gateway-tokens.js';
import type { Principal } from './principal.js';
import { ServiceKeys } from './service-keys.js';
import { GatewaySigningKeys } from './signing-keys.js';
import type { IdentityState } from './state/identity-state.js';
import { openIdentityState } from './state/open-identity-state.js';
import { TokenVerifier } from './verify-token.js';

/** Expired records and revocations are dropped this often. */
const PURGE_INTERVAL_MS = 5 * 60_000;

export class IdentityServices {
  readonly verifier: TokenVerifier;
  private started: { state: IdentityState; tokens: GatewayTokens; serviceKeys: ServiceKeys; purge: NodeJS.Timeout } | undefined;
  private url: string | undefined;

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
    onJwksFetch?: (issuer: string) => void,
  ) {
    this.verifier = new TokenVerifier(config.identity, onJwksFetch);
  }

  /** Opens the shared state and loads keys and revocations; call before the gateway listens. */
  async start(): Promise<void> {
    if (this.started) return;
    const { identity } = this.config;
    const state = await openIdentityState(identity.state);
    const skew = identity.clock_skew;
    const longestSigned = Math.max(identity.gateway_tokens.lifetime, ...this.config.connections.map((c) => c.identity_assertion?.lifetime ?? 0));
    const keys = new GatewaySigningKeys(state, identity.gateway_tokens, longestSigned + skew);
    const tokens = new GatewayTokens(() => this.publicUrl, keys, state, identity.gateway_tokens, identity.gateway_tokens.lifetime + skew);
    await tokens.warmUp();
    const purge = setInterval(() => {
      state.purgeExpired(Date.now()).catch((err: unknown) => this.log.warn({ err: String(err) }, 'could not purge expired identity records'));
    }, PURGE_INTERVAL_MS);
    purge.unref();
    this.started = { state, tokens, serviceKeys: new ServiceKeys(state), purge };
  }

  /**
   * Called as soon as the gateway listens, before it serves a request: the
   * gateway's own tokens are issued as `server.public_url`, or this URL when
   * none is set (a fleet must set it, so every instance agrees).
   */
  bindUrl(listenUrl: string): void {
    if (this.url !== undefined) return;
    this.url = (this.config.server.public_url ?? listenUrl).replace(/\/+$/, '');
    this.verifier.trust(this.running.tokens);
  }

  get publicUrl(): string {
    if (this.url === undefined) throw new Error('the gateway URL is not known before the gateway listens');
    return this.url;
  }

  get state(): IdentityState {
    return this.running.state;
  }

  get gatewayTokens(): GatewayTokens {
    return this.running.tokens;
  }

  get serviceKeys(): ServiceKeys {
    return this.running.serviceKeys;
  }

  /** The signed identity header for an upstream, when the connection asks for one. */
  async upstreamAssertion(principal: Principal, connection: ConnectionConfig, requestId: string): Promise<[header: string, value: string] | undefined> {
    const settings = connection.identity_assertion;
    if (!settings) return undefined;
    const jwt = await this.gatewayTokens.identityAssertion(principal, settings.audience ?? connection.name, requestId, settings.lifetime);
    return [settings.header.toLowerCase(), jwt];
  }

  async close(): Promise<void> {
    if (!this.started) return;
    clearInterval(this.started.purge);
    await this.started.state.close();
    this.started = undefined;
  }

  private get running(): NonNullable<IdentityServices['started']> {
    if (!this.started) throw new Error('identity services have not started (Gateway.listen starts them)');
    return this.started;
  }
}
