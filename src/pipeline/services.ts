// The long-lived parts a request's stages use. Built once at start-up.
import type { Approvals } from '../approvals/approvals.js';
import type { AuditTrail } from '../audit/audit-trail.js';
import type { Config, ConnectionConfig } from '../config/schema.js';
import type { IdentityServices } from '../identity/identity-services.js';
import type { TokenVerifier } from '../identity/verify-token.js';
import type { GatewayMetrics } from '../ops/metrics.js';
import type { Logger } from '../ops/logger.js';
import type { GuardrailEngine } from '../policy/guardrail-engine.js';
import type { ModelRoutes } from '../proxy/model-routes.js';
import type { Transport } from '../proxy/transport.js';
import type { Limiter } from '../usage/limiter.js';
import type { Tracing } from '../ops/tracing.js';

export interface GatewayServices {
  config: Config;
  verifier: TokenVerifier;
  /** Shared identity state, gateway-issued tokens and upstream identity assertions. */
  identity: IdentityServices;
  routes: ModelRoutes;
  guardrails: GuardrailEngine;
  /** One transport per connection, by connection name. */
  transports: ReadonlyMap<string, Transport>;
  /** Builds a connection's transport (direct, or through agents); a reload uses it for changed connections. */
  newTransport?: (connection: ConnectionConfig) => Transport;
  metrics: GatewayMetrics;
  /** Session recording; undefined when `recording.enabled` is false. Set before the gateway listens. */
  audit?: AuditTrail;
  /** Reviews and access grants; set before the gateway listens. */
  approvals?: Approvals;
  /** Limits and budgets, with their counter store (memory or Redis), and the cost table. */
  limiter: Limiter;
  /** OpenTelemetry spans; a no-op unless OTEL_* variables configure an exporter. */
  tracing: Tracing;
  log: Logger;
}
