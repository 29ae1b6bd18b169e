// The `guardrails:` configuration section. It is also a policy file of its
// own (`guardrails:` at the top level), so `modelgate policy check FILE` can
// validate a policy before it is deployed. Same style as the main schema:
// strict objects, safe defaults, every cross-reference checked here.
import { z } from 'zod';
import { name } from '../config/fields.js';
import { createCustomPatternDetector, CustomPatternError, MAX_CUSTOM_PATTERN_LENGTH } from '../detect/custom.js';
import { INJECTION_THRESHOLD } from '../detect/injection/score.js';
import { isSupportedCountry } from 'libphonenumber-js';
import { BUILTIN_ENTITY_TYPES, NLP_ENTITY_TYPES, type EntityCategory, type EntityType } from '../detect/types.js';

const ENTITY_TYPES: ReadonlySet<string> = new Set<EntityType>([...BUILTIN_ENTITY_TYPES, ...NLP_ENTITY_TYPES, 'DICTIONARY', 'CUSTOM']);
const isEntityType = (value: string): value is EntityType => ENTITY_TYPES.has(value);

/** Category names as written in policies (plural and singular both read naturally). */
const CATEGORY_NAMES: Readonly<Record<string, EntityCategory>> = {
  pii: 'pii',
  secret: 'secret',
  secrets: 'secret',
  dictionary: 'dictionary',
  dictionaries: 'dictionary',
  custom: 'custom',
};

/** What a rule's `detect` (or an output rule's `types`) entry selects. */
export type Selector =
  | { kind: 'type'; type: EntityType }
  | { kind: 'category'; category: EntityCategory }
  /** A detector rule id or prefix: `dictionary.codenames`, `custom.ticket_id`, `secret.github_pat`. */
  | { kind: 'rule'; rule: string }
  | { kind: 'injection' };

const selector = z.string().transform((value, ctx): Selector => {
  if (isEntityType(value)) return { kind: 'type', type: value };
  const category = CATEGORY_NAMES[value];
  if (category !== undefined) return { kind: 'category', category };
  if (value === 'injection') return { kind: 'injection' };
  if (/^(pii|secret|dictionary|custom)\.[A-Za-z0-9_.-]+$/.test(value)) return { kind: 'rule', rule: value };
  ctx.addIssue({
    code: 'custom',
    message: `"${value}" is not something to detect; use an entity type (EMAIL, CREDIT_CARD, PRIVATE_KEY, ...), a category (pii, secrets, dictionary, custom, injection) or a rule id such as dictionary.<name> or custom.<name>`,
  });
  return z.NEVER;
});


/** Which requests a rule applies to; absent means all. */
const scope = {
  /** Connection names, or "*". */
  connections: z.array(z.string().min(1)).min(1).optional(),
  /** The rule applies when the caller is in any of these groups. */
  groups: z.array(z.string().min(1)).min(1).optional(),
};

export const MASK_STRATEGIES = ['placeholder', 'partial', 'hash'] as const;
const strategy = z.enum(MASK_STRATEGIES);

const masking = z
  .object({
    /** Secret for the `hash` strategy, e.g. "${MODELGATE_MASK_KEY}". */
    hash_key: z.string().min(32, 'use at least 32 characters (e.g. `openssl rand -hex 32`)').optional(),
    /** Hex digits of the HMAC kept in `[EMAIL:3f2a9c1b]`. */
    hash_length: z.number().int().min(8).max(64).default(8),
    /** Letters or digits the `partial` strategy leaves visible (`****1234`). */
    keep_last: z.number().int().min(0).max(8).default(4),
  })
  .strict()
  .prefault({});

/** Dictionary and pattern names become rule ids (`dictionary.<name>`, `custom.<name>`). */
const detectorName = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "use letters, digits, '_', '.' and '-' (at most 64 characters)");

const dictionary = z
  .object({
    name: detectorName,
    /** Matched case-insensitively as whole words; reported as DICTIONARY. */
    terms: z.array(z.string().min(1)).min(1),
  })
  .strict();

const pattern = z
  .object({
    name: detectorName,
    /** An RE2 regular expression (linear time: no lookaround, no backreferences). */
    regex: z.string().min(1),
    flags: z.string().default(''),
    /** The longest text the pattern can match: streamed output is held back this far, so it must be bounded. */
    max_length: z.number().int().min(1).max(MAX_CUSTOM_PATTERN_LENGTH),
    /** Report matches as this type instead of CUSTOM. */
    type: z.string().refine(isEntityType, 'not an entity type').optional(),
    confidence: z.number().gt(0).max(1).default(0.8),
  })
  .strict()
  .superRefine((p, ctx) => {
    // Compiled exactly as the scanner will compile it, so the policy check and the gateway agree.
    try {
      createCustomPatternDetector({ [p.name]: customPatternSpec(p) });
    } catch (err) {
      if (!(err instanceof CustomPatternError)) throw err;
      ctx.addIssue({ code: 'custom', path: ['regex'], message: err.reason });
    }
  });

