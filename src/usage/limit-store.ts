// Where limit counters live. One decision admits or refuses a request
// against every limit that applies to it at once, atomically: a request
// refused by one limit is charged to none. The in-memory store and the Redis
// store implement the same arithmetic (sliding-window counters, leased
// concurrency slots, fixed-period totals), and the same test suite runs on
// both.
//
// Sliding window counter: a window of W ms is split into fixed buckets of W;
// the count at time t is `previous × (unelapsed part of the bucket) + current`.
// It needs two numbers per key, stays exact while traffic is within one
// bucket, and is what mature Redis limiters use.

export type Check =
  /** At most `limit` units in any window of `windowMs` (sliding); this request costs `cost`. */
  | { kind: 'window'; key: string; windowMs: number; limit: number; cost: number }
  /** At most `limit` requests in progress; the slot is leased and released by id. */
  | { kind: 'concurrency'; key: string; limit: number }
  /** At most `limit` units in a fixed period whose key the caller names (a budget month); forgotten after `ttlMs`. */
  | { kind: 'total'; key: string; limit: number; cost: number; ttlMs: number };

export interface CheckResult {
  /** Units left after this decision (never below 0). */
  remaining: number;
  /** Milliseconds until the counter is back to full (0 if it is). */
  resetMs: number;
  /** For a refused check: milliseconds until this request would fit, or -1 if it never can (cost > limit). */
  retryMs: number;
  /** The bucket charged (window checks), for settling later. */
  bucket: number;
  /** Units in use before this decision. */
  used: number;
}

export interface Admission {
  allowed: boolean;
  /** Index of the first check that refused, or -1. */
  denied: number;
  results: CheckResult[];
}

/** A correction to an earlier charge, once the real cost is known. */
export interface Settlement {
  check: Check;
  bucket: number;
  delta: number;
}

