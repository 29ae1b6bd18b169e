// Limit decisions: which limits apply to a call (rules matched by identity,
// connection and model; budgets by group), one atomic admission against all
// of them, OpenAI's rate-limit headers on every response, and settling the
// token and cost reservations with what the call really used.
//
// Pure bookkeeping over a LimitStore; the pipeline stage (pipeline/limit.ts)
// does the wiring.
import { GatewayError } from '../http/errors.js';
import { personIssuer, type Principal } from '../identity/principal.js';
import { fromIssuer } from '../policy/access.js';
import type { BudgetConfig, LimitDimension, LimitRule, LimitsConfig } from './config.js';
import { CostTable, MICROS } from './costs.js';
import { isImmediate, type Admission, type Check, type CheckResult, type LimitStore, type Settlement } from './limit-store.js';
import type { Usage } from './meter.js';

export type LimitKind = 'requests_per_minute' | 'tokens_per_minute' | 'tokens_per_day' | 'tokens_per_month' | 'concurrent_requests' | 'monthly_budget';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
/** A sliding month: 30 days. Budgets use calendar months instead. */
const MONTH = 30 * DAY;

const WINDOWS: ReadonlyArray<['requests_per_minute' | 'tokens_per_minute' | 'tokens_per_day' | 'tokens_per_month', number, 'requests' | 'tokens']> = [
  ['requests_per_minute', MINUTE, 'requests'],
  ['tokens_per_minute', MINUTE, 'tokens'],
  ['tokens_per_day', DAY, 'tokens'],
  ['tokens_per_month', MONTH, 'tokens'],
];

/** The codes of the limit stage's refusals: for the access log, the session record and usage reports. */
export const LIMIT_REFUSAL_CODES: ReadonlySet<string> = new Set(['rate_limit_exceeded', 'concurrency_limit_exceeded', 'budget_exceeded', 'request_exceeds_limit', 'limits_unavailable']);

const KIND_TEXT: Record<LimitKind, string> = {
  requests_per_minute: 'requests per minute',
  tokens_per_minute: 'tokens per minute',
  tokens_per_day: 'tokens per day',
  tokens_per_month: 'tokens per 30 days',
  concurrent_requests: 'concurrent requests',
  monthly_budget: 'monthly budget',
};

/** What refused a call, for the session record. */
export interface RefusedBy {
  limit: string;
  kind?: LimitKind;
  scope?: string;
  resets_at?: string;
}

/** A limit's refusal: the client's 429 (or 503 when the store is down and the limit fails closed), naming the limit. */
export class LimitRefusal extends GatewayError {
  constructor(
    message: string,
    options: ConstructorParameters<typeof GatewayError>[1],
    readonly refusedBy: RefusedBy,
  ) {
    super(message, options);
  }
}

/** One limit applied to one call: the check and where it came from. */
interface Applied {
  check: Check;
  kind: LimitKind;
  name: string;
  scope: string;
  onStoreFailure: 'open' | 'closed';
  budget?: BudgetConfig;
}

export interface LimitRequest {
  principal: Principal;
  connection: string;
  model: string;
  requestId: string;
  promptEstimate: number;
  /** What the call may generate at most (its max_tokens, or the configured default). */
  maxTokens: number;
}

export interface LimitHooks {
  /** The store failed and a limit let the call through anyway. */
  onFailOpen?(names: string[], err: Error): void;
  onRefused?(name: string, kind: LimitKind): void;
  onBudgetAlert?(alert: BudgetAlert): void;
}

export interface BudgetAlert {
  group: string;
  month: string;
  spent: number;
  monthly: number;
  threshold: number;
}

/** What the access log and the trace say about a call's limits. */
export interface LimitDecision {
  outcome: 'allowed' | 'refused' | 'store_failed_open' | 'none';
  limit?: string;
  kind?: LimitKind;
}

export class Grant {
  #finished = false;

  constructor(
    private readonly limiter: Limiter,
    readonly headers: Record<string, string>,
    readonly decision: LimitDecision,
    private readonly matched: Matched | undefined,
    private readonly admission: Admission | undefined,
    private readonly request: LimitRequest,
  ) {
    if (admission && matched && matched.slotKeys.length > 0) limiter.leases.add(this);
  }