type PatternConfig = z.output<typeof pattern>;

/** The scanner's form of a configured pattern. */
export const customPatternSpec = (p: Pick<PatternConfig, 'regex' | 'flags' | 'max_length' | 'type' | 'confidence'>) => ({
  pattern: p.regex,
  flags: p.flags,
  maxLength: p.max_length,
  confidence: p.confidence,
  ...(p.type !== undefined && { type: p.type as EntityType }),
});

export const INPUT_ACTIONS = ['block', 'require_approval', 'mask', 'flag'] as const;

const inputRule = z
  .object({
    name,
    description: z.string().optional(),
    detect: z.array(selector).min(1),
    action: z.enum(INPUT_ACTIONS),
    /** For `action: mask`: how the prompt text is replaced. */
    strategy: strategy.optional(),
    /** For `injection`: the score (0..1) at which the rule fires. */
    threshold: z.number().min(0).max(1).optional(),
    /** Spans the detectors are less sure of are ignored. */
    min_confidence: z.number().min(0).max(1).default(0),
    /** Message roles whose text is inspected (system, user, assistant, tool); absent means all. */
    roles: z.array(z.string().min(1)).min(1).optional(),
    /** For `action: require_approval`: groups whose members may approve (default: `approvals.approvers`). */
    approvers: z.array(z.string().min(1)).min(1).optional(),
    /** For `action: require_approval`: distinct approvers needed (default: `approvals.required_approvals`). */
    required_approvals: z.number().int().min(1).max(10).optional(),
    ...scope,
  })
  .strict()
  .superRefine((rule, ctx) => {
    for (const key of ['approvers', 'required_approvals'] as const) {
      if (rule[key] !== undefined && rule.action !== 'require_approval') {
        ctx.addIssue({ code: 'custom', path: [key], message: `\`${key}\` applies only to \`action: require_approval\`` });
      }
    }
    const injection = rule.detect.some((s) => s.kind === 'injection');
    if (injection && rule.action === 'mask') {
      ctx.addIssue({ code: 'custom', path: ['action'], message: 'a prompt injection cannot be masked; use block, require_approval or flag' });
    }
    if (rule.strategy !== undefined && rule.action !== 'mask') {
      ctx.addIssue({ code: 'custom', path: ['strategy'], message: '`strategy` applies only to `action: mask`' });
    }
    if (rule.threshold !== undefined && !injection) {
      ctx.addIssue({ code: 'custom', path: ['threshold'], message: '`threshold` applies only when `detect` includes injection' });
    }
  })
  .transform(({ strategy: chosen, threshold, ...rule }) => ({ ...rule, strategy: chosen ?? 'placeholder', threshold: threshold ?? INJECTION_THRESHOLD }));

const limitRule = z
  .object({
    name,
    /** Characters across all inspectable prompt text (messages, tool arguments, instructions). */
    max_prompt_chars: z.number().int().min(1).optional(),
    /** The largest `max_tokens` (`max_completion_tokens`, `max_output_tokens`, Ollama `options.num_predict`) a caller may ask for. */
    max_tokens: z.number().int().min(1).optional(),
    /** Request parameters a caller may send; Ollama options are `options.<name>` (or `options` for all). */
    allowed_params: z.array(z.string().min(1)).optional(),
    denied_params: z.array(z.string().min(1)).optional(),
    ...scope,
  })
  .strict()
  .refine((r) => r.max_prompt_chars !== undefined || r.max_tokens !== undefined || r.allowed_params !== undefined || r.denied_params !== undefined, {
    message: 'a limit rule must set max_prompt_chars, max_tokens, allowed_params or denied_params',
  });

const outputTypes = z
  .array(selector)
  .min(1)
  .refine((selectors) => !selectors.some((s) => s.kind === 'injection'), 'output rules act on entities; injection applies to input only');

const outputRule = z
  .object({
    name,
    description: z.string().optional(),
    mask: z.object({ types: outputTypes, strategy: strategy.default('placeholder') }).strict().optional(),
    /** Entities that end the response (with an error naming this rule) instead of being masked. */
    end_stream_on: outputTypes.optional(),
    ...scope,
  })
  .strict()
  .refine((r) => r.mask !== undefined || r.end_stream_on !== undefined, { message: 'an output rule must set `mask` or `end_stream_on`' });

