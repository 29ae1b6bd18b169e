// `modelgate reviews ...`: approvers list, read and decide the reviews the
// gateway is waiting on (held prompts and access requests), through its
// reviews API and with their own identity.
import type { ReviewKind, ReviewState } from '../approvals/review.js';
import { UsageError, type Command, type OptionValues as Values } from './command.js';
import { gatewayApiOptions, withGatewayApi, type GatewayApi } from './gateway-api.js';
import { paint } from './paint.js';
import { printable } from './terminal-text.js';
import { isoTime, printTable, rejection, REVIEW_STATES, reviewPath, span, stateLabel, tally, voteLine, who, type ReviewList, type ReviewView } from './review-view.js';

const SUBCOMMANDS = ['list', 'show', 'approve', 'reject'] as const;
const KINDS: readonly ReviewKind[] = ['prompt', 'access'];

export const reviewsCommand: Command = {
  name: 'reviews',
  summary: 'List, show, approve and reject the reviews the gateway is waiting on.',
  usage: [
    'modelgate reviews list [--state pending|approved|rejected|expired|cancelled|executed] [--kind prompt|access] [--all] [--json]',
    '       modelgate reviews show ID [--json]',
    '       modelgate reviews approve ID [--comment TEXT] [--json]',
    '       modelgate reviews reject ID [--comment TEXT] [--json]',
  ].join('\n'),
  options: {
    ...gatewayApiOptions,
    state: { type: 'string', description: 'list: only reviews in this state (default: pending)', valueName: 'state' },
    kind: { type: 'string', description: 'list: only prompt or access reviews', valueName: 'kind' },
    all: { type: 'boolean', description: 'list: reviews in every state' },
    limit: { type: 'string', description: 'list: at most this many, newest first', valueName: 'n', default: '100' },
    comment: { type: 'string', short: 'm', description: 'approve/reject: why, shown to the requester and kept with the review', valueName: 'text' },
  },
  async run(values, positionals) {
    const [sub, ...args] = positionals;
    if (!sub || !(SUBCOMMANDS as readonly string[]).includes(sub)) throw new UsageError(`choose one of: ${SUBCOMMANDS.join(', ')}`);
    if (sub === 'list') {
      if (args.length > 0) throw new UsageError(`list takes no arguments (got "${args.join(' ')}")`);
      const query = listQuery(values);
      return withGatewayApi('reviews', values, (api) => list(api, query, values));
    }
    if (args.length !== 1) throw new UsageError(`${sub} takes exactly one review ID`);
    if (sub === 'show' && values.comment !== undefined) throw new UsageError('--comment goes with approve or reject');
    const id = args[0]!;
    if (sub === 'show') return withGatewayApi('reviews', values, (api) => show(api, id, values));
    return withGatewayApi('reviews', values, (api) => decide(api, id, sub as 'approve' | 'reject', values));
  },
};

function listQuery(values: Values): string {
  const state = values.state as string | undefined;
  const kind = values.kind as string | undefined;
  if (state !== undefined && !REVIEW_STATES.includes(state as ReviewState)) throw new UsageError(`--state must be one of ${REVIEW_STATES.join(', ')}`);
  if (state !== undefined && values.all) throw new UsageError('--all and --state do not go together');
  if (kind !== undefined && !KINDS.includes(kind as ReviewKind)) throw new UsageError(`--kind must be ${KINDS.join(' or ')}`);
  const limit = Number(values.limit);
  if (!(Number.isInteger(limit) && limit >= 1 && limit <= 1000)) throw new UsageError('--limit must be a whole number from 1 to 1000');
  const params = new URLSearchParams();
  if (!values.all) params.set('state', state ?? 'pending');
  if (kind) params.set('kind', kind);
  params.set('limit', String(limit));
  return `/v1/reviews?${params}`;
}

async function list(api: GatewayApi, path: string, values: Values): Promise<number> {
  const page = await api.get<ReviewList>(path);
  if (values.json) {
    console.log(JSON.stringify(page.data, null, 2));
    return 0;
  }
  if (page.data.length === 0) {
    console.log(values.all || values.state ? 'no reviews match' : 'no pending reviews');
    return 0;
  }
  const now = Date.now();
  printTable(
    ['ID', 'KIND', 'REQUESTER', 'CONNECTION/MODEL', 'RULE', 'APPROVALS', 'AGE', 'STATE'],
    page.data.map((r) => [r.id, r.kind, who(r.requester), route(r), r.rule ?? '-', `${r.approvals}/${r.approvers.required}`, span(now - r.created_at), stateLabel(r.state)]),
  );
  return 0;
}

const route = (r: ReviewView): string => (r.model ? `${r.connection}/${r.model}` : r.connection);

