// The sessions HTTP API, as a handler the gateway mounts after
// authenticating the caller. Everyone may read their own sessions (same
// issuer and subject); members of `recording.auditor_groups` read all, and
// only they may export, redact, hold or delete. Refusals are thrown as
// GatewayErrors, like every pipeline stage, for the gateway to send.
//
//   GET    /v1/sessions                 list (filters as query parameters)
//   GET    /v1/sessions/export          JSONL of events since a time (auditors)
//   POST   /v1/sessions/redact          by subject or pattern (auditors)
//   GET    /v1/sessions/:id             one session, decoded
//   GET    /v1/sessions/:id/replay      prompt and chunks with their offsets
//   GET    /v1/sessions/:id/verify      its hash-chain status: verified, broken (at which event), unverifiable
//   POST   /v1/sessions/:id/redact      whole session, or a pattern in it (auditors)
//   POST   /v1/sessions/:id/hold        {"hold": true|false, "reason"} (auditors)
//   DELETE /v1/sessions/:id             (auditors)
//
// Opening, replaying and exporting are recorded (`session.view`, with who
// did it) before anything is read: reading is itself audited.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { badRequest, GatewayError } from '../http/errors.js';
import { jsonObjectBody as jsonBody, optionalString } from '../http/read-json-body.js';
import { drained, sendJson } from '../http/send.js';
import { personIssuer, type Principal } from '../identity/principal.js';
import { SearchQueryError } from './search.js';
import { parseTimeBound, SearchUnavailableError, type SessionArchive, type SessionFilter } from './sessions.js';
import { SessionStateError, type DecisionFilter, type SessionRow } from './store.js';
import { verifySession } from './verify.js';

export const SESSIONS_API_PREFIX = '/v1/sessions';

export interface SessionsApiContext {
  archive: SessionArchive;
  principal: Principal;
  auditorGroups: readonly string[];
  /** Limit for POST bodies. */
  maxBodyBytes?: number;
  /** Erases the subject's content kept outside the trail (reviews); returns what it touched. */
  redactSubjectElsewhere?: (subject: string, issuer: string | undefined) => Promise<Record<string, string[] | undefined>>;
}

const DECISIONS: readonly DecisionFilter[] = ['blocked', 'masked', 'approved', 'flagged'];
const STATES: ReadonlyArray<SessionRow['state']> = ['open', 'completed', 'aborted', 'upstream_failed', 'refused', 'incomplete', 'shutdown'];

export function isSessionsApiPath(path: string): boolean {
  return path === SESSIONS_API_PREFIX || path.startsWith(`${SESSIONS_API_PREFIX}/`);
}

export function isAuditor(principal: Principal, auditorGroups: readonly string[]): boolean {
  return principal.groups.some((g) => auditorGroups.includes(g));
}

/**
 * The issuers under which a person's own sessions are recorded: the IdP that
 * vouched for them, whether they called with its token or with a gateway
 * token from a browser sign-in there (sessions are recorded under the IdP,
 * never under the gateway). Non-auditors see sessions and usage of these
 * issuers with their own subject, and nothing else.
 */
export function ownIssuers(principal: Principal): string[] {
  return [personIssuer(principal)];
}

/** Who did it, as recorded in redaction, deletion and legal-hold events: the person at their IdP, as sessions are. */
export function actorOf(principal: Principal): string {
  return `${personIssuer(principal)}#${principal.subject}${principal.email ? ` (${principal.email})` : ''}`;
}

const notFound = (id: string): GatewayError =>
  new GatewayError(`No session "${id}" exists, or you may not see it.`, { status: 404, type: 'not_found_error', code: 'session_not_found' });

const auditorsOnly = (what: string): GatewayError =>
  new GatewayError(`Only members of an auditor group may ${what}.`, { status: 403, type: 'permission_error', code: 'auditor_required' });

function stateError(err: unknown): never {
  if (err instanceof SessionStateError) {
    if (err.reason === 'not_found') throw notFound(err.sessionId);
    throw new GatewayError(`Session ${err.sessionId} ${err.reason === 'legal_hold' ? 'is on legal hold; release the hold first' : 'is still in progress'}.`, {
      status: 409,
      type: 'invalid_request_error',
      code: err.reason === 'legal_hold' ? 'session_on_legal_hold' : 'session_in_progress',
    });
  }
  throw err;
}


