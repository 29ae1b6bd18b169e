// Guardrail decisions. Pure: the policy, who is asking, and the parsed
// request in; decisions, the overall action and a masked copy of the body
// out. The detectors are passed in, so this file has no I/O and no clock.
//
// Precedence: block > require_approval > mask > flag. Every decision names
// its rule, and so does the client's error.
import type { InjectionScore, InjectionSignal } from '../detect/injection/index.js';
import type { CountryCode } from 'libphonenumber-js';
import type { ScannerOptions } from '../detect/scanner.js';
import { categoryOf, type EntityType, type Span } from '../detect/types.js';
import { GatewayError } from '../http/errors.js';
import type { Principal } from '../identity/principal.js';
import { formatPath, getAtPath, isJsonObject, setAtPath } from '../protocol/body-path.js';
import type { ModelRequest, TextField } from '../protocol/types.js';
import { maskText } from '../mask/mask-text.js';
import { MaskingSession } from '../mask/session.js';
import type { MaskStrategy, SpanRules } from '../mask/types.js';
import { customPatternSpec, type GuardrailsPolicy, type InputRule, type LimitRule, type MaskStrategyName, type Selector } from './guardrails-schema.js';
import type { Decision } from './guardrails-types.js';

/** The detectors guardrails run: `scan` from createScanner(), and scoreInjection. */
export interface InputDetectors {
  scan(text: string): Span[];
  scoreInjection(text: string): InjectionScore;
}

export interface GuardrailSubject {
  principal: Pick<Principal, 'subject' | 'groups'>;
  /** The connection the request is routed to. */
  connection: string;
}

export interface GuardrailInput extends GuardrailSubject {
  request: ModelRequest;
}

export type InputVerdict = 'allow' | 'block' | 'require_approval';

export interface InputEvaluation {
  decisions: Decision[];
  action: InputVerdict;
  /** The body to forward instead of `request.body` when a rule masked prompt text. */
  maskedBody?: Record<string, unknown>;
  /** For `require_approval`: the prompt as approvers see it, with every detected entity masked, whatever its rule's action. */
  reviewBody?: Record<string, unknown>;
  /** Set when the request was refused because part of its prompt is token IDs or embeddings: that part's path. */
  uninspectable?: string;
}

const ACTION_RANK = { flag: 0, mask: 1, require_approval: 2, block: 3 } as const;

/**
 * Roles a rule's `roles` can exempt. Text outside any message (tools,
 * schemas, extras) and turns of any other role ("human", "User", which a
 * template may still render as a user turn) are inspected by every rule.
 */
const STANDARD_ROLES: ReadonlySet<string | undefined> = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);

/** The policy's dictionaries and custom patterns, in the form createScanner() takes. */
export function scannerOptionsFor(policy: GuardrailsPolicy): Pick<ScannerOptions, 'dictionaries' | 'customPatterns' | 'phone'> {
  return {
    dictionaries: Object.fromEntries(policy.dictionaries.map((d) => [d.name, d.terms])),
    customPatterns: Object.fromEntries(policy.patterns.map((p) => [p.name, customPatternSpec(p)])),
    ...(policy.phone !== undefined && {
      phone: {
        ...(policy.phone.regions !== undefined && { regions: policy.phone.regions as CountryCode[] }),
        ...(policy.phone.context_words !== undefined && { contextWords: policy.phone.context_words }),
      },
    }),
  };
}

/** A session whose placeholders and hashes prompt and response masking share. */
export function createMaskingSession(policy: GuardrailsPolicy): MaskingSession {
  return new MaskingSession(policy.masking.hash_key === undefined ? {} : { hashKey: policy.masking.hash_key });
}

