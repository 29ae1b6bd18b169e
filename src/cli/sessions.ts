// `modelgate sessions ...`: search, read, replay, export and manage recorded
// sessions, straight from the audit store named in the gateway's config.
import { hostname, userInfo } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { openReviewStore, redactRequesterReviews } from '../approvals/review-store.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { AuditConfigError, loadAuditSettings, type AuditSettings } from '../audit/config.js';
import { SearchQueryError } from '../audit/search.js';
import { parseTimeBound, SearchUnavailableError, SessionArchive, type SessionDetail, type SessionFilter } from '../audit/sessions.js';
import { openStore, SessionStateError, type DecisionFilter, type SessionRow } from '../audit/store.js';
import { configOption, UsageError, type Command } from './command.js';
import { EXIT_CONFIG } from './gateway.js';
import { paint } from './paint.js';
import { printable } from './terminal-text.js';

const SUBCOMMANDS = ['list', 'show', 'replay', 'export', 'redact', 'delete', 'hold'] as const;
type Subcommand = (typeof SUBCOMMANDS)[number];

type Values = Record<string, string | boolean | undefined>;

/** `--config` of the commands that read only the audit sections (sessions, audit, usage). */
export const auditConfigOption = configOption('Gateway configuration file (only storage, recording and connections[].recording are read)');

/** Loads the audit sections of the config and opens the store; null (after printing why) on a bad config. */
export async function openArchive(values: Values): Promise<{ archive: SessionArchive; settings: AuditSettings } | null> {
  let settings: AuditSettings;
  try {
    settings = (await devStateSettings(values)) ?? (await loadAuditSettings(String(values.config)));
  } catch (err) {
    if (!(err instanceof AuditConfigError)) throw err;
    console.error(`modelgate: ${err.message}`);
    return null;
  }
  const store = await openStore(settings.storage);
  return { archive: new SessionArchive(store, settings.recording, settings.connections), settings };
}

/** Where `modelgate dev` keeps its state by default (its --data-dir). */
const DEV_DATA_DIR = '.modelgate';

/**
 * Under `modelgate dev` there is no config file: when none was named and
 * the default one does not exist, read the dev state in ./.modelgate/.
 */
async function devStateSettings(values: Values): Promise<AuditSettings | undefined> {
  if (values.config !== auditConfigOption.default || existsSync(String(values.config))) return undefined;
  if (!existsSync(join(DEV_DATA_DIR, 'modelgate.db'))) return undefined;
  const { devConfig } = await import('../dev/dev-config.js');
  const config = devConfig({ host: '127.0.0.1', port: 0, issuer: 'http://127.0.0.1', modelUrl: 'http://127.0.0.1', dataDir: DEV_DATA_DIR });
  console.error(`modelgate: no ${String(values.config)} here; reading the modelgate dev state in ${DEV_DATA_DIR}/ (name a file with --config to read another).`);
  return {
    storage: config.storage,
    recording: config.recording,
    connections: new Map(config.connections.flatMap((c) => (c.recording ? [[c.name, c.recording] as const] : []))),
  };
}

/** The subject's approval reviews live in the same database as the trail: erasure reaches them too. */
async function redactReviews(settings: AuditSettings, subject: string, issuer: string | undefined): Promise<string[]> {
  const store = await openReviewStore(settings.storage);
  try {
    return await redactRequesterReviews(store, subject, issuer);
  } finally {
    await store.close();
  }
}

/** Who ran the command, as recorded in redaction, deletion and hold events. */
export function cliActor(): string {
  return `cli:${userInfo().username}@${hostname()}`;
}

function time(values: Values, key: string): number | undefined {
  const value = values[key];
  if (typeof value !== 'string') return undefined;
  const parsed = parseTimeBound(value, Date.now());
  if (parsed === undefined) throw new UsageError(`--${key} "${value}" is not a time: use ISO 8601 (2025-01-31T12:00Z), epoch ms, or a duration ago (24h, 7d)`);
  return parsed;
}

function filterFrom(values: Values): SessionFilter {
  const decision = values.decision as string | undefined;
  if (decision !== undefined && !['blocked', 'masked', 'approved', 'flagged'].includes(decision)) throw new UsageError('--decision must be blocked, masked, approved or flagged');
  const limit = values.limit === undefined ? undefined : Number(values.limit);
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) throw new UsageError('--limit must be a positive whole number');
  return {
    user: values.user as string | undefined,
    subject: values.subject as string | undefined,
    issuer: values.issuer as string | undefined,
    group: values.group as string | undefined,
    connection: values.connection as string | undefined,
    model: values.model as string | undefined,
    since: time(values, 'since'),
    until: time(values, 'until'),
    decision: decision as DecisionFilter | undefined,
    state: values.state as SessionRow['state'] | undefined,
    text: values.text as string | undefined,
    limit,
    cursor: values.cursor as string | undefined,
  };
}