  /** @internal Extends this call's concurrency slots (the limiter's shared renewal timer calls it). */
  renew(): Promise<void> {
    return this.limiter.store.renew(this.matched?.slotKeys ?? [], this.request.requestId, this.limiter.config.concurrency_lease);
  }

  /** Frees concurrency slots and replaces the reservations with real usage. Safe to call twice. */
  async finish(usage: Usage | undefined, cost: number): Promise<void> {
    await this.settle(usage, cost);
  }

  /**
   * `finish`, without a promise when nothing is waited for: an in-memory
   * store settles at once. Returns what is still to wait on (a store round
   * trip, a budget alert), or undefined when it is done.
   */
  settle(usage: Usage | undefined, cost: number): Promise<void> | undefined {
    const { admission, matched } = this;
    if (this.#finished || !admission || !matched) return undefined;
    this.#finished = true;
    if (matched.slotKeys.length > 0) this.limiter.leases.delete(this);
    const tokenDelta = (usage?.total_tokens ?? 0) - matched.reservedTokens;
    const micros = Math.round(cost * MICROS);
    const microsDelta = micros - matched.reservedMicros;
    const settlements: Settlement[] = [];
    const { applied, checks } = matched;
    for (let i = 0; i < applied.length; i++) {
      const check = checks[i]!;
      // Requests per minute are settled as charged: one.
      if (check.kind === 'window' && applied[i]!.kind !== 'requests_per_minute') settlements.push({ check, bucket: admission.results[i]!.bucket, delta: tokenDelta });
      else if (check.kind === 'total') settlements.push({ check, bucket: admission.results[i]!.bucket, delta: microsDelta });
    }
    const store = this.limiter.store;
    if (isImmediate(store)) {
      store.finishNow(settlements, matched.slotKeys, this.request.requestId);
      return matched.budgets ? this.limiter.alertBudgets(applied, admission, microsDelta) : undefined;
    }
    return store.finish(settlements, matched.slotKeys, this.request.requestId).then(() => {
      if (matched.budgets) return this.limiter.alertBudgets(applied, admission, microsDelta);
    });
  }
}

/** The limits that apply to one call, with what it reserves against them. */
interface Matched {
  applied: Applied[];
  /** `applied[i].check`, in one array for the store. */
  checks: Check[];
  /** The counter keys of its concurrency checks. */
  slotKeys: string[];
  /** Whether a group budget applies (settling may then raise its alert). */
  budgets: boolean;
  reservedTokens: number;
  reservedMicros: number;
}

/** A rule prepared once, so matching a call allocates only its counter keys. */
interface CompiledRule {
  rule: LimitRule;
  /** `limit:<name>:`, the start of every counter key of the rule. */
  prefix: string;
  connections: ReadonlySet<string> | undefined;
  models: ReadonlySet<string> | undefined;
  subjects: ReadonlySet<string>;
  groups: ReadonlySet<string>;
  windows: ReadonlyArray<{ kind: (typeof WINDOWS)[number][0]; suffix: string; windowMs: number; limit: number; requests: boolean }>;
}

function compile(rule: LimitRule): CompiledRule {
  const windows: CompiledRule['windows'][number][] = [];
  for (const [kind, windowMs, unit] of WINDOWS) {
    const limit = rule[kind];
    if (limit !== undefined) windows.push({ kind, suffix: `:${kind}`, windowMs, limit, requests: unit === 'requests' });
  }
  return {
    rule,
    prefix: `limit:${enc(rule.name)}:`,
    connections: rule.connections.includes('*') ? undefined : new Set(rule.connections),
    models: rule.models.includes('*') ? undefined : new Set(rule.models),
    subjects: new Set(rule.subjects),
    groups: new Set(rule.groups),
    windows,
  };
}

export class Limiter {
  readonly costs: CostTable;
  readonly #rules: readonly CompiledRule[];
  readonly #budgets: ReadonlyMap<string, BudgetConfig>;
  /** Calls holding concurrency slots: their leases are renewed together, on one timer, until they finish. */
  readonly leases = new LeaseRenewal(() => this.config.concurrency_lease);

  constructor(
    readonly config: LimitsConfig,
    costs: CostTable,
    readonly store: LimitStore,
    private readonly hooks: LimitHooks = {},
    private readonly now: () => number = Date.now,
  ) {
    this.costs = costs;
    this.#rules = config.rules.map(compile);
    this.#budgets = new Map(config.budgets.map((b) => [b.group, b]));
  }

