// Prometheus metrics. One registry per gateway instance, so tests and the
// dev command can run several in one process without label collisions.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export class GatewayMetrics {
  readonly registry = new Registry();

  readonly requests = new Counter({
    name: 'modelgate_requests_total',
    help: 'Requests handled, by connection, model, operation and HTTP status.',
    labelNames: ['connection', 'model', 'operation', 'status'] as const,
    registers: [this.registry],
  });

  readonly configReloads = new Counter({
    name: 'modelgate_config_reloads_total',
    help: 'Configuration reloads (SIGHUP or --watch), by result: applied or rejected (invalid file, old configuration kept).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly refusals = new Counter({
    name: 'modelgate_refusals_total',
    help: 'Requests refused by the gateway itself, by stable error code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  readonly duration = new Histogram({
    name: 'modelgate_request_duration_seconds',
    help: 'Time from request received to response finished.',
    labelNames: ['connection', 'operation', 'stream'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly timeToFirstToken = new Histogram({
    name: 'modelgate_time_to_first_token_seconds',
    help: 'Time from request received to the first streamed frame sent to the client.',
    labelNames: ['connection', 'operation'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly upstreamErrors = new Counter({
    name: 'modelgate_upstream_errors_total',
    help: 'Upstream failures by connection and reason (unreachable, timeout, status, stream_interrupted).',
    labelNames: ['connection', 'reason'] as const,
    registers: [this.registry],
  });

  readonly inFlight = new Gauge({
    name: 'modelgate_in_flight_requests',
    help: 'Requests currently being handled.',
    registers: [this.registry],
  });

  readonly idleReclaims = new Counter({
    name: 'modelgate_idle_reclaims_total',
    help: 'Times the gateway collected its heap and its store threads\' after a burst, once idle for server.idle_reclaim.',
    registers: [this.registry],
  });

  readonly storeOutages = new Counter({
    name: 'modelgate_store_outages_total',
    help: 'Storage outages that began, by store (recording, reviews): each is logged once when it starts and once when it ends.',
    labelNames: ['store'] as const,
    registers: [this.registry],
  });

  readonly storeUp = new Gauge({
    name: 'modelgate_store_up',
    help: 'Whether a store (recording, reviews) is answering: 1 up, 0 in an outage.',
    labelNames: ['store'] as const,
    registers: [this.registry],
  });

  readonly guardrailDecisions = new Counter({
    name: 'modelgate_guardrail_decisions_total',
    help: 'Guardrail decisions on prompts and responses, by rule and action (block, mask, flag, require_approval, end_stream).',
    labelNames: ['rule', 'action'] as const,
    registers: [this.registry],
  });

  readonly jwksFetches = new Counter({
    name: 'modelgate_jwks_fetches_total',
    help: 'JWKS fetches per issuer (start-up, cache expiry, and unknown key IDs at a bounded rate).',
    labelNames: ['issuer'] as const,
    registers: [this.registry],
  });

  readonly heldRequests = new Gauge({
    name: 'modelgate_held_requests',
    help: 'Requests currently held waiting for a human approval.',
    registers: [this.registry],
  });

  readonly approvalWait = new Histogram({
    name: 'modelgate_approval_wait_seconds',
    help: 'How long held requests waited for a decision (or until the wait ran out).',
    buckets: [0.1, 0.5, 1, 5, 10, 30, 60, 120, 300],
    registers: [this.registry],
  });

  readonly reviews = new Counter({
    name: 'modelgate_reviews_total',
    help: 'Review state changes made on this instance, by kind (prompt, access) and event (created, approved, rejected, expired, cancelled, executed).',
    labelNames: ['kind', 'event'] as const,
    registers: [this.registry],
  });

  readonly webhookDeliveries = new Counter({
    name: 'modelgate_review_webhook_deliveries_total',
    help: 'Review notification webhooks, by outcome (delivered, failed after retries).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly upstreamQueued = new Gauge({
    name: 'modelgate_upstream_queued_requests',
    help: 'Requests waiting for a free connection to a busy upstream target, by connection (bounded by max_queued and queue_timeout).',
    labelNames: ['connection'] as const,
    registers: [this.registry],
  });

  readonly upstreamActive = new Gauge({
    name: 'modelgate_upstream_active_requests',
    help: 'Requests holding an upstream connection (headers to end of body), by connection.',
    labelNames: ['connection'] as const,
    registers: [this.registry],
  });

  readonly upstreamConnections = new Gauge({
    name: 'modelgate_upstream_connections',
    help: 'Keep-alive connections held to direct upstream targets (in use or idle), by connection; idle ones are dropped once they close.',
    labelNames: ['connection'] as const,
    registers: [this.registry],
  });

  readonly tokens: Counter<'connection' | 'model' | 'group' | 'outcome' | 'type' | 'estimated' | 'subject'>;

  readonly cost = new Counter({
    name: 'modelgate_cost_total',
    help: 'Cost of model calls in the configured currency (usage.costs), by connection, model and group.',
    labelNames: ['connection', 'model', 'group'] as const,
    registers: [this.registry],
  });

  readonly limitRefusals = new Counter({
    name: 'modelgate_limit_refusals_total',
    help: 'Requests refused by a limit or budget, by limit name and kind.',
    labelNames: ['limit', 'kind'] as const,
    registers: [this.registry],
  });

  readonly limitStoreFailures = new Counter({
    name: 'modelgate_limit_store_failures_total',
    help: 'Limit decisions the store (Redis) could not make, by outcome: let through (open) or refused with 503 (closed).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly budgetAlerts = new Counter({
    name: 'modelgate_budget_alerts_total',
    help: 'Monthly group budgets that crossed their soft threshold (counted once per group and month, by the instance that noticed).',
    labelNames: ['group'] as const,
    registers: [this.registry],
  });

  /** `subjectLabel` adds a per-person label to the token counter: opt-in, because it grows with the number of people. */
  constructor(options: { subjectLabel?: boolean } = {}) {
    this.tokens = new Counter({
      name: 'modelgate_tokens_total',
      help: 'Tokens used by model calls, by connection, model, group (once per group of the caller), outcome, type (prompt, completion) and whether they were estimated.',
      labelNames: ['connection', 'model', 'group', 'outcome', 'type', 'estimated', ...(options.subjectLabel ? (['subject'] as const) : [])],
      registers: [this.registry],
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'modelgate_' });
  }
}