function filterFromQuery(query: URLSearchParams, now: number): SessionFilter {
  const time = (key: string): number | undefined => {
    const value = query.get(key);
    if (value === null) return undefined;
    const parsed = parseTimeBound(value, now);
    if (parsed === undefined) throw badRequest('invalid_time', `"${key}" must be an ISO 8601 time, epoch milliseconds, or a duration ago such as 24h.`, key);
    return parsed;
  };
  const decision = query.get('decision') ?? undefined;
  if (decision !== undefined && !DECISIONS.includes(decision as DecisionFilter)) {
    throw badRequest('invalid_decision', `"decision" must be one of ${DECISIONS.join(', ')}.`, 'decision');
  }
  const state = query.get('state') ?? undefined;
  if (state !== undefined && !STATES.includes(state as SessionRow['state'])) {
    throw badRequest('invalid_state', `"state" must be one of ${STATES.join(', ')}.`, 'state');
  }
  const limit = query.get('limit');
  if (limit !== null && !/^\d{1,4}$/.test(limit)) throw badRequest('invalid_limit', '"limit" must be a number from 1 to 1000.', 'limit');
  const filter: SessionFilter = {
    user: query.get('user') ?? undefined,
    subject: query.get('subject') ?? undefined,
    issuer: query.get('issuer') ?? undefined,
    group: query.get('group') ?? undefined,
    connection: query.get('connection') ?? undefined,
    model: query.get('model') ?? undefined,
    since: time('since'),
    until: time('until'),
    decision: decision as DecisionFilter | undefined,
    state: state as SessionRow['state'] | undefined,
    text: query.get('q') ?? undefined,
    limit: limit === null ? undefined : Number(limit),
    cursor: query.get('cursor') ?? undefined,
  };
  return filter;
}

/**
 * Serves the sessions API. Returns false when `req` is not for it. Throws a
 * GatewayError for refusals (before anything is written).
 */