  get active(): boolean {
    return this.#rules.length > 0 || this.#budgets.size > 0;
  }

  /** Admits the call or throws the 429 (or 503) that names the limit. */
  async admit(request: LimitRequest): Promise<Grant> {
    return this.decide(request);
  }

  /**
   * `admit`, without a promise when the store answers at once (in memory):
   * the pipeline's path, so a limit decision in memory costs no await. Throws
   * the refusal, or rejects with it when the store is waited for (Redis).
   */
  decide(request: LimitRequest): Grant | Promise<Grant> {
    const matched = this.#applicable(request);
    if (!matched) return new Grant(this, {}, NO_LIMITS, undefined, undefined, request);
    const store = this.store;
    if (isImmediate(store)) return this.#decided(request, matched, store.acquireNow(matched.checks, request.requestId, this.config.concurrency_lease));
    return store.acquire(matched.checks, request.requestId, this.config.concurrency_lease).then(
      (admission) => this.#decided(request, matched, admission),
      (err: unknown) => this.#storeFailed(request, matched, err as Error),
    );
  }

  #decided(request: LimitRequest, matched: Matched, admission: Admission): Grant {
    const headers = this.#headers(matched.applied, admission.results);
    if (!admission.allowed) {
      const a = matched.applied[admission.denied]!;
      const result = admission.results[admission.denied]!;
      this.hooks.onRefused?.(a.name, a.kind);
      throw this.#refusal(a, result, headers);
    }
    return new Grant(this, headers, ALLOWED, matched, admission, request);
  }

