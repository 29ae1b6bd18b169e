// Reading and managing recorded sessions: list and search, show, replay,
// export, redact, delete, legal hold and retention. Every change is made
// together with the chained event that vouches for it, so `audit verify`
// still passes afterwards (and fails after any change made behind its back).
import { createHash } from 'node:crypto';
import { parseDuration } from '../config/units.js';
import type { ConnectionRecordingMap, RecordingConfig } from './config.js';
import { ContentCipher, decodeContent, encodeContent } from './content.js';
import { chunkText, compilePattern, frameChunks, promptOf, redactChunk, redactDocument, REDACTED, unframeChunks, type Pattern, type PromptTurn } from './content-text.js';
import { INDEX_BATCH, indexTextOf, matchIn, parseSearchQuery, type SearchMatch, type SearchTerm } from './search.js';
import {
  chunkBatchOf,
  isChunkBatch,
  NO_ORDINAL,
  parseMeta,
  TRAIL_SESSION_ID,
  type ApprovalMeta,
  type LimitMeta,
  type ContentInfo,
  type DecisionMeta,
  type EventMetaByKind,
  type ResponseChunksMeta,
  type SessionEndMeta,
  type StoredEvent,
  type ViewMeta,
} from './events.js';
import type { AuditStore, ContentRewrite, DecisionFilter, DeleteOutcome, SessionQuery, SessionRow } from './store.js';
import { SessionStateError } from './store.js';

/** The store's filters, with text search as typed and cursor paging. */
export interface SessionFilter extends Omit<SessionQuery, 'before' | 'limit' | 'text'> {
  /** Full-text search in stored prompts and answers (words, "phrases", prefix*; see src/audit/search.ts). */
  text?: string;
  limit?: number;
  /** From a previous page's `next`. */
  cursor?: string;
}

export interface SessionPage {
  /** With text search, each carries where it matched (when the stored text still shows it). */
  sessions: Array<SessionRow & { match?: SearchMatch }>;
  /** Pass as `cursor` for the next page; absent on the last page. */
  next?: string;
}

/** Text search asked of an archive whose content is encrypted: nothing is indexed, so nothing could be found. */
export class SearchUnavailableError extends Error {
  constructor() {
    super(
      'Full-text search is off because recording encryption is on: encrypted prompts and answers are never indexed. Filter by person, group, connection, model, state, decision or time instead.',
    );
    this.name = 'SearchUnavailableError';
  }
}

export interface DecodedContent {
  info?: ContentInfo;
  /** Parsed JSON when the content is JSON, else the text. */
  body?: unknown;
  /** Why the content could not be read (a missing key, failed authentication). */
  error?: string;
}

export interface ReplayChunk {
  index: number;
  offset_ms: number;
  size: number;
  /** The chunk as delivered, or null when not stored. */
  raw: string | null;
  /** The words it added. */
  text: string;
}

export interface SessionDetail {
  session: SessionRow;
  request: DecodedContent;
  forwarded?: DecodedContent & { upstream_model?: string };
  decisions: Array<DecisionMeta & { at: number; excerpt_text?: string; error?: string }>;
  approvals: Array<ApprovalMeta & { at: number; comment_text?: string; error?: string }>;
  /** The limit that refused the request, when one did. */
  limit?: LimitMeta & { at: number };
  response: { chunks: ReplayChunk[]; text: string; truncated: boolean; error?: string };
  end?: SessionEndMeta & { at: number };
  /** The session's events as chained, for audit. */
  events: Array<{ seq: number; kind: string; at: number; hash: string; meta: unknown }>;
}

export interface Replay {
  session: SessionRow;
  prompt: PromptTurn[];
  chunks: ReplayChunk[];
  end?: SessionEndMeta;
}

export interface ExportRecord {
  seq: number;
  time: string;
  kind: string;
  session_id: string | null;
  hash: string;
  prev_hash: string;
  user?: { issuer: string; subject: string; email: string | null; groups: string[] };
  connection?: string | null;
  model?: string;
  client_ip?: string | null;
  meta: unknown;
  content?: unknown;
  content_error?: string;
}