export async function handleSessionsApi(req: IncomingMessage, res: ServerResponse, ctx: SessionsApiContext): Promise<boolean> {
  const url = new URL(req.url ?? '/', 'http://gateway');
  if (!isSessionsApiPath(url.pathname)) return false;
  const method = req.method ?? 'GET';
  const auditor = isAuditor(ctx.principal, ctx.auditorGroups);
  // One person, whether the session was made with their IdP's token or a gateway token from a browser sign-in there.
  const issuers = ownIssuers(ctx.principal);
  const mine = (s: SessionRow): boolean => issuers.includes(s.issuer) && s.subject === ctx.principal.subject;
  const segments = url.pathname.slice(SESSIONS_API_PREFIX.length).split('/').filter(Boolean).map(decodeURIComponent);
  const maxBody = ctx.maxBodyBytes ?? 64 * 1024;
  const allow = (...methods: string[]): void => {
    if (!methods.includes(method)) {
      throw new GatewayError(`Use ${methods.join(' or ')} for ${url.pathname}.`, {
        status: 405,
        type: 'invalid_request_error',
        code: 'method_not_allowed',
        headers: { allow: methods.join(', ') },
      });
    }
  };

  if (segments.length === 0) {
    allow('GET');
    const filter = filterFromQuery(url.searchParams, Date.now());
    if (!auditor) Object.assign(filter, { issuer: undefined, issuers, subject: ctx.principal.subject });
    const page = await listOrRefuse(ctx.archive, filter);
    sendJson(res, 200, { object: 'list', scope: auditor ? 'all' : 'own', data: page.sessions, has_more: page.next !== undefined, next_cursor: page.next ?? null });
    return true;
  }

  const [first, action, ...rest] = segments as [string, string | undefined, ...string[]];
  if (rest.length > 0) throw notFoundEndpoint(method, url.pathname);

  if (first === 'export' && action === undefined) {
    allow('GET');
    if (!auditor) throw auditorsOnly('export sessions');
    const since = url.searchParams.get('since');
    const sinceMs = since === null ? undefined : parseTimeBound(since, Date.now());
    if (sinceMs === undefined) throw badRequest('invalid_time', '"since" is required: an ISO 8601 time, epoch milliseconds, or a duration ago such as 24h.', 'since');
    const until = url.searchParams.get('until');
    const untilMs = until === null ? undefined : parseTimeBound(until, Date.now());
    if (until !== null && untilMs === undefined) throw badRequest('invalid_time', '"until" must be a time.', 'until');
    await ctx.archive.recordView(undefined, actorOf(ctx.principal), 'export', { since: sinceMs, until: untilMs });
    await streamExport(res, ctx.archive.export({ since: sinceMs, until: untilMs, content: url.searchParams.get('content') !== 'false' }));
    return true;
  }

  if (first === 'redact' && action === undefined) {
    allow('POST');
    if (!auditor) throw auditorsOnly('redact sessions');
    const body = await jsonBody(req, maxBody);
    const subject = optionalString(body, 'subject');
    const pattern = optionalString(body, 'pattern');
    const reason = optionalString(body, 'reason');
    if ((subject === undefined) === (pattern === undefined)) throw badRequest('invalid_body', 'Send exactly one of "subject" (right to erasure) or "pattern".');
    if (subject !== undefined) {
      const issuer = optionalString(body, 'issuer');
      const outcome = await ctx.archive.redactSubject(subject, issuer, actorOf(ctx.principal), reason);
      sendJson(res, 200, { ...outcome, ...(await ctx.redactSubjectElsewhere?.(subject, issuer)) });
      return true;
    }
    const outcome = await withPattern(() => ctx.archive.redactPattern(pattern!, { filter: filterFromQuery(url.searchParams, Date.now()) }, actorOf(ctx.principal), reason));
    sendJson(res, 200, outcome);
    return true;
  }

  const id = first;
  if (action === undefined && method === 'DELETE') {
    if (!auditor) throw auditorsOnly('delete sessions');
    const reason = optionalString(await jsonBody(req, maxBody), 'reason');
    const outcome = await ctx.archive.delete([id], actorOf(ctx.principal), reason);
    if (outcome.deleted.length === 0) {
      if (outcome.held.length > 0) stateError(new SessionStateError(id, 'legal_hold'));
      if (outcome.open.length > 0) stateError(new SessionStateError(id, 'open'));
      throw notFound(id);
    }
    sendJson(res, 200, { id, deleted: true });
    return true;
  }
  // Ownership is checked on the row before any content is read (and decrypted).
  const visible = async (): Promise<void> => {
    const session = await ctx.archive.store.getSession(id);
    if (!session || (!auditor && !mine(session))) throw notFound(id);
  };
  if (action === undefined) {
    allow('GET', 'DELETE');
    await visible();
    await ctx.archive.recordView(id, actorOf(ctx.principal), 'open');
    const detail = await ctx.archive.show(id);
    if (!detail) throw notFound(id);
    sendJson(res, 200, detail);
    return true;
  }
  if (action === 'replay') {
    allow('GET');
    await visible();
    await ctx.archive.recordView(id, actorOf(ctx.principal), 'replay');
    const replay = await ctx.archive.replay(id);
    if (!replay) throw notFound(id);
    sendJson(res, 200, replay);
    return true;
  }
  if (action === 'verify') {
    allow('GET');
    await visible();
    // Reads hashes and stored bytes only; no content leaves, so this is not recorded as a view.
    sendJson(res, 200, { id, ...(await verifySession(ctx.archive.store, id)) });
    return true;
  }
  if (action === 'redact') {
    allow('POST');
    if (!auditor) throw auditorsOnly('redact sessions');
    const body = await jsonBody(req, maxBody);
    const pattern = optionalString(body, 'pattern');
    const reason = optionalString(body, 'reason');
    try {
      if (pattern === undefined) await ctx.archive.redactSession(id, actorOf(ctx.principal), reason);
      else {
        const outcome = await withPattern(() => ctx.archive.redactPattern(pattern, { ids: [id] }, actorOf(ctx.principal), reason));
        if (outcome.held.includes(id)) throw new SessionStateError(id, 'legal_hold');
        if (outcome.open.includes(id)) throw new SessionStateError(id, 'open');
      }
    } catch (err) {
      stateError(err);
    }
    sendJson(res, 200, { id, redacted: true });
    return true;
  }
  if (action === 'hold') {
    allow('POST');
    if (!auditor) throw auditorsOnly('place legal holds');
    const body = await jsonBody(req, maxBody);
    if (body.hold !== undefined && typeof body.hold !== 'boolean') throw badRequest('invalid_body', '"hold" must be true or false.', 'hold');
    const hold = body.hold !== false;
    try {
      await ctx.archive.setLegalHold(id, hold, actorOf(ctx.principal), optionalString(body, 'reason'));
    } catch (err) {
      stateError(err);
    }
    sendJson(res, 200, { id, legal_hold: hold });
    return true;
  }
  throw notFoundEndpoint(method, url.pathname);
}

function notFoundEndpoint(method: string, path: string): GatewayError {
  return new GatewayError(`Unknown endpoint ${method} ${path}.`, { status: 404, type: 'not_found_error', code: 'unknown_endpoint' });
}

async function listOrRefuse(archive: SessionArchive, filter: SessionFilter): ReturnType<SessionArchive['list']> {
  try {
    return await archive.list(filter);
  } catch (err) {
    if (err instanceof RangeError) throw badRequest('invalid_cursor', '"cursor" is not one this API returned.', 'cursor');
    if (err instanceof SearchQueryError) throw badRequest('invalid_search', `"q": ${err.message}.`, 'q');
    if (err instanceof SearchUnavailableError) throw badRequest('search_unavailable', err.message, 'q');
    throw err;
  }
}

async function withPattern<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof SyntaxError) throw badRequest('invalid_pattern', `The pattern is not valid: ${err.message}`, 'pattern');
    throw err;
  }
}

async function streamExport(res: ServerResponse, records: AsyncIterable<unknown>): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
  try {
    for await (const record of records) {
      if (!res.write(`${JSON.stringify(record)}\n`) && !(await drained(res))) return;
    }
    res.end();
  } catch {
    // Headers are out: a reset is the only honest way to say the export is incomplete.
    res.destroy();
  }
}
