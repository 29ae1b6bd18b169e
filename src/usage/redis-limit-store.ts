// Limit counters in Redis, shared by every gateway instance. Each decision
// is one Lua script, so checking every limit and charging them happens
// atomically on the server, with the server's clock (TIME) as the only
// clock: instances whose clocks drift still agree on the windows. The
// arithmetic is `slidingWindow` in limit-store.ts, line for line.
//
// Commands never queue while Redis is unreachable (offline queue off, a
// command timeout): a decision fails fast and the caller applies each
// limit's `on_store_failure`.
import { Redis } from 'ioredis';
import type { Admission, Check, CheckResult, LimitStore, Settlement } from './limit-store.js';

const ACQUIRE = `
local n = tonumber(ARGV[1])
local lease = ARGV[2]
local leaseMs = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
local charges = {}
local denied = -1
for i = 1, n do
  local a = 3 + (i - 1) * 5
  local kind = ARGV[a + 1]
  local windowMs = tonumber(ARGV[a + 2])
  local limit = tonumber(ARGV[a + 3])
  local cost = tonumber(ARGV[a + 4])
  local key = KEYS[i]
  local allowed, used, remaining, resetMs, retryMs, bucket = false, 0, 0, 0, 0, 0
  if kind == 'w' then
    bucket = math.floor(now / windowMs)
    local elapsed = now - bucket * windowMs
    local current = tonumber(redis.call('GET', key .. ':' .. string.format('%d', bucket)) or '0')
    local previous = tonumber(redis.call('GET', key .. ':' .. string.format('%d', bucket - 1)) or '0')
    used = math.max(0, previous * (windowMs - elapsed) / windowMs + current)
    allowed = used + cost <= limit
    local after, currentAfter = used, current
    if allowed then after = used + cost; currentAfter = current + cost end
    if currentAfter > 0 then resetMs = windowMs - elapsed + windowMs elseif previous > 0 then resetMs = windowMs - elapsed end
    if not allowed then
      if cost > limit then retryMs = -1 else
        local need = used + cost - limit
        local decaying = previous * (windowMs - elapsed) / windowMs
        if previous > 0 and decaying >= need then retryMs = math.ceil(need * windowMs / previous)
        else retryMs = math.ceil(windowMs - elapsed + windowMs * math.max(0, 1 - (limit - cost) / math.max(current, 1))) end
      end
    end
    remaining = math.max(0, math.floor(limit - after))
    charges[i] = {key .. ':' .. string.format('%d', bucket), cost, 2 * windowMs + 1000}
  elseif kind == 'c' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    used = redis.call('ZCARD', key)
    allowed = used < limit
    remaining = limit - used
    if allowed then remaining = remaining - 1 else retryMs = 1000 end
    if remaining < 0 then remaining = 0 end
  else
    used = tonumber(redis.call('GET', key) or '0')
    allowed = used + cost <= limit
    local after = used
    if allowed then after = used + cost end
    remaining = math.max(0, math.floor(limit - after))
    charges[i] = {key, cost, tonumber(ARGV[a + 5])}
  end
  if (not allowed) and denied < 0 then denied = i - 1 end
  out[#out + 1] = remaining
  out[#out + 1] = resetMs
  out[#out + 1] = retryMs
  out[#out + 1] = bucket
  out[#out + 1] = math.floor(used)
end
if denied < 0 then
  for i = 1, n do
    local c = charges[i]
    if c then
      redis.call('INCRBY', c[1], c[2])
      redis.call('PEXPIRE', c[1], c[3])
    else
      redis.call('ZADD', KEYS[i], now + leaseMs, lease)
      redis.call('PEXPIRE', KEYS[i], leaseMs)
    end
  end
  return {1, -1, unpack(out)}
end
return {0, denied, unpack(out)}
`;

/** Corrects earlier charges (a counter that already expired stays gone) and frees concurrency slots, in one round trip. */
const FINISH = `
local settled = tonumber(ARGV[1])
for i = 1, settled do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local v = redis.call('INCRBY', KEYS[i], ARGV[2 + i])
    if v < 0 then redis.call('SET', KEYS[i], 0, 'KEEPTTL') end
  end
end
for i = settled + 1, #KEYS do
  redis.call('ZREM', KEYS[i], ARGV[2])
end
return 0
`;

const RENEW = `
local t = redis.call('TIME')
local expires = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], 'XX', expires, ARGV[1])
  redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[2]))
end
return 0
`;