function flags(s: SessionRow): string {
  return [s.blocked ? 'B' : '-', s.masked ? 'M' : '-', s.approved ? 'A' : '-', s.redacted ? 'R' : '-', s.legal_hold ? 'H' : '-'].join('');
}

function stateLabel(s: SessionRow): string {
  if (s.state === 'completed') return paint.green(s.state);
  if (s.state === 'open') return paint.cyan(s.state);
  return paint.red(s.state);
}

function printList(sessions: SessionRow[]): void {
  if (sessions.length === 0) {
    console.log('no sessions match');
    return;
  }
  console.log(paint.dim('time                      id                                      user                      connection/model            state            status  flags  ms'));
  for (const s of sessions) {
    const user = s.email ?? s.subject;
    console.log(
      [
        new Date(s.received_at).toISOString().padEnd(25),
        s.id.padEnd(39),
        user.slice(0, 25).padEnd(25),
        `${s.connection ?? '-'}/${s.model}`.slice(0, 27).padEnd(27),
        stateLabel(s) + ' '.repeat(Math.max(1, 16 - s.state.length)),
        String(s.status ?? '-').padEnd(7),
        flags(s).padEnd(6),
        String(s.latency_ms ?? '-'),
      ].join(' '),
    );
  }
}

function printDetail(d: SessionDetail): void {
  const s = d.session;
  console.log(paint.bold(`session ${s.id}`));
  console.log(`  time        ${new Date(s.received_at).toISOString()}`);
  console.log(`  user        ${s.subject}${s.email ? ` <${s.email}>` : ''} (${s.issuer})`);
  console.log(`  groups      ${s.groups.join(', ') || '-'}`);
  console.log(`  client      ${s.client_ip ?? '-'}  ${s.user_agent ?? ''}`);
  console.log(`  route       ${s.connection ?? '-'} / ${s.model} (${s.operation}${s.stream ? ', streamed' : ''})`);
  console.log(`  outcome     ${stateLabel(s)} ${s.status ?? ''}${s.error_code ? ` ${s.error_code}` : ''}`);
  console.log(`  timing      ttft ${s.ttft_ms ?? '-'} ms, total ${s.latency_ms ?? '-'} ms`);
  if (s.total_tokens !== null) console.log(`  tokens      ${s.prompt_tokens ?? '-'} in, ${s.completion_tokens ?? '-'} out${s.estimated ? ' (estimated: the model server reported none)' : ''}`);
  console.log(`  flags       ${flags(s)} (blocked masked approved redacted hold)`);
  if (d.limit) console.log(`  limit       ${printable(d.limit.limit)} refused it (${d.limit.kind ?? 'limit store unreachable'}${d.limit.scope ? `, ${printable(d.limit.scope)}` : ''}${d.limit.resets_at ? `, resets ${d.limit.resets_at}` : ''})`);
  if (!s.bodies) console.log(paint.dim('  bodies are not recorded for this connection'));
  const request = d.forwarded?.body ?? d.request.body;
  if (d.request.error) console.log(paint.red(`  request unreadable: ${d.request.error}`));
  if (request !== undefined) {
    console.log(paint.bold('\nrequest') + (d.forwarded && d.forwarded.body !== undefined ? paint.dim(' (as forwarded)') : ''));
    console.log(printable(typeof request === 'string' ? request : JSON.stringify(request, null, 2)));
  }
  for (const decision of d.decisions) {
    console.log(
      `${paint.bold('decision')} ${decision.direction} ${decision.action} ${decision.rule}${decision.entity ? ` ${decision.entity}` : ''}${decision.field ? ` at ${decision.field}` : ''}${decision.span ? ` [${decision.span.start},${decision.span.end})` : ''}${decision.excerpt_text !== undefined ? `: ${printable(JSON.stringify(decision.excerpt_text))}` : ''}`,
    );
  }
  for (const approval of d.approvals) console.log(`${paint.bold('approval')} ${approval.review_id} ${approval.outcome}${approval.approver ? ` by ${approval.approver}` : ''}${approval.comment_text ? `: ${printable(approval.comment_text)}` : ''}`);
  if (d.response.error) console.log(paint.red(`  response unreadable: ${d.response.error}`));
  if (d.response.chunks.length > 0) {
    console.log(paint.bold('\nresponse') + paint.dim(` (${d.response.chunks.length} chunk(s)${d.response.truncated ? ', truncated' : ''})`));
    console.log(printable(d.response.text || d.response.chunks.map((c) => c.raw ?? '').join('')));
  }
  if (d.end?.reason) console.log(paint.dim(`\n${d.end.reason}`));
}

