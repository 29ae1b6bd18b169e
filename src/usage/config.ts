// The `limits:` and `usage:` configuration sections. A limit rule says whom
// it applies to (groups, subjects, connections, models), what it counts per
// (one counter per subject, per group, ... or one shared), and its ceilings.
// Budgets are monthly spending ceilings per group, priced by `usage.costs`.
import { z } from 'zod';
import { duration, httpUrl, name } from '../config/fields.js';

/** What to do when the shared counter store (Redis) cannot be reached. */
const onStoreFailure = z.enum(['open', 'closed']);

export const LIMIT_DIMENSIONS = ['subject', 'group', 'connection', 'model'] as const;
export type LimitDimension = (typeof LIMIT_DIMENSIONS)[number];

const positiveInt = z.number().int().positive();

const limitRule = z
  .object({
    /** Named in 429 errors, logs and metrics. */
    name,
    description: z.string().optional(),
    /** Who the rule applies to: members of any of these groups, or these subjects. Both empty: everyone. */
    groups: z.array(z.string().min(1)).default([]),
    subjects: z.array(z.string().min(1)).default([]),
    /** The issuer `subjects` belong to, as in `access[].issuer`: required with subjects when there is more than one issuer. */
    issuer: z.string().min(1).optional(),
    /** Connection names, or "*". */
    connections: z.array(z.string().min(1)).min(1).default(['*']),
    /** Model names as clients send them (not aliases), or "*". */
    models: z.array(z.string().min(1)).min(1).default(['*']),
    /**
     * One counter per value of these: `[subject]` gives each person their own
     * allowance, `[group]` one per group (shared by its members), `[subject,
     * model]` one per person and model; `[]` one counter for everyone matched.
     */
    per: z.array(z.enum(LIMIT_DIMENSIONS)).default(['subject']),
    requests_per_minute: positiveInt.optional(),
    tokens_per_minute: positiveInt.optional(),
    tokens_per_day: positiveInt.optional(),
    tokens_per_month: positiveInt.optional(),
    /** Requests in progress at once; a stream counts until it ends. */
    concurrent_requests: positiveInt.optional(),
    /** Redis unreachable: `closed` refuses with 503, `open` lets requests through (counted in a metric and logged). */
    on_store_failure: onStoreFailure.default('closed'),
  })
  .strict()
  .refine(
    (r) =>
      [r.requests_per_minute, r.tokens_per_minute, r.tokens_per_day, r.tokens_per_month, r.concurrent_requests].some((v) => v !== undefined),
    { message: 'set at least one of requests_per_minute, tokens_per_minute, tokens_per_day, tokens_per_month, concurrent_requests' },
  );

const budgetWebhook = z
  .object({
    url: httpUrl,
    timeout: duration.prefault('5s'),
  })
  .strict();

const budget = z
  .object({
    /** The group whose members' spending counts against this budget. */
    group: z.string().min(1),
    /** Per calendar month (UTC), in the currency of `usage.costs`. */
    monthly: z.number().positive(),
    /** Fraction of `monthly` at which an alert is logged and the webhook called once per month. */
    soft: z.number().gt(0).max(1).default(0.8),
    /** Fraction of `monthly` past which requests are refused with 429; above 1 only alerts. */
    hard: z.number().gt(0).default(1),
    webhook: budgetWebhook.optional(),
    on_store_failure: onStoreFailure.default('closed'),
  })
  .strict();

export const limitsSchema = z
  .object({
    /** `memory` for one instance; `redis` to share counters between instances. */
    store: z.enum(['memory', 'redis']).default('memory'),
    redis: z
      .object({
        url: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').default('redis://127.0.0.1:6379'),
        /** Prefix of every key the gateway writes, so several deployments can share one Redis. */
        key_prefix: z.string().default('modelgate:'),
        /** How long one limit decision may wait for Redis before it counts as unreachable. */
        timeout: duration.prefault('1s'),
      })
      .strict()
      .prefault({}),
    /** Assumed completion size for the token pre-check when a request sets no max_tokens. */
    default_max_tokens: z.number().int().nonnegative().default(256),
    /** A concurrency slot whose owner vanished (crashed instance) is freed after this. */
    concurrency_lease: duration.prefault('10m'),
    rules: z.array(limitRule).default([]),
    budgets: z.array(budget).default([]),
  })
  .strict()
  .superRefine((limits, ctx) => {
    const names = new Set<string>();
    limits.rules.forEach((rule, i) => {
      if (names.has(rule.name)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'name'], message: `duplicate limit rule name "${rule.name}"` });
      names.add(rule.name);
    });
    const groups = new Set<string>();
    limits.budgets.forEach((b, i) => {
      if (groups.has(b.group)) ctx.addIssue({ code: 'custom', path: ['budgets', i, 'group'], message: `group "${b.group}" already has a budget` });
      groups.add(b.group);
      if (b.soft > b.hard) ctx.addIssue({ code: 'custom', path: ['budgets', i, 'soft'], message: 'the soft threshold must not be above the hard one' });
    });
  })
  .prefault({});

const cost = z
  .object({
    /** Model names as clients send them, or "*" for every model without its own entry. */
    models: z.array(z.string().min(1)).min(1),
    per_1k_prompt_tokens: z.number().nonnegative().default(0),
    per_1k_completion_tokens: z.number().nonnegative().default(0),
    /** For self-hosted models priced by the GPU time a request holds (its duration). */
    per_gpu_second: z.number().nonnegative().default(0),
  })
  .strict();

export const usageSchema = z
  .object({
    /** Currency name shown next to costs; purely a label. */
    currency: z.string().min(1).default('USD'),
    costs: z.array(cost).default([]),
    /** Add a `subject` label to the token metrics. Off by default: one time series per person can be a lot. */
    metrics_subject_label: z.boolean().default(false),
  })
  .strict()
  .prefault({});

export const tracingSchema = z
  .object({
    /** Put prompts and completions in spans (`gen_ai.input.messages`, `gen_ai.output.messages`). Off: spans carry no content. */
    capture_content: z.boolean().default(false),
  })
  .strict()
  .prefault({});

export type LimitsConfig = z.output<typeof limitsSchema>;
export type LimitRule = LimitsConfig['rules'][number];
export type BudgetConfig = LimitsConfig['budgets'][number];
export type UsageConfig = z.output<typeof usageSchema>;
export type TracingConfig = z.output<typeof tracingSchema>;
