// The policy HTTP API: the effective configuration, read-only, and a
// playground that runs the guardrails on a typed prompt without calling a
// model. Mounted by the gateway after it has authenticated the caller.
//
//   GET  /v1/policy        connections, access by group, rules and limits (auditors)
//   POST /v1/policy/test   {"prompt", "connection"?}: what the rules decide about it
//                          for the caller, and the masked text the model would get
//
// The playground runs as the caller (their groups pick the rules) on a
// connection they may use, so it tells nobody more than sending the prompt would.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isAuditor } from '../audit/api.js';
import type { Config } from '../config/schema.js';
import { badRequest, GatewayError, methodNotAllowed } from '../http/errors.js';
import { jsonObjectBody, optionalString } from '../http/read-json-body.js';
import { sendJson } from '../http/send.js';
import type { Principal } from '../identity/principal.js';
import { decideAccess } from '../policy/access.js';
import type { GuardrailEngine } from '../policy/guardrail-engine.js';
import { guardrailError } from '../policy/guardrails.js';
import type { Selector } from '../policy/guardrails-schema.js';
import { parseModelRequest } from '../protocol/parse-request.js';

export const POLICY_API_PATHS = ['/v1/policy', '/v1/policy/test'] as const;
const MAX_PROMPT_CHARS = 20_000;

export interface PolicyApiContext {
  config: Config;
  guardrails: GuardrailEngine;
  principal: Principal;
}

export function isPolicyApiPath(path: string): boolean {
  return (POLICY_API_PATHS as readonly string[]).includes(path);
}

export async function handlePolicyApi(req: IncomingMessage, res: ServerResponse, path: string, ctx: PolicyApiContext): Promise<void> {
  const method = req.method ?? 'GET';
  if (path === '/v1/policy') {
    if (method !== 'GET') throw methodNotAllowed('GET');
    if (!isAuditor(ctx.principal, ctx.config.recording.auditor_groups)) {
      throw new GatewayError('Only members of an auditor group may read the gateway configuration.', { status: 403, type: 'permission_error', code: 'auditor_required' });
    }
    return sendJson(res, 200, effectivePolicy(ctx.config));
  }
  if (method !== 'POST') throw methodNotAllowed('POST');
  const body = await jsonObjectBody(req, ctx.config.server.max_body_bytes);
  const prompt = optionalString(body, 'prompt');
  if (prompt === undefined || prompt.length === 0) throw badRequest('invalid_body', '"prompt" is required: the text to test.', 'prompt');
  if (prompt.length > MAX_PROMPT_CHARS) throw badRequest('invalid_body', `"prompt" is longer than ${MAX_PROMPT_CHARS} characters.`, 'prompt');
  const usable = ctx.config.connections.filter((c) => c.models.some((m) => decideAccess(ctx.config.access, ctx.principal, c.name, m.name).allowed));
  const name = optionalString(body, 'connection') ?? usable[0]?.name;
  const connection = usable.find((c) => c.name === name);
  if (!connection) {
    throw new GatewayError(name === undefined ? 'You may use no connection, so there is nothing to test against.' : `You may not use connection "${name}", or it does not exist.`, {
      status: 403,
      type: 'permission_error',
      code: 'connection_not_allowed',
      param: 'connection',
    });
  }
  sendJson(res, 200, testPrompt(ctx.guardrails, ctx.principal, connection.name, connection.models[0]!.name, prompt));
}

/** What the input rules decide about one user message, as `modelgate policy test --json` prints it. */
export function testPrompt(engine: GuardrailEngine, principal: Principal, connection: string, model: string, prompt: string) {
  const request = parseModelRequest('chat', { model, messages: [{ role: 'user', content: prompt }] });
  const evaluation = engine.inspect(principal, connection, request, engine.newSession());
  const forwarded = evaluation.maskedBody as { messages?: Array<{ content?: unknown }> } | undefined;
  return {
    object: 'policy.test',
    connection,
    verdict: evaluation.action,
    error: guardrailError(evaluation)?.toJSON().error,
    decisions: evaluation.decisions,
    /** The prompt as the model would receive it (masked), or null when nothing was changed. */
    masked_prompt: typeof forwarded?.messages?.[0]?.content === 'string' ? forwarded.messages[0].content : null,
  };
}

/** The configuration as people may read it: no upstream URLs, keys, credentials or hash secrets. */
function effectivePolicy(config: Config) {
  const g = config.guardrails;
  return {
    object: 'policy',
    connections: config.connections.map((c) => ({ name: c.name, kind: c.kind, models: c.models.map((m) => ({ name: m.name, aliases: m.aliases })) })),
    access: config.access.map((r) => ({ description: r.description ?? null, groups: r.groups, subjects: r.subjects, connections: r.connections, models: r.models })),
    input_rules: g.input.map((r) => ({
      name: r.name,
      description: r.description ?? null,
      detect: r.detect.map(selectorText),
      action: r.action,
      ...(r.action === 'mask' && { strategy: r.strategy }),
      ...(r.action === 'require_approval' && {
        approvers: r.approvers ?? config.approvals.approvers,
        required_approvals: r.required_approvals ?? config.approvals.required_approvals,
      }),
      connections: r.connections ?? ['*'],
      groups: r.groups ?? ['*'],
    })),
    output_rules: g.output.map((r) => ({
      name: r.name,
      description: r.description ?? null,
      mask: r.mask ? { types: r.mask.types.map(selectorText), strategy: r.mask.strategy } : null,
      end_stream_on: r.end_stream_on?.map(selectorText) ?? [],
      connections: r.connections ?? ['*'],
      groups: r.groups ?? ['*'],
    })),
    limits: g.limits,
    dictionaries: g.dictionaries.map((d) => ({ name: d.name, terms: d.terms.length })),
    approvals: { wait_ms: config.approvals.wait, approvers: config.approvals.approvers, required_approvals: config.approvals.required_approvals },
    recording: { enabled: config.recording.enabled, auditor_groups: config.recording.auditor_groups },
  };
}

function selectorText(s: Selector): string {
  switch (s.kind) {
    case 'type':
      return s.type;
    case 'category':
      return s.category;
    case 'rule':
      return s.rule;
    case 'injection':
      return 'injection';
  }
}