async function replay(archive: SessionArchive, id: string, speed: number): Promise<number> {
  const r = await archive.replay(id);
  if (!r) {
    console.error(`modelgate sessions: no session "${id}"`);
    return 1;
  }
  const out = process.stdout;
  out.write(paint.dim(`${new Date(r.session.received_at).toISOString()}  ${r.session.email ?? r.session.subject} → ${r.session.connection ?? '-'}/${r.session.model}\n\n`));
  for (const turn of r.prompt) out.write(`${paint.cyan(`${printable(turn.role)}:`)} ${printable(turn.text)}\n`);
  out.write(`${paint.green('assistant:')} `);
  const started = performance.now();
  for (const chunk of r.chunks) {
    if (speed > 0) {
      const due = chunk.offset_ms / speed - (performance.now() - started);
      if (due > 0) await sleep(due);
    }
    out.write(chunk.raw === null ? paint.dim(`[${chunk.size} bytes not recorded]`) : printable(chunk.text));
  }
  const end = r.end;
  out.write(`\n\n${paint.dim(end ? `${end.state} ${end.status}${end.error_code ? ` ${end.error_code}` : ''}, ${end.latency_ms ?? '?'} ms` : 'session still open')}\n`);
  return 0;
}

export const sessionsCommand: Command = {
  name: 'sessions',
  summary: 'Search, show, replay, export, redact, delete and hold recorded sessions.',
  usage: [
    'modelgate sessions list [--user U] [--group G] [--connection C] [--model M] [--since T] [--until T] [--decision blocked|masked|approved|flagged] [--text S] [--json]',
    '       modelgate sessions show ID [--json]',
    '       modelgate sessions replay ID [--speed N]',
    '       modelgate sessions export --since T [--until T] [--format jsonl] [--metadata-only]',
    '       modelgate sessions redact (ID | --subject S [--issuer I] | --pattern P [filters]) [--reason R]',
    '       modelgate sessions delete ID... [--reason R]',
    '       modelgate sessions hold ID [--release] [--reason R]',
  ].join('\n'),
  options: {
    config: auditConfigOption,
    user: { type: 'string', description: 'Subject or email', valueName: 'user' },
    subject: { type: 'string', description: 'Subject (redact: right to erasure)', valueName: 'sub' },
    issuer: { type: 'string', description: 'Issuer URL, to tell subjects of two IdPs apart', valueName: 'url' },
    group: { type: 'string', description: 'Sessions of members of this group', valueName: 'group' },
    connection: { type: 'string', description: 'Connection name', valueName: 'name' },
    model: { type: 'string', description: 'Model name', valueName: 'name' },
    since: { type: 'string', description: 'From this time: ISO 8601, epoch ms, or ago (24h, 7d)', valueName: 'time' },
    until: { type: 'string', description: 'Before this time', valueName: 'time' },
    decision: { type: 'string', description: 'Only sessions with a blocked, masked, approved or flagged decision', valueName: 'kind' },
    state: { type: 'string', description: 'completed, aborted, upstream_failed, refused, incomplete or open', valueName: 'state' },
    text: { type: 'string', short: 'q', description: 'Full-text search in stored prompts and answers: words, "phrases", prefix* (not when recording encryption is on)', valueName: 'text' },
    limit: { type: 'string', description: 'Sessions per page (list)', valueName: 'n' },
    cursor: { type: 'string', description: 'Continue a previous list', valueName: 'cursor' },
    json: { type: 'boolean', description: 'Machine-readable output' },
    speed: { type: 'string', description: 'Replay speed factor; 0 prints at once', valueName: 'n', default: '1' },
    format: { type: 'string', description: 'Export format', valueName: 'jsonl', default: 'jsonl' },
    'metadata-only': { type: 'boolean', description: 'Export without bodies and chunks' },
    pattern: { type: 'string', description: 'Redact matches of this regular expression (RE2 syntax)', valueName: 'regex' },
    reason: { type: 'string', description: 'Why: recorded in the audit trail', valueName: 'text' },
    release: { type: 'boolean', description: 'hold: release the legal hold' },
  },
  async run(values, positionals) {
    const [sub, ...args] = positionals;
    if (!sub || !(SUBCOMMANDS as readonly string[]).includes(sub)) {
      throw new UsageError(`choose one of: ${SUBCOMMANDS.join(', ')}`);
    }
    const needsId = ['show', 'replay', 'hold'].includes(sub);
    if (needsId && args.length !== 1) throw new UsageError(`${sub} takes exactly one session ID`);
    if (sub === 'delete' && args.length === 0) throw new UsageError('delete takes one or more session IDs');
    const speed = Number(values.speed);
    if (!(speed >= 0)) throw new UsageError('--speed must be a number >= 0');
    if (sub === 'export' && values.format !== 'jsonl') throw new UsageError('--format: only jsonl is supported');
    const filter = filterFrom(values);
    if (sub === 'export' && filter.since === undefined) throw new UsageError('export needs --since');
    if (sub === 'redact' && args.length === 0 && values.subject === undefined && values.pattern === undefined) {
      throw new UsageError('redact needs session IDs, --subject or --pattern');
    }

    const opened = await openArchive(values);
    if (!opened) return EXIT_CONFIG;
    const { archive } = opened;
    try {
      return await runSubcommand(sub as Subcommand, opened, values, args, filter, speed);
    } catch (err) {
      if (err instanceof SessionStateError || err instanceof SearchUnavailableError || err instanceof SearchQueryError) {
        console.error(`modelgate sessions: ${err instanceof SearchQueryError ? `--text: ${err.message}` : err.message}`);
        return 1;
      }
      throw err;
    } finally {
      await archive.store.close();
    }
  },
};