async function show(api: GatewayApi, id: string, values: Values): Promise<number> {
  const r = await api.get<ReviewView>(reviewPath(id));
  if (values.json) {
    console.log(JSON.stringify(r, null, 2));
    return 0;
  }
  const now = Date.now();
  const field = (label: string, value: string) => console.log(`  ${label.padEnd(11)} ${value}`);
  console.log(paint.bold(`review ${r.id}`));
  field('kind', r.kind === 'prompt' ? 'prompt held for approval' : 'request for temporary access');
  field('state', `${stateLabel(r.state)} (${tally(r)} approvals)${r.state === 'rejected' ? `, ${rejection(r)}` : ''}`);
  field('requester', `${r.requester.subject}${r.requester.email ? ` <${r.requester.email}>` : ''} (${r.requester.issuer})`);
  field('groups', r.requester.groups.join(', ') || '-');
  field('route', r.kind === 'access' ? r.connection : `${route(r)}${r.operation ? ` (${r.operation}${r.stream ? ', streamed' : ''})` : ''}`);
  if (r.rule) field('rule', r.rule);
  field('reason', printable(r.reason));
  if (r.grant) field('grant', `${span(r.grant.duration_ms)}${r.grant.expires_at ? ` until ${isoTime(r.grant.expires_at)}${r.grant.expires_at <= now ? ' (over)' : ''}` : ' once approved'}`);
  field('created', `${isoTime(r.created_at)} (${span(now - r.created_at)} ago)`);
  if (r.state === 'pending') field('expires', `${isoTime(r.expires_at)} (in ${span(r.expires_at - now)})`);
  if (r.decided_at) field('decided', isoTime(r.decided_at));
  field('approvers', `${r.approvers.groups.join(' or ')} (${r.approvers.required} needed)`);
  if (r.session_id) field('session', r.session_id);
  if (r.executed_session_id) field('executed', `${r.executed_session_id}${r.executed_at ? ` at ${isoTime(r.executed_at)}` : ''}`);
  field('url', r.url);
  if (r.prompt !== undefined) {
    console.log(`\n${paint.bold('prompt')} ${paint.dim('(as approvers see it: detected entities masked)')}`);
    for (const line of promptLines(r.prompt)) console.log(`  ${line}`);
  }
  if (r.votes.length > 0) {
    console.log(`\n${paint.bold('votes')}`);
    for (const v of r.votes) console.log(`  ${voteLine(v)}`);
  }
  if (r.can_decide) console.log(paint.dim(`\nmodelgate reviews approve ${r.id} --comment "..."   or   modelgate reviews reject ${r.id} --comment "..."`));
  return 0;
}

async function decide(api: GatewayApi, id: string, action: 'approve' | 'reject', values: Values): Promise<number> {
  const comment = typeof values.comment === 'string' ? values.comment : undefined;
  const r = await api.post<ReviewView>(`${reviewPath(id)}/${action}`, comment === undefined ? {} : { comment });
  if (values.json) console.log(JSON.stringify(r, null, 2));
  else if (r.state === 'pending') console.log(`${r.id}: ${tally(r)} approvals; still pending`);
  else if (r.state === 'rejected') console.log(`${r.id}: ${stateLabel('rejected')}`);
  else console.log(`${r.id}: ${stateLabel(r.state)} (${tally(r)})${r.grant?.expires_at ? `; access to ${r.connection} until ${isoTime(r.grant.expires_at)}` : ''}`);
  return 0;
}

/** The request body approvers review, as readable lines: one per message for chat, the text for the other APIs. */
export function promptLines(prompt: unknown): string[] {
  if (typeof prompt !== 'object' || prompt === null) return [printable(String(prompt))];
  const body = prompt as Record<string, unknown>;
  const lines: string[] = [];
  if (typeof body.model === 'string') lines.push(paint.dim(`model: ${body.model}`));
  const turn = (role: string, text: string) => lines.push(`${paint.cyan(`${printable(role)}:`)} ${printable(text).replace(/\n/g, '\n    ')}`);
  if (typeof body.system === 'string') turn('system', body.system);
  if (typeof body.instructions === 'string') turn('instructions', body.instructions);
  if (Array.isArray(body.messages)) for (const m of body.messages) turn(roleOf(m), messageText(m));
  for (const key of ['prompt', 'input'] as const) {
    const value = body[key];
    if (value === undefined) continue;
    if (typeof value === 'string') turn(key, value);
    else if (Array.isArray(value)) for (const item of value) typeof item === 'string' ? turn(key, item) : turn(roleOf(item, key), messageText(item));
    else turn(key, JSON.stringify(value));
  }
  return lines.length > (typeof body.model === 'string' ? 1 : 0) ? lines : printable(JSON.stringify(prompt, null, 2)).split('\n');
}

const roleOf = (m: unknown, fallback = 'message'): string =>
  typeof m === 'object' && m !== null && typeof (m as { role?: unknown }).role === 'string' ? (m as { role: string }).role : fallback;

function messageText(m: unknown): string {
  if (typeof m !== 'object' || m === null) return JSON.stringify(m);
  const { content, tool_calls: toolCalls } = m as { content?: unknown; tool_calls?: unknown };
  const parts: string[] = [];
  if (typeof content === 'string') parts.push(content);
  else if (Array.isArray(content)) {
    for (const part of content) {
      const p = part as { type?: string; text?: unknown };
      parts.push(typeof p?.text === 'string' ? p.text : `[${p?.type ?? 'part'}]`);
    }
  } else if (content != null) parts.push(JSON.stringify(content));
  if (Array.isArray(toolCalls)) {
    for (const call of toolCalls) {
      const fn = (call as { function?: { name?: string; arguments?: unknown } }).function;
      parts.push(paint.dim(`[tool call ${fn?.name ?? '?'}(${typeof fn?.arguments === 'string' ? fn.arguments : JSON.stringify(fn?.arguments ?? '')})]`));
    }
  }
  return parts.join(' ') || paint.dim('(empty)');
}