export interface LimitStore {
  readonly kind: 'memory' | 'redis';
  /** Resolves true once the store can answer (bounded wait), false if it still cannot. */
  ready(): Promise<boolean>;
  /** Admits (and charges every check) or refuses (and charges none). Throws when the store is unreachable. */
  acquire(checks: readonly Check[], leaseId: string, leaseMs: number): Promise<Admission>;
  /** Corrects the request's charges with its real cost and frees its concurrency slots, in one step. */
  finish(settlements: readonly Settlement[], slotKeys: readonly string[], leaseId: string): Promise<void>;
  /** Extends the lease of a long request's concurrency slots. */
  renew(keys: readonly string[], leaseId: string, leaseMs: number): Promise<void>;
  /** True for the first caller to claim `key` within `ttlMs` (across instances, with Redis): sends an alert once. */
  claimOnce(key: string, ttlMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * A store that answers without I/O (the in-memory one) also decides and
 * settles synchronously, so a request pays no promise or await for its limits.
 */
export interface ImmediateLimitStore extends LimitStore {
  acquireNow(checks: readonly Check[], leaseId: string, leaseMs: number): Admission;
  finishNow(settlements: readonly Settlement[], slotKeys: readonly string[], leaseId: string): void;
}

export function isImmediate(store: LimitStore): store is ImmediateLimitStore {
  return (store as Partial<ImmediateLimitStore>).acquireNow !== undefined;
}

/** The sliding-window arithmetic both stores share (the Lua script mirrors it line by line). */
/** A check's result with its verdict. */
type Decided = CheckResult & { allowed: boolean };

export function slidingWindow(now: number, windowMs: number, limit: number, cost: number, previous: number, current: number, bucket = 0): Decided {
  const elapsed = now % windowMs;
  const used = Math.max(0, (previous * (windowMs - elapsed)) / windowMs + current);
  const allowed = used + cost <= limit;
  const after = allowed ? used + cost : used;
  const currentAfter = allowed ? current + cost : current;
  let resetMs = 0;
  if (currentAfter > 0) resetMs = windowMs - elapsed + windowMs;
  else if (previous > 0) resetMs = windowMs - elapsed;
  let retryMs = 0;
  if (!allowed) {
    if (cost > limit) retryMs = -1;
    else {
      const need = used + cost - limit;
      const decaying = (previous * (windowMs - elapsed)) / windowMs;
      if (previous > 0 && decaying >= need) retryMs = Math.ceil((need * windowMs) / previous);
      else retryMs = Math.ceil(windowMs - elapsed + windowMs * Math.max(0, 1 - (limit - cost) / Math.max(current, 1)));
    }
  }
  return { allowed, used, remaining: Math.max(0, Math.floor(limit - after)), resetMs, retryMs, bucket };
}

/** A concurrency key's leases (id → expiry) and the soonest expiry among them (or earlier: renewals only move leases later). */
interface Slots {
  leases: Map<string, number>;
  soonest: number;
}

function expireSlots(slots: Slots, now: number): void {
  let soonest = Infinity;
  for (const [id, expires] of slots.leases) {
    if (expires <= now) slots.leases.delete(id);
    else if (expires < soonest) soonest = expires;
  }
  slots.soonest = soonest;
}

interface WindowCounter {
  windowMs: number;
  bucket: number;
  current: number;
  previous: number;
}

/** Counters in this process: right for one instance (or one per instance when that is what you want). */
export class MemoryLimitStore implements ImmediateLimitStore {
  readonly kind = 'memory';
  readonly #windows = new Map<string, WindowCounter>();
  readonly #slots = new Map<string, Slots>();
  readonly #totals = new Map<string, { value: number; expires: number }>();
  readonly #sweeper: NodeJS.Timeout;

  constructor(private readonly now: () => number = Date.now) {
    // Forget idle counters so memory stays bounded by active keys.
    this.#sweeper = setInterval(() => this.#sweep(), 60_000);
    this.#sweeper.unref();
  }

  async ready(): Promise<boolean> {
    return true;
  }

  async acquire(checks: readonly Check[], leaseId: string, leaseMs: number): Promise<Admission> {
    return this.acquireNow(checks, leaseId, leaseMs);
  }

  async finish(settlements: readonly Settlement[], slotKeys: readonly string[], leaseId: string): Promise<void> {
    this.finishNow(settlements, slotKeys, leaseId);
  }

  acquireNow(checks: readonly Check[], leaseId: string, leaseMs: number): Admission {
    const now = this.now();
    const results: Decided[] = new Array(checks.length);
    const counters: Array<WindowCounter | undefined> = new Array(checks.length);
    let denied = -1;
    for (let i = 0; i < checks.length; i++) {
      const check = checks[i]!;
      let r: Decided;
      if (check.kind === 'window') {
        const bucket = Math.floor(now / check.windowMs);
        const c = (counters[i] = this.#window(check.key, check.windowMs, bucket));
        r = slidingWindow(now, check.windowMs, check.limit, check.cost, c.previous, c.current, bucket);
      } else if (check.kind === 'concurrency') {
        const used = this.#liveSlots(check.key, now).leases.size;
        const allowed = used < check.limit;
        r = { allowed, used, remaining: Math.max(0, check.limit - used - (allowed ? 1 : 0)), resetMs: 0, retryMs: allowed ? 0 : 1000, bucket: 0 };
      } else {
        const t = this.#totals.get(check.key);
        const used = t && t.expires > now ? t.value : 0;
        const allowed = used + check.cost <= check.limit;
        r = { allowed, used, remaining: Math.max(0, Math.floor(check.limit - used - (allowed ? check.cost : 0))), resetMs: 0, retryMs: 0, bucket: 0 };
      }
      if (!r.allowed && denied < 0) denied = i;
      results[i] = r;
    }
    if (denied >= 0) return { allowed: false, denied, results };
    for (let i = 0; i < checks.length; i++) {
      const check = checks[i]!;
      if (check.kind === 'window') counters[i]!.current += check.cost;
      else if (check.kind === 'concurrency') {
        const slots = this.#slots.get(check.key)!;
        slots.leases.set(leaseId, now + leaseMs);
        if (now + leaseMs < slots.soonest) slots.soonest = now + leaseMs;
      }
      else {
        const t = this.#totals.get(check.key);
        if (t && t.expires > now) t.value += check.cost;
        else this.#totals.set(check.key, { value: check.cost, expires: now + check.ttlMs });
      }
    }
    return { allowed: true, denied: -1, results };
  }

  finishNow(settlements: readonly Settlement[], slotKeys: readonly string[], leaseId: string): void {
    for (const key of slotKeys) this.#slots.get(key)?.leases.delete(leaseId);
    for (const { check, bucket, delta } of settlements) {
      if (check.kind === 'window') {
        const c = this.#windows.get(check.key);
        if (c?.bucket === bucket) c.current = Math.max(0, c.current + delta);
        else if (c?.bucket === bucket + 1) c.previous = Math.max(0, c.previous + delta);
      } else if (check.kind === 'total') {
        const t = this.#totals.get(check.key);
        if (t) t.value = Math.max(0, t.value + delta);
        else if (delta > 0) this.#totals.set(check.key, { value: delta, expires: this.now() + check.ttlMs });
      }
    }
  }

  async renew(keys: readonly string[], leaseId: string, leaseMs: number): Promise<void> {
    const expires = this.now() + leaseMs;
    for (const key of keys) {
      const slots = this.#slots.get(key);
      if (slots?.leases.has(leaseId)) slots.leases.set(leaseId, expires);
    }
  }

  readonly #claims = new Map<string, number>();

  async claimOnce(key: string, ttlMs: number): Promise<boolean> {
    const now = this.now();
    const until = this.#claims.get(key);
    if (until !== undefined && until > now) return false;
    this.#claims.set(key, now + ttlMs);
    return true;
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
  }

  #window(key: string, windowMs: number, bucket: number): WindowCounter {
    let c = this.#windows.get(key);
    if (!c) {
      c = { windowMs, bucket, current: 0, previous: 0 };
      this.#windows.set(key, c);
    } else if (c.bucket !== bucket) {
      c.previous = c.bucket === bucket - 1 ? c.current : 0;
      c.current = 0;
      c.bucket = bucket;
    }
    return c;
  }

  /** The key's slots with expired leases dropped: looked through only once the soonest lease may have run out, not on every call. */
  #liveSlots(key: string, now: number): Slots {
    let slots = this.#slots.get(key);
    if (!slots) {
      slots = { leases: new Map(), soonest: Infinity };
      this.#slots.set(key, slots);
    } else if (slots.soonest <= now) {
      expireSlots(slots, now);
    }
    return slots;
  }

  #sweep(): void {
    const now = this.now();
    for (const [key, c] of this.#windows) {
      // Two buckets old: nothing left to count.
      if (Math.floor(now / c.windowMs) > c.bucket + 1) this.#windows.delete(key);
    }
    for (const [key, slots] of this.#slots) {
      expireSlots(slots, now);
      if (slots.leases.size === 0) this.#slots.delete(key);
    }
    for (const [key, t] of this.#totals) if (t.expires <= now) this.#totals.delete(key);
  }
}