export function evaluateInput(
  policy: GuardrailsPolicy,
  input: GuardrailInput,
  detectors: InputDetectors,
  session: MaskingSession = createMaskingSession(policy),
): InputEvaluation {
  const { request } = input;
  const decisions: Decision[] = [];
  for (const rule of policy.limits) if (appliesTo(rule, input)) decisions.push(...checkLimits(rule, request));

  const rules = policy.input.filter((rule) => appliesTo(rule, input));
  const uninspectable = uninspectableDecision(policy, rules, input);
  if (uninspectable) return { decisions: [...decisions, uninspectable], action: 'block', uninspectable: uninspectable.param! };
  const entityRules = rules.filter((rule) => rule.detect.some((s) => s.kind !== 'injection'));
  const injectionRules = rules.filter((rule) => rule.detect.some((s) => s.kind === 'injection'));
  const masks: Array<{ field: TextField; spans: Span[]; rules: SpanRules }> = [];
  const detected: Array<{ field: TextField; spans: Span[]; rules: SpanRules }> = [];

  for (const field of request.fields) {
    const forField = (rule: InputRule): boolean => rule.roles === undefined || !STANDARD_ROLES.has(field.role!) || rule.roles.includes(field.role!);
    const fieldEntityRules = entityRules.filter(forField);
    if (fieldEntityRules.length > 0) {
      const spans = detectors.scan(field.text);
      const toMask: Span[] = [];
      const selected: Span[] = [];
      for (const span of spans) {
        for (const rule of fieldEntityRules) {
          if (!ruleSelects(rule, span)) continue;
          decisions.push(entityDecision(rule, span, field));
          if (selected.at(-1) !== span) selected.push(span);
          if (rule.action === 'mask' && toMask.at(-1) !== span) toMask.push(span);
        }
      }
      if (selected.length > 0) detected.push({ field, spans: selected, rules: reviewMaskRules });
      if (toMask.length > 0) masks.push({ field, spans: toMask, rules: inputMaskRules(fieldEntityRules.filter((r) => r.action === 'mask'), policy) });
    }
    const fieldInjectionRules = injectionRules.filter(forField);
    if (fieldInjectionRules.length > 0) {
      const scored = detectors.scoreInjection(field.encoding === 'json' ? jsonProse(field.text) : field.text);
      for (const rule of fieldInjectionRules) {
        if (scored.score >= rule.threshold) decisions.push(injectionDecision(rule, scored, field));
      }
    }
  }

  const action = verdict(decisions);
  const evaluation: InputEvaluation = { decisions, action };
  if (action !== 'block' && masks.length > 0) evaluation.maskedBody = maskBody(request, masks, detectors, session);
  // Approvers judge the request, not the secrets in it; placeholders of their own, so nothing links to the forwarded text.
  if (action === 'require_approval') evaluation.reviewBody = detected.length > 0 ? maskBody(request, detected, detectors, createMaskingSession(policy)) : request.body;
  return evaluation;
}

/**
 * Token IDs or embeddings given as the prompt cannot be inspected, so they
 * are refused whenever anything would inspect the prompt: an input rule or a
 * prompt-size limit that applies to the caller and connection.
 */
function uninspectableDecision(policy: GuardrailsPolicy, rules: readonly InputRule[], input: GuardrailInput): Decision | undefined {
  const [at] = input.request.uninspectable;
  if (at === undefined) return undefined;
  const rule = rules[0]?.name ?? policy.limits.find((limit) => limit.max_prompt_chars !== undefined && appliesTo(limit, input))?.name;
  if (rule === undefined) return undefined;
  const param = formatPath(at);
  return {
    rule,
    action: 'block',
    param,
    reason: `\`${param}\` holds token IDs or embeddings, which guardrails cannot inspect; send the prompt as text`,
  };
}

/**
 * The prose of a free-form value for injection scoring: its strings, one per
 * line. Keys and JSON syntax are identifiers (`enable_thinking`), which an
 * injection classifier mistakes for instructions; entity detectors still
 * read them, keys included.
 */
function jsonProse(json: string): string {
  const lines: string[] = [];
  const visit = (value: unknown): void => {
    if (typeof value === 'string') lines.push(value);
    else if (Array.isArray(value)) value.forEach(visit);
    else if (isJsonObject(value)) Object.values(value).forEach(visit);
  };
  visit(JSON.parse(json) as unknown);
  return lines.join('\n');
}

/** The strongest action among the decisions, as the request's fate. */
function verdict(decisions: readonly Decision[]): InputVerdict {
  let rank = -1;
  for (const d of decisions) if (d.action in ACTION_RANK) rank = Math.max(rank, ACTION_RANK[d.action as keyof typeof ACTION_RANK]);
  return rank === ACTION_RANK.block ? 'block' : rank === ACTION_RANK.require_approval ? 'require_approval' : 'allow';
}

/** The decision that decided a refusal: the first block, else the first require_approval. */
export function decidingDecision(evaluation: InputEvaluation): Decision | undefined {
  if (evaluation.action === 'allow') return undefined;
  return evaluation.decisions.find((d) => d.action === evaluation.action);
}

/**
 * The client's error for a blocked request, naming the rule. Limits are the
 * caller's to fix (400 with the parameter); detections are policy (403).
 */