async function runSubcommand(sub: Subcommand, { archive, settings }: { archive: SessionArchive; settings: AuditSettings }, values: Values, args: string[], filter: SessionFilter, speed: number): Promise<number> {
  const reason = values.reason as string | undefined;
  switch (sub) {
    case 'list': {
      const page = await archive.list(filter);
      if (values.json) console.log(JSON.stringify({ sessions: page.sessions, next_cursor: page.next ?? null }, null, 2));
      else {
        printList(page.sessions);
        if (page.next) console.log(paint.dim(`more: --cursor ${page.next}`));
      }
      return 0;
    }
    case 'show': {
      const detail = await archive.show(args[0]!);
      if (!detail) {
        console.error(`modelgate sessions: no session "${args[0]}"`);
        return 1;
      }
      if (values.json) console.log(JSON.stringify(detail, null, 2));
      else printDetail(detail);
      return 0;
    }
    case 'replay':
      return replay(archive, args[0]!, speed);
    case 'export': {
      for await (const record of archive.export({ since: filter.since!, until: filter.until, content: !values['metadata-only'] })) {
        if (!process.stdout.write(`${JSON.stringify(record)}\n`)) await new Promise((resolve) => process.stdout.once('drain', resolve));
      }
      return 0;
    }
    case 'redact': {
      const bySubject = values.subject !== undefined && values.pattern === undefined;
      if (args.length > 0 && values.pattern === undefined) {
        for (const id of args) await archive.redactSession(id, cliActor(), reason);
        console.log(`redacted ${args.length} session(s)`);
        return 0;
      }
      const outcome = bySubject
        ? { ...(await archive.redactSubject(String(values.subject), values.issuer as string | undefined, cliActor(), reason)), reviews_redacted: await redactReviews(settings, String(values.subject), values.issuer as string | undefined) }
        : await archive.redactPattern(String(values.pattern), args.length > 0 ? { ids: args } : { filter }, cliActor(), reason);
      if (values.json) console.log(JSON.stringify(outcome, null, 2));
      else {
        console.log(`redacted ${outcome.redacted.length} session(s)`);
        if ('reviews_redacted' in outcome && outcome.reviews_redacted.length > 0) console.log(`redacted ${outcome.reviews_redacted.length} approval review(s)`);
        if (outcome.held.length > 0) console.log(`kept ${outcome.held.length} on legal hold: ${outcome.held.join(' ')}`);
        if (outcome.open.length > 0) console.log(`skipped ${outcome.open.length} still in progress: ${outcome.open.join(' ')}`);
      }
      return 0;
    }
    case 'delete': {
      const outcome = await archive.delete(args, cliActor(), reason);
      if (values.json) console.log(JSON.stringify(outcome, null, 2));
      else {
        console.log(`deleted ${outcome.deleted.length} session(s)`);
        if (outcome.held.length > 0) console.log(`kept ${outcome.held.length} on legal hold: ${outcome.held.join(' ')}`);
        if (outcome.open.length > 0) console.log(`kept ${outcome.open.length} still in progress: ${outcome.open.join(' ')}`);
      }
      const missing = args.length - outcome.deleted.length - outcome.held.length - outcome.open.length;
      return missing > 0 || outcome.held.length > 0 || outcome.open.length > 0 ? 1 : 0;
    }
    case 'hold': {
      await archive.setLegalHold(args[0]!, !values.release, cliActor(), reason);
      console.log(`${values.release ? 'released the legal hold on' : 'placed a legal hold on'} ${args[0]}`);
      return 0;
    }
  }
}
