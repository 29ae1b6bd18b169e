// `node --import tsx bench/limits.ts`: what one limit decision costs the
// gateway's own process, admission plus settlement, with the bench's limits
// (bench/targets.ts: per caller and per model, five checks) on the in-memory
// store and on the Redis at 127.0.0.1:6379. CPU time is the process's own,
// so it holds up on a busy machine where throughput ratios do not.
//
// Env: BENCH_LIMIT_DECISIONS (memory, default 100000; Redis uses a tenth).
import { randomUUID } from 'node:crypto';
import { limitsSchema, usageSchema } from '../src/usage/config.js';
import { CostTable } from '../src/usage/costs.js';
import { MemoryLimitStore, type LimitStore } from '../src/usage/limit-store.js';
import { Grant, Limiter } from '../src/usage/limiter.js';
import { RedisLimitStore } from '../src/usage/redis-limit-store.js';
import { benchLimits } from './targets.js';

const decisions = Number(process.env.BENCH_LIMIT_DECISIONS ?? 100_000);
const principal = { issuer: 'https://idp.example', subject: 'bench', groups: ['ci'], expiresAt: 0 };
const usage = { prompt_tokens: 10, completion_tokens: 12, total_tokens: 22, estimated: false };

for (const kind of ['memory', 'redis'] as const) {
  const store: LimitStore =
    kind === 'memory' ? new MemoryLimitStore() : new RedisLimitStore({ url: 'redis://127.0.0.1:6379', keyPrefix: `bench:${randomUUID()}:`, timeoutMs: 5000 });
  if (!(await store.ready())) {
    console.log(`${kind}: not reachable, skipped`);
    continue;
  }
  const limiter = new Limiter(limitsSchema.parse(benchLimits(kind)), new CostTable(usageSchema.parse({})), store);
  const n = kind === 'memory' ? decisions : Math.max(100, Math.round(decisions / 10));
  const run = async (count: number) => {
    const cpu = process.cpuUsage();
    const start = performance.now();
    for (let i = 0; i < count; i++) {
      // The pipeline's path: decided and settled without a promise when the store answers at once (memory).
      const decided = limiter.decide({ principal, connection: 'bench', model: 'demo-chat', requestId: `r${i}`, promptEstimate: 10, maxTokens: 256 });
      const grant = decided instanceof Grant ? decided : await decided;
      await grant.settle(usage, 0);
    }
    const used = process.cpuUsage(cpu);
    return { cpuUs: (used.user + used.system) / count, wallUs: ((performance.now() - start) * 1000) / count };
  };
  await run(Math.round(n / 10)); // warm-up
  const result = await run(n);
  console.log(`${kind}: ${result.cpuUs.toFixed(1)} µs CPU and ${result.wallUs.toFixed(1)} µs wall per request (admit + settle, ${n} sequential requests)`);
  await store.close();
}