  #storeFailed(request: LimitRequest, matched: Matched, err: Error): Grant {
    const closed = matched.applied.filter((a) => a.onStoreFailure === 'closed');
    if (closed.length > 0) {
      throw new LimitRefusal(
        `The limit store is unreachable, and limit "${closed[0]!.name}" is set to refuse requests then. Retry shortly.`,
        { status: 503, type: 'service_unavailable', code: 'limits_unavailable', headers: { 'retry-after': '1' }, cause: err },
        { limit: closed[0]!.name },
      );
    }
    this.hooks.onFailOpen?.([...new Set(matched.applied.map((a) => a.name))], err);
    return new Grant(this, {}, { outcome: 'store_failed_open' }, undefined, undefined, request);
  }

  /** After settling: a budget that crossed its soft threshold alerts once per group and month. */
  async alertBudgets(applied: readonly Applied[], admission: Admission, correctionMicros: number): Promise<void> {
    for (const [i, a] of applied.entries()) {
      if (!a.budget || a.check.kind !== 'total') continue;
      const budget = a.budget;
      const spent = (admission.results[i]!.used + a.check.cost + correctionMicros) / MICROS;
      if (spent < budget.monthly * budget.soft) continue;
      const month = monthOf(this.now());
      if (!(await this.store.claimOnce(`budget-alert:${enc(budget.group)}:${month}`, 32 * DAY).catch(() => false))) continue;
      this.hooks.onBudgetAlert?.({ group: budget.group, month, spent, monthly: budget.monthly, threshold: budget.soft });
    }
  }

  #applicable(request: LimitRequest): Matched | undefined {
    const { principal, connection, model } = request;
    let matched: Matched | undefined;
    const reserve = (): Matched => {
      const reservedTokens = request.promptEstimate + request.maxTokens;
      const reservedMicros = Math.round(this.costs.cost(model, request.promptEstimate, request.maxTokens, 0) * MICROS);
      return { applied: [], checks: [], slotKeys: [], budgets: false, reservedTokens, reservedMicros };
    };
    const add = (m: Matched, a: Applied): void => {
      m.applied.push(a);
      m.checks.push(a.check);
      if (a.check.kind === 'concurrency') m.slotKeys.push(a.check.key);
    };
    for (const compiled of this.#rules) {
      if (!appliesTo(compiled, principal, connection, model)) continue;
      const m = (matched ??= reserve());
      const rule = compiled.rule;
      for (const scope of scopes(rule, principal, connection, model)) {
        const base = compiled.prefix + scope;
        for (const w of compiled.windows) {
          add(m, {
            check: { kind: 'window', key: base + w.suffix, windowMs: w.windowMs, limit: w.limit, cost: w.requests ? 1 : m.reservedTokens },
            kind: w.kind,
            name: rule.name,
            scope,
            onStoreFailure: rule.on_store_failure,
          });
        }
        if (rule.concurrent_requests !== undefined) {
          add(m, {
            check: { kind: 'concurrency', key: base + CONCURRENT_SUFFIX, limit: rule.concurrent_requests },
            kind: 'concurrent_requests',
            name: rule.name,
            scope,
            onStoreFailure: rule.on_store_failure,
          });
        }
      }
    }
    if (this.#budgets.size > 0) {
      let month: string | undefined;
      for (const group of principal.groups) {
        const budget = this.#budgets.get(group);
        if (!budget) continue;
        const m = (matched ??= reserve());
        m.budgets = true;
        month ??= monthOf(this.now());
        add(m, {
          check: { kind: 'total', key: `budget:${enc(group)}:${month}`, limit: Math.round(budget.monthly * budget.hard * MICROS), cost: m.reservedMicros, ttlMs: 40 * DAY },
          kind: 'monthly_budget',
          name: `budget:${group}`,
          scope: `group=${group}`,
          onStoreFailure: budget.on_store_failure,
          budget,
        });
      }
    }
    return matched;
  }

  /** OpenAI's headers for the tightest requests and tokens limits, plus concurrency and budget. */
  #headers(applied: readonly Applied[], results: readonly CheckResult[]): Record<string, string> {
    // The tightest limit of each family, by the share of it left: requests, tokens, concurrent, budget.
    const tightest: Array<number | undefined> = [undefined, undefined, undefined, undefined];
    for (let i = 0; i < applied.length; i++) {
      const kind = applied[i]!.kind;
      const family = kind === 'requests_per_minute' ? 0 : kind === 'concurrent_requests' ? 2 : kind === 'monthly_budget' ? 3 : 1;
      const current = tightest[family];
      if (current === undefined || results[i]!.remaining / applied[i]!.check.limit < results[current]!.remaining / applied[current]!.check.limit) tightest[family] = i;
    }
    const headers: Record<string, string> = {};
    const requests = tightest[0];
    if (requests !== undefined) {
      headers['x-ratelimit-limit-requests'] = String(applied[requests]!.check.limit);
      headers['x-ratelimit-remaining-requests'] = String(results[requests]!.remaining);
      headers['x-ratelimit-reset-requests'] = formatDuration(results[requests]!.resetMs);
    }
    const tokens = tightest[1];
    if (tokens !== undefined) {
      headers['x-ratelimit-limit-tokens'] = String(applied[tokens]!.check.limit);
      headers['x-ratelimit-remaining-tokens'] = String(results[tokens]!.remaining);
      headers['x-ratelimit-reset-tokens'] = formatDuration(results[tokens]!.resetMs);
    }
    const concurrent = tightest[2];
    if (concurrent !== undefined) {
      headers['x-ratelimit-limit-concurrent-requests'] = String(applied[concurrent]!.check.limit);
      headers['x-ratelimit-remaining-concurrent-requests'] = String(results[concurrent]!.remaining);
    }
    const budget = tightest[3];
    if (budget !== undefined) headers['x-modelgate-budget-remaining'] = (results[budget]!.remaining / MICROS).toFixed(2);
    return headers;
  }

  #refusal(a: Applied, result: CheckResult, headers: Record<string, string>): LimitRefusal {
    const limit = a.kind === 'monthly_budget' ? `${(a.check.limit / MICROS).toFixed(2)}` : String(a.check.limit);
    const what = `limit "${a.name}" (${limit} ${KIND_TEXT[a.kind]}, ${a.scope || 'shared'})`;
    if (result.retryMs < 0) {
      return new LimitRefusal(
        `This request alone needs more than ${what} allows (prompt and max_tokens together). Lower max_tokens or shorten the prompt.`,
        { status: 429, type: 'rate_limit_error', code: 'request_exceeds_limit', headers: { ...headers, 'x-should-retry': 'false' }, details: { limit: a.name, limit_kind: a.kind } },
        { limit: a.name, kind: a.kind, scope: a.scope },
      );
    }
    let retryMs = result.retryMs;
    if (a.kind === 'monthly_budget') retryMs = nextMonthStart(this.now()) - this.now();
    const resetsAt = new Date(this.now() + retryMs);
    const retryAfter = Math.max(1, Math.ceil(retryMs / 1000));
    const code = a.kind === 'monthly_budget' ? 'budget_exceeded' : a.kind === 'concurrent_requests' ? 'concurrency_limit_exceeded' : 'rate_limit_exceeded';
    const used = a.kind === 'monthly_budget' ? (result.used / MICROS).toFixed(2) : String(Math.ceil(result.used));
    return new LimitRefusal(
      `Rate limit reached: ${what}; used ${used}. ` +
        (a.kind === 'concurrent_requests' ? 'Retry when one of your requests in progress has finished.' : `It allows this request again in ${formatDuration(retryMs)} (at ${resetsAt.toISOString()}).`),
      {
        status: 429,
        type: 'rate_limit_error',
        code,
        headers: { ...headers, 'retry-after': String(retryAfter), 'x-should-retry': 'true' },
        details: { limit: a.name, limit_kind: a.kind, resets_at: resetsAt.toISOString() },
      },
      { limit: a.name, kind: a.kind, scope: a.scope, ...(a.kind !== 'concurrent_requests' && { resets_at: resetsAt.toISOString() }) },
    );
  }
}