type ScriptedRedis = Redis & {
  limitAcquire(...args: (string | number)[]): Promise<number[]>;
  limitFinish(...args: (string | number)[]): Promise<number>;
  limitRenew(...args: (string | number)[]): Promise<number>;
};

export interface RedisLimitStoreOptions {
  url: string;
  keyPrefix: string;
  timeoutMs: number;
  /** Told about connection trouble (once per state change), for logs and metrics. */
  onStateChange?: (state: 'ready' | 'unreachable', error?: Error) => void;
}

export class RedisLimitStore implements LimitStore {
  readonly kind = 'redis';
  readonly #redis: ScriptedRedis;
  readonly #prefix: string;
  #state: 'ready' | 'unreachable' | 'connecting' = 'connecting';

  constructor(options: RedisLimitStoreOptions) {
    this.#prefix = options.keyPrefix;
    const redis = new Redis(options.url, {
      enableOfflineQueue: false,
      commandTimeout: options.timeoutMs,
      connectTimeout: Math.max(options.timeoutMs, 1000),
      maxRetriesPerRequest: 0,
      retryStrategy: (times) => Math.min(times * 100, 2000),
    });
    redis.defineCommand('limitAcquire', { lua: ACQUIRE });
    redis.defineCommand('limitFinish', { lua: FINISH });
    redis.defineCommand('limitRenew', { lua: RENEW });
    redis.on('ready', () => {
      if (this.#state !== 'ready') options.onStateChange?.('ready');
      this.#state = 'ready';
    });
    redis.on('error', (err: Error) => {
      if (this.#state !== 'unreachable') options.onStateChange?.('unreachable', err);
      this.#state = 'unreachable';
    });
    this.#redis = redis as ScriptedRedis;
  }

  /** Waits (bounded) for the first connection, so the first requests are not refused only because start-up raced them. */
  async ready(timeoutMs = 2000): Promise<boolean> {
    if (this.#redis.status === 'ready') return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#redis.off('ready', onReady);
        resolve(false);
      }, timeoutMs);
      const onReady = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.#redis.once('ready', onReady);
    });
  }

  async acquire(checks: readonly Check[], leaseId: string, leaseMs: number): Promise<Admission> {
    const args: (string | number)[] = [checks.length];
    for (const check of checks) args.push(this.#prefix + check.key);
    args.push(checks.length, leaseId, leaseMs);
    for (const check of checks) {
      if (check.kind === 'window') args.push('w', check.windowMs, check.limit, check.cost, 0);
      else if (check.kind === 'concurrency') args.push('c', 0, check.limit, 1, 0);
      else args.push('t', 0, check.limit, check.cost, check.ttlMs);
    }
    const reply = await this.#redis.limitAcquire(...args);
    const results: CheckResult[] = [];
    for (let i = 0; i < checks.length; i++) {
      const at = 2 + i * 5;
      results.push({ remaining: reply[at]!, resetMs: reply[at + 1]!, retryMs: reply[at + 2]!, bucket: reply[at + 3]!, used: reply[at + 4]! });
    }
    return { allowed: reply[0] === 1, denied: reply[1]!, results };
  }

  async finish(settlements: readonly Settlement[], slotKeys: readonly string[], leaseId: string): Promise<void> {
    const keys: string[] = [];
    const deltas: number[] = [];
    for (const { check, bucket, delta } of settlements) {
      if (check.kind === 'concurrency' || delta === 0) continue;
      keys.push(this.#prefix + (check.kind === 'window' ? `${check.key}:${bucket}` : check.key));
      deltas.push(Math.round(delta));
    }
    if (keys.length === 0 && slotKeys.length === 0) return;
    const slots = slotKeys.map((k) => this.#prefix + k);
    await this.#redis.limitFinish(keys.length + slots.length, ...keys, ...slots, keys.length, leaseId, ...deltas);
  }

  async renew(keys: readonly string[], leaseId: string, leaseMs: number): Promise<void> {
    if (keys.length === 0) return;
    await this.#redis.limitRenew(keys.length, ...keys.map((k) => this.#prefix + k), leaseId, leaseMs);
  }

  async claimOnce(key: string, ttlMs: number): Promise<boolean> {
    return (await this.#redis.set(this.#prefix + key, '1', 'PX', ttlMs, 'NX')) === 'OK';
  }

  async close(): Promise<void> {
    this.#redis.disconnect();
  }
}