export interface RedactionOutcome {
  redacted: string[];
  held: string[];
  open: string[];
}

const PAGE = 100;
/** Sessions whose stored text is read at once to show where a search matched. */
const MATCH_READS = 4;

/** A time bound: ISO 8601, epoch milliseconds, or a duration ago (`24h`, `7d`). */
export function parseTimeBound(value: string, now: number): number | undefined {
  const text = value.trim();
  if (/^\d{10,}$/.test(text)) return Number(text);
  const ago = parseDuration(text);
  if (ago !== undefined && /[a-z]$/i.test(text)) return now - ago;
  const parsed = Date.parse(text);
  return Number.isNaN(parsed) ? undefined : parsed;
}

function encodeCursor(s: SessionRow): string {
  return Buffer.from(`${s.received_at}:${s.id}`).toString('base64url');
}

function decodeCursor(cursor: string): { receivedAt: number; id: string } {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const colon = text.indexOf(':');
  const receivedAt = Number(text.slice(0, colon));
  if (colon < 0 || !Number.isFinite(receivedAt)) throw new RangeError('invalid cursor');
  return { receivedAt, id: text.slice(colon + 1) };
}

function parseBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export class SessionArchive {
  readonly cipher: ContentCipher | undefined;
  private readonly now: () => number;

  constructor(
    readonly store: AuditStore,
    readonly recording: RecordingConfig,
    private readonly connections: ConnectionRecordingMap = new Map(),
    options: { now?: () => number } = {},
  ) {
    this.cipher = recording.encryption ? new ContentCipher(recording.encryption.keys) : undefined;
    this.now = options.now ?? Date.now;
  }

  /**
   * Sessions newest first, a keyset page at a time. `text` searches the
   * full-text index (SQLite FTS5, PostgreSQL tsvector) within the other
   * filters; it is refused when content is encrypted, which is never indexed.
   * Throws SearchQueryError for a search text with nothing to look for.
   */
  async list(filter: SessionFilter): Promise<SessionPage> {
    const limit = Math.min(Math.max(filter.limit ?? 50, 1), 1000);
    if (filter.text !== undefined && filter.text.trim() !== '' && this.cipher) throw new SearchUnavailableError();
    const query: SessionQuery = {
      issuer: filter.issuer,
      issuers: filter.issuers,
      subject: filter.subject,
      user: filter.user,
      group: filter.group,
      connection: filter.connection,
      model: filter.model,
      since: filter.since,
      until: filter.until,
      decision: filter.decision,
      state: filter.state,
      ...(filter.text !== undefined && filter.text.trim() !== '' ? { text: parseSearchQuery(filter.text) } : {}),
      before: filter.cursor ? decodeCursor(filter.cursor) : undefined,
      limit: limit + 1,
    };
    // Sessions are indexed shortly after they end (Recorder): take what is waiting now, so a search sees every ended session.
    if (query.text) await this.store.indexEnded(INDEX_BATCH).catch(() => 0);
    const rows = await this.store.listSessions(query);
    const sessions = rows.slice(0, limit);
    const next = rows.length > limit ? { next: encodeCursor(sessions[sessions.length - 1]!) } : {};
    if (!query.text) return { sessions, ...next };
    const terms = query.text;
    // A few sessions at a time: a page of 50 at once would queue 100 reads for the store's connection pool.
    const matched: Array<SessionRow & { match?: SearchMatch }> = [];
    for (let i = 0; i < sessions.length; i += MATCH_READS) {
      matched.push(...(await Promise.all(sessions.slice(i, i + MATCH_READS).map(async (s) => ({ ...s, ...(await this.matchOf(s.id, terms)) })))));
    }
    return { sessions: matched, ...next };
  }

  /** Where a search result matched: the first indexed text of the session that shows a term. */
  private async matchOf(sessionId: string, terms: SearchTerm[]): Promise<{ match?: SearchMatch }> {
    for (const event of await this.store.sessionEvents(sessionId, true)) {
      const text = indexTextOf(event);
      const match = text === undefined ? undefined : matchIn(text, terms, event.kind);
      if (match) return { match };
    }
    return {};
  }

  /** Content as stored: chunk batches as an array of texts, JSON parsed, anything else as text. */
  private decode(event: StoredEvent, info: ContentInfo | undefined): DecodedContent {
    if (event.parts.length === 0) return info ? { info } : {};
    try {
      const text = decodeContent(event.parts, event, this.cipher);
      return { info, body: isChunkBatch(event.kind) ? unframeChunks(text) : parseBody(text) };
    } catch (err) {
      return { info, error: (err as Error).message };
    }
  }

  async show(id: string): Promise<SessionDetail | undefined> {
    const session = await this.store.getSession(id);
    if (!session) return undefined;
    const events = await this.store.sessionEvents(id, true);
    const detail: SessionDetail = {
      session,
      request: {},
      decisions: [],
      approvals: [],
      response: { chunks: [], text: '', truncated: false },
      events: events.map((e) => ({ seq: e.seq, kind: e.kind, at: e.atMs, hash: e.hash, meta: JSON.parse(e.metaText) as unknown })),
    };
    for (const event of events) {
      switch (event.kind) {
        case 'session.start':
          detail.request = this.decode(event, (parseMeta(event) as EventMetaByKind['session.start']).request);
          break;
        case 'session.forwarded': {
          const meta = parseMeta(event) as EventMetaByKind['session.forwarded'];
          const stored = meta.changed ? withChanges(detail.request, this.decode(event, meta.changed), meta.removed) : meta.same_as_request ? detail.request : this.decode(event, meta.body);
          detail.forwarded = { ...stored, upstream_model: meta.upstream_model };
          break;
        }
        case 'decision': {
          const meta = parseMeta(event) as DecisionMeta;
          const excerpt = this.decode(event, meta.excerpt);
          detail.decisions.push({ ...meta, at: event.atMs, ...(excerpt.body !== undefined ? { excerpt_text: String(excerpt.body) } : {}), ...(excerpt.error ? { error: excerpt.error } : {}) });
          break;
        }
        case 'limit':
          detail.limit = { ...(parseMeta(event) as LimitMeta), at: event.atMs };
          break;
        case 'approval': {
          const meta = parseMeta(event) as ApprovalMeta;
          const comment = this.decode(event, meta.comment);
          detail.approvals.push({ ...meta, at: event.atMs, ...(comment.body !== undefined ? { comment_text: String(comment.body) } : {}), ...(comment.error ? { error: comment.error } : {}) });
          break;
        }
        case 'response.chunks':
          this.addChunks(detail.response, event, parseMeta(event) as ResponseChunksMeta);
          break;
        case 'session.end': {
          const { chunks, ...meta } = parseMeta(event) as SessionEndMeta;
          if (chunks) this.addChunks(detail.response, event, chunks);
          detail.end = { ...meta, at: event.atMs };
          break;
        }
        default:
          break;
      }
    }
    detail.response.text = detail.response.chunks.map((c) => c.text).join('');
    return detail;
  }

  /** A batch of chunks (a `response.chunks` event's, or the last one, stored with the end), as the response shows them. */
  private addChunks(response: SessionDetail['response'], event: StoredEvent, meta: ResponseChunksMeta): void {
    const decoded = this.decode(event, undefined);
    if (decoded.error) response.error = decoded.error;
    const texts = Array.isArray(decoded.body) ? (decoded.body as string[]) : [];
    response.truncated ||= meta.truncated;
    meta.offsets.forEach((offset, i) => {
      const raw = event.parts.length > 0 && texts[i] !== undefined && (texts[i] !== '' || meta.sizes[i] === 0) ? texts[i]! : null;
      response.chunks.push({ index: meta.first + i, offset_ms: offset, size: meta.sizes[i] ?? 0, raw, text: raw === null ? '' : chunkText(raw) });
    });
  }

  async replay(id: string): Promise<Replay | undefined> {
    const detail = await this.show(id);
    if (!detail) return undefined;
    const body = detail.forwarded?.body ?? detail.request.body;
    return { session: detail.session, prompt: promptOf(body), chunks: detail.response.chunks, end: detail.end };
  }

  /** Every event at or after `since` (epoch ms), oldest first, with its session's identity: one JSON object per line for a SIEM. */
  async *export(options: { since: number; until?: number; content?: boolean }): AsyncGenerator<ExportRecord> {
    const sessions = new Map<string, SessionRow | null>();
    let after = 0;
    for (;;) {
      const events = await this.store.readEvents(after, 500, { withContent: options.content ?? true, sinceMs: options.since });
      if (events.length === 0) return;
      for (const event of events) {
        after = event.seq;
        if (options.until !== undefined && event.atMs >= options.until) continue;
        let session: SessionRow | null | undefined;
        if (event.sessionId !== TRAIL_SESSION_ID) {
          session = sessions.get(event.sessionId);
          if (session === undefined) {
            session = (await this.store.getSession(event.sessionId)) ?? null;
            if (sessions.size > 1000) sessions.delete(sessions.keys().next().value!);
            sessions.set(event.sessionId, session);
          }
        }
        const record: ExportRecord = {
          seq: event.seq,
          time: new Date(event.atMs).toISOString(),
          kind: event.kind,
          session_id: event.sessionId === TRAIL_SESSION_ID ? null : event.sessionId,
          hash: event.hash,
          prev_hash: event.prevHash,
          meta: JSON.parse(event.metaText) as unknown,
        };
        if (session) {
          record.user = { issuer: session.issuer, subject: session.subject, email: session.email, groups: session.groups };
          record.connection = session.connection;
          record.model = session.model;
          record.client_ip = session.client_ip;
        }
        if (event.parts.length > 0) {
          const decoded = this.decode(event, undefined);
          if (decoded.error) record.content_error = decoded.error;
          else record.content = decoded.body;
        }
        yield record;
      }
    }
  }

  /** Replaces all content of one session; metadata stays. */
  async redactSession(id: string, by: string, reason?: string): Promise<void> {
    await this.redactAll(id, by, reason, 'session');
    await this.store.purge();
  }

  /** Right to erasure: replaces the content of every session of a subject. Sessions on legal hold or in progress are skipped and reported. */
  async redactSubject(subject: string, issuer: string | undefined, by: string, reason?: string): Promise<RedactionOutcome> {
    const outcome: RedactionOutcome = { redacted: [], held: [], open: [] };
    for (const id of await this.store.sessionIdsOfSubject(subject, issuer)) {
      try {
        await this.redactAll(id, by, reason, 'subject');
        outcome.redacted.push(id);
      } catch (err) {
        if (!(err instanceof SessionStateError) || err.reason === 'not_found') throw err;
        outcome[err.reason === 'legal_hold' ? 'held' : 'open'].push(id);
      }
    }
    await this.store.purge();
    return outcome;
  }

  private async redactAll(id: string, by: string, reason: string | undefined, scope: 'session' | 'subject'): Promise<void> {
    const events = await this.store.sessionEvents(id, false);
    if (events.length === 0) throw new SessionStateError(id, 'not_found');
    const rewrites: ContentRewrite[] = events
      .filter((e) => e.n !== NO_ORDINAL && e.contentHash !== null)
      .map((e) => {
        // Chunk batches keep one empty text per chunk, so replay still shows the timing.
        const batch = chunkBatchOf(e.kind, parseMeta(e));
        return { n: e.n, parts: this.encode(batch ? frameChunks(batch.offsets.map(() => '')) : REDACTED, e) };
      });
    await this.store.rewriteContents(id, rewrites, { kind: 'redaction', sessionId: id, n: NO_ORDINAL, atMs: this.now(), meta: { scope, by, reason, targets: [] } });
  }

  /**
   * Replaces every match of `pattern` in the content of the given sessions,
   * or of those a filter selects (JSON stays valid; SSE/NDJSON framing is
   * kept). A match split across two streamed chunks is not seen: chunks are
   * redacted one by one. Needs the decryption keys for encrypted sessions.
   */
  async redactPattern(
    source: string,
    scope: { ids: string[] } | { filter: Omit<SessionFilter, 'text' | 'cursor' | 'limit'> },
    by: string,
    reason?: string,
  ): Promise<RedactionOutcome> {
    const pattern = await compilePattern(source);
    const evidence = { by, reason, pattern_sha256: createHash('sha256').update(source).digest('hex') };
    const outcome: RedactionOutcome = { redacted: [], held: [], open: [] };
    if ('ids' in scope) {
      for (const id of scope.ids) {
        const session = await this.store.getSession(id);
        if (!session) throw new SessionStateError(id, 'not_found');
        await this.redactPatternIn(session, pattern, evidence, outcome);
      }
    } else {
      let cursor: string | undefined;
      do {
        const page = await this.list({ ...scope.filter, limit: PAGE, cursor });
        for (const session of page.sessions) await this.redactPatternIn(session, pattern, evidence, outcome);
        cursor = page.next;
      } while (cursor);
    }
    await this.store.purge();
    return outcome;
  }

  private async redactPatternIn(
    session: SessionRow,
    pattern: Pattern,
    evidence: { by: string; reason?: string; pattern_sha256: string },
    outcome: RedactionOutcome,
  ): Promise<void> {
    if (session.legal_hold) return void outcome.held.push(session.id);
    if (session.state === 'open') return void outcome.open.push(session.id);
    const rewrites = this.patternRewrites(await this.store.sessionEvents(session.id, true), pattern);
    if (rewrites.length === 0) return;
    try {
      await this.store.rewriteContents(session.id, rewrites, {
        kind: 'redaction',
        sessionId: session.id,
        n: NO_ORDINAL,
        atMs: this.now(),
        meta: { scope: 'pattern', ...evidence, targets: [] },
      });
      outcome.redacted.push(session.id);
    } catch (err) {
      if (!(err instanceof SessionStateError) || err.reason === 'not_found') throw err;
      outcome[err.reason === 'legal_hold' ? 'held' : 'open'].push(session.id);
    }
  }

  private patternRewrites(events: StoredEvent[], pattern: Pattern): ContentRewrite[] {
    const rewrites: ContentRewrite[] = [];
    for (const event of events) {
      if (event.n === NO_ORDINAL || event.parts.length === 0) continue;
      const text = decodeContent(event.parts, event, this.cipher);
      const changed =
        isChunkBatch(event.kind)
          ? frameChunks(unframeChunks(text).map((raw) => redactChunk(raw, pattern)))
          : event.kind === 'decision' || event.kind === 'approval'
            ? pattern.replace(text, REDACTED)
            : redactDocument(text, pattern);
      if (changed !== text) rewrites.push({ n: event.n, parts: this.encode(changed, event) });
    }
    return rewrites;
  }

  private encode(text: string, event: StoredEvent): ContentRewrite['parts'] {
    return encodeContent(text, event, { maxBytes: Number.MAX_SAFE_INTEGER, partBytes: this.recording.chunk_bytes }, this.cipher).parts;
  }

  /** Deletes sessions outright; those on legal hold or in progress are kept and reported. */
  async delete(ids: string[], by: string, reason?: string): Promise<DeleteOutcome> {
    const outcome = await this.store.deleteSessions(ids, {
      kind: 'session.delete',
      sessionId: TRAIL_SESSION_ID,
      n: NO_ORDINAL,
      atMs: this.now(),
      meta: { by, reason, sessions: [], deleted: [] },
    });
    await this.store.purge();
    return outcome;
  }

  /**
   * Records a review's state change in the session that raised it, from
   * wherever the change was made. `n` must be unique within the session
   * (at or above APPENDED_ORDINAL_BASE); the comment is content, so it is
   * encrypted and redactable like the rest. Dropped if the session is gone.
   */
  async appendApproval(sessionId: string, n: number, meta: Omit<ApprovalMeta, 'comment'>, comment?: string): Promise<void> {
    const encoded = comment === undefined ? undefined : encodeContent(comment, { sessionId, n }, { maxBytes: this.recording.max_body_bytes, partBytes: this.recording.chunk_bytes }, this.cipher);
    await this.store.append([{ kind: 'approval', sessionId, n, atMs: this.now(), meta: { ...meta, comment: encoded?.info }, parts: encoded?.parts, precondition: 'exists' }]);
  }

  /** Records that `by` opened, replayed or exported sessions: a session's own viewing is part of its trail. */
  async recordView(sessionId: string | undefined, by: string, action: ViewMeta['action'], range: { since?: number; until?: number } = {}): Promise<void> {
    const meta: ViewMeta = { by, action, ...(range.since !== undefined && { since: range.since }), ...(range.until !== undefined && { until: range.until }) };
    await this.store.append([{ kind: 'session.view', sessionId: sessionId ?? TRAIL_SESSION_ID, n: NO_ORDINAL, atMs: this.now(), meta, ...(sessionId !== undefined && { precondition: 'exists' as const }) }]);
  }

  /** Places or releases a legal hold: a held session is exempt from retention, deletion and redaction. */
  async setLegalHold(id: string, hold: boolean, by: string, reason?: string): Promise<void> {
    const [seq] = await this.store.append([{ kind: 'legal_hold', sessionId: id, n: NO_ORDINAL, atMs: this.now(), meta: { hold, by, reason }, precondition: 'exists' }]);
    if (seq === null) throw new SessionStateError(id, 'not_found');
  }

  /**
   * Deletes expired sessions (per-connection retention, else the default) in
   * batches of `retention.batch_size`, one short transaction each, skipping
   * sessions on legal hold and sessions still in progress.
   */
  async sweepRetention(options: { maxBatches?: number } = {}): Promise<{ deleted: number; batches: number }> {
    const now = this.now();
    const cutoffs: Array<{ connection: string | null; beforeMs: number }> = [];
    const ownPeriod: string[] = [];
    if (this.recording.retention.default !== null) cutoffs.push({ connection: null, beforeMs: now - this.recording.retention.default });
    for (const [name, override] of this.connections) {
      if (override.retention === undefined) continue;
      ownPeriod.push(name);
      if (override.retention !== null) cutoffs.push({ connection: name, beforeMs: now - override.retention });
    }
    let deleted = 0;
    let batches = 0;
    while (batches < (options.maxBatches ?? Number.POSITIVE_INFINITY)) {
      const ids = await this.store.expiredSessions({ cutoffs, ownPeriod, limit: this.recording.retention.batch_size });
      if (ids.length === 0) break;
      const outcome = await this.store.deleteSessions(ids, {
        kind: 'retention.delete',
        sessionId: TRAIL_SESSION_ID,
        n: NO_ORDINAL,
        atMs: now,
        meta: { by: 'retention', reason: 'retention period ended', sessions: [], deleted: [] },
      });
      batches++;
      deleted += outcome.deleted.length;
      if (outcome.deleted.length === 0) break;
      // Let recording commits in between: the sweep never holds the chain for long.
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (deleted > 0) await this.store.purge();
    return { deleted, batches };
  }
}

/**
 * A body forwarded with some members changed, as recorded: the one received
 * with the changed members put in and the removed ones left out; what is
 * stored as it is when either cannot be read as an object (a redaction).
 */
function withChanges(request: DecodedContent, changes: DecodedContent, removed: readonly string[] = []): DecodedContent {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(request.body) || !isObject(changes.body)) return changes;
  const body: Record<string, unknown> = { ...request.body, ...changes.body };
  for (const key of removed) delete body[key];
  return { ...(changes.info && { info: changes.info }), body };
}