/** How PHONE finds national numbers without a country code. */
const phone = z
  .object({
    /** ISO 3166 regions whose national formats are tried, in order. */
    regions: z.array(z.string().refine((r) => isSupportedCountry(r), 'not a region libphonenumber knows (use ISO 3166 alpha-2, e.g. GB, DE, IN)')).min(1).optional(),
    /** Words next to a number (before it, or just after) that make it a phone number. */
    context_words: z.array(z.string().min(1)).min(1).optional(),
  })
  .strict()
  .optional();

export const guardrailsSchema = z
  .object({
    masking,
    phone,
    dictionaries: z.array(dictionary).default([]),
    patterns: z.array(pattern).default([]),
    input: z.array(inputRule).default([]),
    limits: z.array(limitRule).default([]),
    output: z.array(outputRule).default([]),
  })
  .strict()
  .superRefine((policy, ctx) => {
    const ruleNames = new Map<string, string>();
    for (const section of ['input', 'limits', 'output'] as const) {
      policy[section].forEach((rule, i) => {
        const earlier = ruleNames.get(rule.name);
        if (earlier !== undefined) {
          ctx.addIssue({ code: 'custom', path: [section, i, 'name'], message: `rule name "${rule.name}" is already used by ${earlier}; errors and records name rules, so names must be unique` });
        }
        ruleNames.set(rule.name, `${section}[${i}]`);
      });
    }
    const defined = {
      dictionary: uniqueNames(policy.dictionaries, 'dictionaries', ctx),
      custom: uniqueNames(policy.patterns, 'patterns', ctx),
    };
    const checkSelectors = (selectors: readonly Selector[], path: Array<string | number>): void => {
      selectors.forEach((s, j) => {
        if (s.kind !== 'rule') return;
        const [family, ...rest] = s.rule.split('.');
        const names = family === 'dictionary' || family === 'custom' ? defined[family] : undefined;
        if (names && !names.has(rest.join('.'))) {
          ctx.addIssue({ code: 'custom', path: [...path, j], message: `no ${family === 'custom' ? 'pattern' : 'dictionary'} named "${rest.join('.')}" is defined` });
        }
      });
    };
    policy.input.forEach((rule, i) => checkSelectors(rule.detect, ['input', i, 'detect']));
    policy.output.forEach((rule, i) => {
      if (rule.mask) checkSelectors(rule.mask.types, ['output', i, 'mask', 'types']);
      if (rule.end_stream_on) checkSelectors(rule.end_stream_on, ['output', i, 'end_stream_on']);
    });
    const usesHash =
      policy.input.some((r) => r.action === 'mask' && r.strategy === 'hash') || policy.output.some((r) => r.mask?.strategy === 'hash');
    if (usesHash && policy.masking.hash_key === undefined) {
      ctx.addIssue({ code: 'custom', path: ['masking', 'hash_key'], message: 'the hash strategy needs a secret key, e.g. hash_key: "${MODELGATE_MASK_KEY}"' });
    }
  });

function uniqueNames(items: ReadonlyArray<{ name: string }>, section: string, ctx: z.RefinementCtx): Set<string> {
  const names = new Set<string>();
  items.forEach((item, i) => {
    if (names.has(item.name)) ctx.addIssue({ code: 'custom', path: [section, i, 'name'], message: `duplicate name "${item.name}"` });
    names.add(item.name);
  });
  return names;
}

/** A standalone policy file: the same section under a top-level `guardrails:` key. */
export const policyFileSchema = z.object({ guardrails: guardrailsSchema }).strict();

export type GuardrailsPolicy = z.output<typeof guardrailsSchema>;
export type GuardrailsPolicyInput = z.input<typeof guardrailsSchema>;
export type InputRule = GuardrailsPolicy['input'][number];
export type LimitRule = GuardrailsPolicy['limits'][number];
export type OutputRule = GuardrailsPolicy['output'][number];
export type MaskStrategyName = (typeof MASK_STRATEGIES)[number];

/**
 * Connection names the policy mentions that `connections` does not define.
 * Only the full configuration knows the connections, so the config schema
 * calls this; a standalone policy file cannot check it.
 */
export function unknownConnectionReferences(
  policy: GuardrailsPolicy,
  connections: ReadonlySet<string>,
): Array<{ path: Array<string | number>; message: string }> {
  const problems: Array<{ path: Array<string | number>; message: string }> = [];
  for (const section of ['input', 'limits', 'output'] as const) {
    policy[section].forEach((rule, i) => {
      rule.connections?.forEach((connection, j) => {
        if (connection !== '*' && !connections.has(connection)) {
          problems.push({ path: [section, i, 'connections', j], message: `unknown connection "${connection}"` });
        }
      });
    });
  }
  return problems;
}