function appliesTo(compiled: CompiledRule, principal: Principal, connection: string, model: string): boolean {
  if (compiled.connections && !compiled.connections.has(connection)) return false;
  if (compiled.models && !compiled.models.has(model)) return false;
  if (compiled.groups.size === 0 && compiled.subjects.size === 0) return true;
  return (compiled.subjects.has(principal.subject) && fromIssuer(compiled.rule, principal)) || principal.groups.some((g) => compiled.groups.has(g));
}

/** The counter keys a rule charges for this call: one per combination of its `per` dimensions. */
function scopes(rule: LimitRule, principal: Principal, connection: string, model: string): string[] {
  let combos: string[] = [''];
  for (const dimension of rule.per) {
    const values = dimensionValues(dimension, rule, principal, connection, model);
    combos = combos.flatMap((prefix) => values.map((v) => `${prefix}${prefix ? ',' : ''}${dimension}=${enc(v)}`));
  }
  return combos;
}

function dimensionValues(dimension: LimitDimension, rule: LimitRule, principal: Principal, connection: string, model: string): string[] {
  switch (dimension) {
    case 'subject':
      // One person across IdPs that vouch for them is still keyed by issuer: two IdPs may reuse a subject.
      return [`${personIssuer(principal)}#${principal.subject}`];
    case 'group':
      return rule.groups.length > 0 ? principal.groups.filter((g) => rule.groups.includes(g)) : principal.groups;
    case 'connection':
      return [connection];
    case 'model':
      return [model];
  }
}

const enc = (value: string): string => encodeURIComponent(value);
const CONCURRENT_SUFFIX = ':concurrent';
const NO_LIMITS: LimitDecision = Object.freeze({ outcome: 'none' });
const ALLOWED: LimitDecision = Object.freeze({ outcome: 'allowed' });

/**
 * Keeps the concurrency slots of calls in progress leased: one timer for all
 * of them (not one per call), running only while some call holds a slot. A
 * gateway that dies stops renewing, and its slots expire with the lease.
 */
class LeaseRenewal {
  readonly #grants = new Set<Grant>();
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly leaseMs: () => number) {}

  add(grant: Grant): void {
    this.#grants.add(grant);
    if (!this.#timer) {
      this.#timer = setInterval(() => {
        // Stopped on the first idle tick, not on every call's end: a call at a time would otherwise make a timer each.
        if (this.#grants.size === 0) {
          clearInterval(this.#timer);
          this.#timer = undefined;
        }
        for (const g of this.#grants) void g.renew().catch(() => {});
      }, Math.max(1000, this.leaseMs() / 3));
      this.#timer.unref();
    }
  }

  delete(grant: Grant): void {
    this.#grants.delete(grant);
  }
}

export function monthOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 7);
}

function nextMonthStart(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/** OpenAI's reset format: "20ms", "1s", "6m0s", "1h2m3s". */
export function formatDuration(ms: number): string {
  if (ms <= 0) return '0s';
  if (ms < 1000) return `${Math.ceil(ms)}ms`;
  let seconds = Math.ceil(ms / 1000);
  const hours = Math.floor(seconds / 3600);
  seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60);
  seconds -= minutes * 60;
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}
