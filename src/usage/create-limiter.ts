// Builds the limiter from the configuration: its counter store (memory for
// one instance, Redis for several), the cost table, and what a refusal, a
// store failure or a budget alert does (metrics, a log line, the webhook).
import type { Config } from '../config/schema.js';
import type { Logger } from '../ops/logger.js';
import type { GatewayMetrics } from '../ops/metrics.js';
import type { BudgetConfig } from './config.js';
import { CostTable } from './costs.js';
import { MemoryLimitStore, type LimitStore } from './limit-store.js';
import { Limiter, type BudgetAlert } from './limiter.js';
import { RedisLimitStore } from './redis-limit-store.js';

export function createLimiter(config: Config, metrics: GatewayMetrics, log: Logger): Limiter {
  const limits = config.limits;
  const store: LimitStore =
    limits.store === 'redis'
      ? new RedisLimitStore({
          url: limits.redis.url,
          keyPrefix: limits.redis.key_prefix,
          timeoutMs: limits.redis.timeout,
          onStateChange: (state, err) => {
            if (state === 'ready') log.info('limit store (Redis) connected');
            else log.warn({ err: err?.message }, 'limit store (Redis) unreachable');
          },
        })
      : new MemoryLimitStore();
  const budgets = new Map(limits.budgets.map((b) => [b.group, b]));
  return new Limiter(limits, new CostTable(config.usage), store, {
    onRefused: (limit, kind) => metrics.limitRefusals.inc({ limit, kind }),
    onFailOpen: (names, err) => {
      metrics.limitStoreFailures.inc({ outcome: 'open' });
      log.warn({ limits: names, err: err.message }, 'limit store unreachable; request let through (on_store_failure: open)');
    },
    onBudgetAlert: (alert) => {
      metrics.budgetAlerts.inc({ group: alert.group });
      log.warn({ budget: alert }, `group "${alert.group}" has spent ${alert.spent.toFixed(2)} ${config.usage.currency} of its ${alert.monthly} monthly budget`);
      const hook = budgets.get(alert.group)?.webhook;
      if (hook) void sendBudgetAlert(hook, alert, config.usage.currency, log);
    },
  });
}

async function sendBudgetAlert(hook: NonNullable<BudgetConfig['webhook']>, alert: BudgetAlert, currency: string, log: Logger): Promise<void> {
  try {
    const response = await fetch(hook.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'modelgate-budgets' },
      body: JSON.stringify({ type: 'budget.soft_threshold', ...alert, currency }),
      signal: AbortSignal.timeout(hook.timeout),
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
  } catch (err) {
    log.warn({ webhook: new URL(hook.url).origin, group: alert.group, err: (err as Error).message }, 'budget alert webhook not delivered');
  }
}