export function guardrailError(evaluation: InputEvaluation): GatewayError | undefined {
  if (evaluation.action !== 'block') return undefined;
  const decision = decidingDecision(evaluation)!;
  const message = `Blocked by guardrail rule "${decision.rule}": ${decision.reason}.`;
  if (evaluation.uninspectable !== undefined) {
    return new GatewayError(message, { status: 400, type: 'invalid_request_error', code: 'uninspectable_prompt', param: evaluation.uninspectable });
  }
  if (decision.type === undefined) {
    return new GatewayError(message, { status: 400, type: 'invalid_request_error', code: 'guardrail_limit', ...(decision.param !== undefined && { param: decision.param }) });
  }
  return new GatewayError(message, {
    status: 403,
    type: 'permission_error',
    code: 'guardrail_blocked',
    ...(decision.span !== undefined && { param: formatPath(decision.span.path) }),
  });
}

/** What output masking does for this caller and connection; undefined when no output rule applies. */
export function outputRulesFor(policy: GuardrailsPolicy, subject: GuardrailSubject): SpanRules | undefined {
  const rules = policy.output.filter((rule) => appliesTo(rule, subject));
  if (rules.length === 0) return undefined;
  return (span) => {
    // Ending the response outranks masking, whichever rule comes first.
    const ending = rules.find((rule) => rule.end_stream_on?.some((s) => selects(s, span)));
    if (ending) return { action: 'end_stream', rule: ending.name };
    const masking = rules.find((rule) => rule.mask?.types.some((s) => selects(s, span)));
    if (masking?.mask) return { action: 'mask', rule: masking.name, strategy: strategyFor(masking.mask.strategy, policy) };
    return undefined;
  };
}

export function strategyFor(name: MaskStrategyName, policy: GuardrailsPolicy): MaskStrategy {
  switch (name) {
    case 'placeholder':
      return { kind: 'placeholder' };
    case 'partial':
      return { kind: 'partial', keepLast: policy.masking.keep_last };
    case 'hash':
      return { kind: 'hash', length: policy.masking.hash_length };
  }
}

function appliesTo(rule: { connections?: string[] | undefined; groups?: string[] | undefined }, subject: GuardrailSubject): boolean {
  if (rule.connections && !rule.connections.includes('*') && !rule.connections.includes(subject.connection)) return false;
  if (rule.groups && !rule.groups.some((group) => subject.principal.groups.includes(group))) return false;
  return true;
}

export function selects(selector: Selector, span: Span): boolean {
  switch (selector.kind) {
    case 'type':
      return span.type === selector.type;
    case 'category':
      return categoryOf(span.type) === selector.category;
    case 'rule':
      return span.rule === selector.rule || span.rule.startsWith(`${selector.rule}.`);
    case 'injection':
      return false;
  }
}

const ruleSelects = (rule: InputRule, span: Span): boolean => span.confidence >= rule.min_confidence && rule.detect.some((s) => selects(s, span));

const reviewMaskRules: SpanRules = (span) => ({ action: 'mask', rule: span.rule, strategy: { kind: 'placeholder' } });

function inputMaskRules(rules: readonly InputRule[], policy: GuardrailsPolicy): SpanRules {
  return (span) => {
    const rule = rules.find((r) => ruleSelects(r, span));
    return rule ? { action: 'mask', rule: rule.name, strategy: strategyFor(rule.strategy, policy) } : undefined;
  };
}

function entityDecision(rule: InputRule, span: Span, field: TextField): Decision {
  return {
    rule: rule.name,
    action: rule.action,
    type: span.type,
    span: { path: field.path, start: span.start, end: span.end },
    confidence: span.confidence,
    reason: `${article(span.type)} ${span.type} (${span.rule}${span.validator ? `, ${span.validator}` : ''}) in ${formatPath(field.path)}`,
  };
}

function injectionDecision(rule: InputRule, scored: InjectionScore, field: TextField): Decision {
  const strongest = scored.signals.reduce<InjectionSignal | undefined>((best, s) => (best === undefined || s.weight > best.weight ? s : best), undefined);
  const why = scored.signals.map((s) => `${s.rule}: ${s.reason}`).join('; ');
  return {
    rule: rule.name,
    action: rule.action,
    type: 'PROMPT_INJECTION',
    // In a free-form value the offsets are into its prose, not its JSON: the whole field is the evidence.
    span: field.encoding === 'json' ? { path: field.path, start: 0, end: field.text.length } : { path: field.path, start: strongest?.start ?? 0, end: strongest?.end ?? field.text.length },
    confidence: scored.score,
    reason: `prompt-injection score ${scored.score.toFixed(2)} (threshold ${rule.threshold}) in ${formatPath(field.path)}${why ? ` — ${why}` : ''}`,
  };
}

const article = (type: EntityType): string => (/^[AEIOU]/.test(type) ? 'an' : 'a');

// ---- limits ----------------------------------------------------------------

/** Where each dialect puts the output-token cap. */
const MAX_TOKEN_PARAMS: ReadonlyArray<readonly string[]> = [['max_tokens'], ['max_completion_tokens'], ['max_output_tokens'], ['options', 'num_predict']];

function checkLimits(rule: LimitRule, request: ModelRequest): Decision[] {
  const decisions: Decision[] = [];
  const block = (reason: string, param?: string): void => {
    decisions.push({ rule: rule.name, action: 'block', reason, ...(param !== undefined && { param }) });
  };
  if (rule.max_prompt_chars !== undefined) {
    const chars = request.fields.reduce((sum, field) => sum + field.text.length, 0);
    if (chars > rule.max_prompt_chars) block(`the prompt has ${chars} characters; at most ${rule.max_prompt_chars} are allowed`);
  }
  if (rule.max_tokens !== undefined) {
    for (const path of MAX_TOKEN_PARAMS) {
      const requested = getAtPath(request.body, path);
      if (typeof requested === 'number' && requested > rule.max_tokens) {
        block(`\`${path.join('.')}\` is ${requested}; at most ${rule.max_tokens} is allowed`, path.join('.'));
      }
    }
  }
  const params = paramNames(request);
  if (rule.allowed_params !== undefined) {
    const allowed = new Set(rule.allowed_params);
    for (const param of params) {
      const allowedAsGroup = param.startsWith('options.') && allowed.has('options');
      if (!allowed.has(param) && !allowedAsGroup) block(`the parameter \`${param}\` is not allowed`, param);
    }
  }
  if (rule.denied_params !== undefined) {
    const denied = new Set(rule.denied_params);
    for (const param of params) {
      const deniedAsGroup = param.startsWith('options.') && denied.has('options');
      if (denied.has(param) || deniedAsGroup) block(`the parameter \`${param}\` is not allowed`, param);
    }
  }
  return decisions;
}

/** The parameters a request sets: top-level ones, `tools` when given, and Ollama's `options.<name>`. */
function paramNames(request: ModelRequest): string[] {
  const names: string[] = [];
  for (const [key, value] of Object.entries(request.params)) {
    if (value === undefined || value === null) continue;
    if (key === 'options' && request.dialect === 'ollama' && isJsonObject(value)) {
      for (const option of Object.keys(value)) names.push(`options.${option}`);
    } else {
      names.push(key);
    }
  }
  if (request.tools.length > 0) names.push('tools');
  return names;
}

// ---- masking the prompt ------------------------------------------------------

function maskBody(
  request: ModelRequest,
  masks: ReadonlyArray<{ field: TextField; spans: Span[]; rules: SpanRules }>,
  detectors: InputDetectors,
  session: MaskingSession,
): Record<string, unknown> {
  const body = structuredClone(request.body);
  for (const { field, spans, rules } of masks) {
    const original = getAtPath(body, field.path);
    if (field.encoding === 'json' && (isJsonObject(original) || Array.isArray(original))) {
      // A free-form value (schema, metadata, Ollama tool arguments) whose JSON text was inspected, keys included.
      setAtPath(body, field.path, maskJsonValue(original, (text) => maskText(text, text === field.text ? spans : detectors.scan(text), session, rules).text));
    } else {
      setAtPath(body, field.path, maskText(field.text, spans, session, rules).text);
    }
  }
  return body;
}

/**
 * A JSON value with `mask` applied to its JSON text. When a span ended inside
 * an escape sequence and the result no longer parses, each key and string is
 * masked on its own instead.
 */
function maskJsonValue(value: unknown, mask: (text: string) => string): unknown {
  const json = JSON.stringify(value);
  const masked = mask(json);
  if (masked === json) return value;
  try {
    return JSON.parse(masked) as unknown;
  } catch {
    return maskLeaves(value, mask);
  }
}

function maskLeaves(value: unknown, mask: (text: string) => string): unknown {
  if (typeof value === 'string') return mask(value);
  if (Array.isArray(value)) return value.map((item) => maskLeaves(item, mask));
  if (isJsonObject(value)) return Object.fromEntries(Object.entries(value).map(([key, item]) => [mask(key), maskLeaves(item, mask)]));
  return value;
}
