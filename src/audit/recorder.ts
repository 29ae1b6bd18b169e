// The one emitter of session events. The pipeline gets a SessionWriter per
// request and tells it what happened; the recorder turns that into typed
// events and commits them in groups: everything that arrives within
// `commit_interval` (or while the previous commit is running) shares one
// transaction and one fsync, so durability stays cheap under load.
//
// Write-ahead, fail closed: `beginSession` and `forwarded` resolve only once
// the request is durable, and reject with a 503 when it cannot be made so;
// the pipeline forwards nothing before they resolve. Chunks are buffered and
// flushed in batches; if storing them fails, `writer.onFailure` listeners are
// told so the pipeline can cut the stream rather than deliver unrecorded output.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { GatewayError } from '../http/errors.js';
import { personIssuer, type Principal } from '../identity/principal.js';
import type { Logger } from '../ops/logger.js';
import type { ConnectionRecordingMap, RecordingConfig } from './config.js';
import { ContentCipher, encodeContent } from './content.js';
import { frameChunks, stringsOfValue } from './content-text.js';
import { bodyIndexText, INDEX_BATCH } from './search.js';
import type {
  ApprovalMeta,
  ContentPart,
  DecisionMeta,
  LimitMeta,
  EndState,
  NewEvent,
  RecordedIdentity,
  ResponseChunksMeta,
  SessionEndMeta,
  SessionForwardedMeta,
  SessionStartMeta,
  TokenUsage,
} from './events.js';
import { RejectedWriteError, type AuditStore, type RecorderInstance } from './store.js';

/** Recorders open in this process: alive by definition, whatever their pid says. */
const openInstances = new Set<string>();

/** Most events a single transaction takes; the rest wait for the next one. */
const MAX_EVENTS_PER_COMMIT = 2000;
/** Recovery marks this many abandoned sessions per transaction. */
const RECOVERY_BATCH = 500;
/** Waits before retrying a failed group commit: a database restart or a failover often passes in this time. */
const COMMIT_RETRY_MS = [50, 250, 1_000];
/**
 * Waits before retrying session ends that still failed: after these, a
 * successful heartbeat retries them, and a graceful stop (or, after a crash,
 * recovery) closes them as `incomplete`.
 */
const END_RETRY_MS = [1_000, 2_000, 4_000, 8_000, 16_000, 30_000];
/**
 * How long session ends gather before they are indexed for search, together,
 * in one transaction apart from the write-ahead commits (store.indexEnded).
 */
const INDEX_DELAY_MS = 250;
/** After a failed indexing pass: the store is likely down; the next ended session tries again sooner. */
const INDEX_RETRY_MS = 5_000;

export interface SessionStart {
  /** The gateway's request ID. */
  id: string;
  /** Epoch milliseconds when the request arrived. */
  receivedAt: number;
  principal: Principal;
  clientIp?: string;
  userAgent?: string;
  /** Absent for requests refused before routing. */
  connection?: string;
  model: string;
  operation: string;
  stream: boolean;
  /** The body as received: parsed JSON, or its text. */
  requestBody: unknown;
  /** The body as it will be forwarded (after input masking); recording it here saves a commit. */
  forwardedBody?: unknown;
  upstreamModel?: string;
  /** Default: the connection's `recording.bodies`, else `recording.bodies`. */
  bodiesEnabled?: boolean;
}

export interface DecisionRecord {
  direction: 'input' | 'output';
  action: DecisionMeta['action'];
  rule: string;
  entity?: string;
  field?: string;
  span?: { start: number; end: number };
  confidence?: number;
  /** The matched text; stored as content (encrypted, redactable). */
  excerpt?: string;
}

export interface ApprovalRecord extends Omit<ApprovalMeta, 'comment'> {
  /** Stored as content (encrypted, redactable). */
  comment?: string;
}

export interface SessionEnd {
  state: EndState;
  status: number;
  errorCode?: string;
  usage?: TokenUsage;
  /** Default: the offset of the first chunk. */
  ttftMs?: number;
  latencyMs: number;
}

export interface RecorderStats {
  /** Group commits (transactions) this recorder made. */
  commits: number;
  events: number;
  largestCommit: number;
  sessions: number;
  failedCommits: number;
}

/** Told when the store fails and when it answers again, to log an outage once (ops/store-outages.ts). */
export interface StoreHealth {
  failed(err: unknown): void;
  recovered(): void;
}

export interface RecorderOptions {
  connections?: ConnectionRecordingMap;
  log?: Logger;
  health?: StoreHealth;
  /** Clock for event times (tests). */
  now?: () => number;
}

export function recordingUnavailable(cause?: unknown): GatewayError {
  if (cause instanceof RejectedWriteError) {
    return new GatewayError(
      'The gateway\'s audit trail cannot store a value this request carries, so the request was not forwarded; retrying will not help. An operator can find the value in the gateway\'s log (recording refused a session).',
      { status: 500, type: 'server_error', code: 'recording_refused', headers: { 'x-should-retry': 'false' }, cause },
    );
  }
  return new GatewayError(
    'The gateway could not record this request in its audit trail, so the request was not forwarded. Retry shortly; if it persists, an operator should check the recording storage.',
    { status: 503, type: 'service_unavailable', code: 'recording_unavailable', headers: { 'retry-after': '5' }, cause },
  );
}

/** The reason a response is cut when recording fails after forwarding: the model has the prompt, the rest goes unrecorded otherwise. */
export function recordingLost(cause?: unknown): GatewayError {
  return new GatewayError(
    'The gateway could not record the rest of this response in its audit trail, so it stopped the response; it is incomplete. Retry in a few seconds; if it persists, an operator should check the recording storage.',
    { status: 503, type: 'service_unavailable', code: 'recording_unavailable', headers: { 'retry-after': '5' }, cause },
  );
}

interface QueueEntry {
  events: NewEvent[];
  bytes: number;
  resolve(): void;
  reject(err: unknown): void;
}

export class Recorder {
  readonly instanceId = `ins_${randomUUID().replaceAll('-', '')}`;
  readonly stats: RecorderStats = { commits: 0, events: 0, largestCommit: 0, sessions: 0, failedCommits: 0 };
  readonly cipher: ContentCipher | undefined;
  private readonly connections: ConnectionRecordingMap;
  private readonly log: Logger | undefined;
  private readonly health: StoreHealth | undefined;
  readonly now: () => number;
  /** End events of sessions whose commit failed, by session: retried until stored or the recorder closes. */
  private readonly unsettled = new Map<string, NewEvent>();
  private endRetry: { timer?: NodeJS.Timeout; attempt: number; running?: Promise<void> } = { attempt: 0 };
  private queue: QueueEntry[] = [];
  private queuedBytes = 0;
  private commitTimer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private committing: Promise<void> | undefined;
  private readonly writers = new Set<SessionWriter>();
  private readonly timers: NodeJS.Timeout[] = [];
  private closed = false;
  /** Search indexing after the fact: a pass is scheduled, running, and/or asked for again while running. */
  private indexing: { timer?: NodeJS.Timeout; running?: Promise<void>; again: boolean } = { again: false };

  private constructor(
    readonly store: AuditStore,
    readonly config: RecordingConfig,
    options: RecorderOptions,
  ) {
    this.connections = options.connections ?? new Map();
    this.log = options.log;
    this.health = options.health;
    this.now = options.now ?? Date.now;
    this.cipher = config.encryption ? new ContentCipher(config.encryption.keys) : undefined;
  }

  /**
   * Registers this gateway instance, marks sessions abandoned by dead
   * instances as incomplete, and starts the heartbeat and chunk flusher.
   */
  static async open(store: AuditStore, config: RecordingConfig, options: RecorderOptions = {}): Promise<Recorder> {
    const recorder = new Recorder(store, config, options);
    const now = recorder.now();
    await store.registerInstance({ id: recorder.instanceId, hostname: hostname(), pid: process.pid, started_at: now, heartbeat_at: now, closed_at: null });
    openInstances.add(recorder.instanceId);
    await recorder.recover();
    const beat = setInterval(() => void recorder.heartbeat(), Math.max(50, Math.floor(config.recovery_lease / 3)));
    const flush = setInterval(() => recorder.flushIdleChunks(), Math.max(10, config.chunk_flush_interval));
    beat.unref();
    flush.unref();
    recorder.timers.push(beat, flush);
    // Catch up on sessions that ended unindexed (a crash between their end and the indexing pass, or an upgrade).
    recorder.scheduleIndex(0);
    return recorder;
  }

  /** Whether bodies are recorded for a connection. */
  bodiesFor(connection: string | undefined): boolean {
    return (connection !== undefined ? this.connections.get(connection)?.bodies : undefined) ?? this.config.bodies;
  }

  /** Starts a session without waiting: its start becomes durable with the next commit (`forwarded`, `flush`). */
  startSession(start: SessionStart): SessionWriter {
    if (this.closed) throw recordingUnavailable(new Error('the recorder is closed'));
    if (this.queuedBytes > this.config.max_pending_bytes) {
      throw recordingUnavailable(new Error(`${this.queuedBytes} bytes are waiting to be committed; the audit store is not keeping up`));
    }
    const writer = new SessionWriter(this, start, start.bodiesEnabled ?? this.bodiesFor(start.connection));
    this.writers.add(writer);
    this.stats.sessions++;
    return writer;
  }

  /** Starts a session and resolves once its start (and `forwardedBody`, if given) is durable. Rejects with a 503 otherwise. */
  async beginSession(start: SessionStart): Promise<SessionWriter> {
    const writer = this.startSession(start);
    await writer.flush();
    if (writer.failure) {
      this.forget(writer);
      throw writer.failure;
    }
    return writer;
  }

  /** @internal Queues events for the next group commit; resolves when they are committed. */
  enqueue(events: NewEvent[]): Promise<void> {
    if (this.closed) return Promise.reject(recordingUnavailable(new Error('the recorder is closed')));
    const bytes = events.reduce((sum, e) => sum + (e.parts?.reduce((s, p) => s + p.data.byteLength, 0) ?? 0) + 256, 0);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ events, bytes, resolve, reject });
      this.queuedBytes += bytes;
      this.scheduleCommit();
    });
  }

  private scheduleCommit(now = false): void {
    if (this.committing || this.commitTimer || this.queue.length === 0) return;
    const run = (): void => {
      this.commitTimer = undefined;
      this.committing = this.commit().finally(() => {
        this.committing = undefined;
        // Whatever queued meanwhile has already waited one commit: take it now.
        if (this.queue.length > 0) this.commitTimer = setImmediate(run);
      });
    };
    this.commitTimer = this.config.commit_interval > 0 && !now ? setTimeout(run, this.config.commit_interval) : setImmediate(run);
  }

  private async commit(): Promise<void> {
    const batch: QueueEntry[] = [];
    let count = 0;
    while (this.queue.length > 0 && (count === 0 || count + this.queue[0]!.events.length <= MAX_EVENTS_PER_COMMIT)) {
      const entry = this.queue.shift()!;
      this.queuedBytes -= entry.bytes;
      batch.push(entry);
      count += entry.events.length;
    }
    const events: NewEvent[] = [];
    for (const entry of batch) for (const event of entry.events) events.push(event);
    for (let attempt = 0; ; attempt++) {
      try {
        // A retry replays the batch: its first try may have committed with only the answer lost.
        await this.store.append(events, attempt > 0 ? { replay: true } : undefined);
        this.stats.commits++;
        this.stats.events += count;
        this.stats.largestCommit = Math.max(this.stats.largestCommit, count);
        this.health?.recovered();
        for (const entry of batch) entry.resolve();
        if (events.some((e) => e.kind === 'session.end')) this.scheduleIndex();
        return;
      } catch (err) {
        this.stats.failedCommits++;
        if (err instanceof RejectedWriteError) {
          // A value the database cannot store, not an outage: retrying fails again, and the group commit's other
          // sessions must not fail with it. Each session's writes go alone; only those holding the value fail.
          await this.commitEachAlone(batch, err);
          return;
        }
        this.health?.failed(err);
        // A transaction that failed wrote nothing (all or none), so the same batch can be tried again.
        const wait = COMMIT_RETRY_MS[attempt];
        if (wait === undefined || this.closed) {
          this.log?.debug({ err: (err as Error).message, events: count, attempts: attempt + 1 }, 'recording commit failed');
          for (const entry of batch) entry.reject(err);
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  /**
   * After a RejectedWriteError: each queued write in its own commit, in order (the chain keeps their order). A
   * session's later writes are not tried once one of its writes was refused: they would fail for want of it.
   */
  private async commitEachAlone(batch: readonly QueueEntry[], err: RejectedWriteError): Promise<void> {
    const refusedSessions = new Set<string>();
    const refuse = (entry: QueueEntry, reason: unknown): void => {
      this.log?.warn({ err: (reason as Error).message, sessions: [...new Set(entry.events.map((e) => e.sessionId))] }, 'recording refused a session: the database cannot store a value it holds');
      for (const e of entry.events) refusedSessions.add(e.sessionId);
      entry.reject(reason);
    };
    if (batch.length === 1) return refuse(batch[0]!, err);
    let ended = false;
    for (const entry of batch) {
      if (entry.events.some((e) => refusedSessions.has(e.sessionId))) {
        refuse(entry, err);
        continue;
      }
      try {
        // As a replay: a write the store refused wrote nothing, but a commit whose answer was lost might have.
        await this.store.append(entry.events, { replay: true });
        this.stats.commits++;
        this.stats.events += entry.events.length;
        ended ||= entry.events.some((e) => e.kind === 'session.end');
        entry.resolve();
      } catch (alone) {
        this.stats.failedCommits++;
        if (alone instanceof RejectedWriteError) refuse(entry, alone);
        else {
          this.health?.failed(alone);
          entry.reject(alone);
        }
      }
    }
    if (ended) this.scheduleIndex();
  }

  /**
   * @internal A session's end could not be stored: keep it and retry with
   * backoff, so the session does not stay `open` once the store is back.
   */
  settleLater(end: NewEvent): void {
    this.unsettled.set(end.sessionId, { ...end, precondition: 'open' });
    this.scheduleEndRetry();
  }

  /** Sessions whose end is waiting to be stored (retried in the background). */
  get unsettledSessions(): string[] {
    return [...this.unsettled.keys()];
  }

  private scheduleEndRetry(): void {
    const retry = this.endRetry;
    if (retry.timer || this.closed || this.unsettled.size === 0) return;
    const wait = END_RETRY_MS[retry.attempt];
    if (wait === undefined) return; // the next successful heartbeat tries again
    retry.attempt++;
    retry.timer = setTimeout(() => {
      retry.timer = undefined;
      void this.retryEnds();
    }, wait);
    retry.timer.unref();
  }

  private retryEnds(): Promise<void> {
    this.endRetry.running ??= (async () => {
      const ends = [...this.unsettled.values()];
      try {
        if (ends.length > 0) await this.store.append(ends);
        for (const end of ends) this.unsettled.delete(end.sessionId);
        this.endRetry.attempt = 0;
        this.health?.recovered();
        if (ends.length > 0) {
          this.log?.info({ sessions: ends.length }, 'stored session ends that had failed to commit');
          this.scheduleIndex();
        }
      } catch (err) {
        this.health?.failed(err);
        this.scheduleEndRetry();
      } finally {
        this.endRetry.running = undefined;
      }
    })();
    return this.endRetry.running;
  }

  /**
   * Indexes ended sessions for search after `delay`, in batches, outside the
   * write-ahead commits: a crash may leave sessions unindexed for a while
   * (the next pass, at the latest at the next start, takes them), never
   * unrecorded. With encryption on there is nothing to index.
   */
  private scheduleIndex(delay = INDEX_DELAY_MS): void {
    if (this.cipher || this.closed) return;
    if (this.indexing.running) {
      this.indexing.again = true;
      return;
    }
    if (this.indexing.timer) return;
    this.indexing.timer = setTimeout(() => {
      this.indexing.timer = undefined;
      this.indexing.running = this.indexPending().finally(() => {
        this.indexing.running = undefined;
        if (this.indexing.again) {
          this.indexing.again = false;
          this.scheduleIndex();
        }
      });
    }, delay);
    this.indexing.timer.unref();
  }

  private async indexPending(): Promise<void> {
    try {
      while (!this.closed && (await this.store.indexEnded(INDEX_BATCH)) === INDEX_BATCH);
    } catch (err) {
      this.log?.warn({ err: (err as Error).message }, 'indexing ended sessions for search failed; retrying later');
      this.indexing.again = false;
      if (!this.closed) {
        this.indexing.timer = setTimeout(() => {
          this.indexing.timer = undefined;
          this.scheduleIndex(0);
        }, INDEX_RETRY_MS);
        this.indexing.timer.unref();
      }
    }
  }

  /** @internal */
  forget(writer: SessionWriter): void {
    this.writers.delete(writer);
  }

  /** Resolves once everything queued so far is committed (or has failed). */
  async flush(): Promise<void> {
    for (const writer of this.writers) writer.flushChunks();
    while (this.queue.length > 0 || this.committing || this.commitTimer) {
      if (this.commitTimer && !this.committing) {
        // Skip the remaining commit window: the caller wants it now.
        clearTimeout(this.commitTimer as NodeJS.Timeout);
        clearImmediate(this.commitTimer as NodeJS.Immediate);
        this.commitTimer = undefined;
        this.scheduleCommit(true);
      }
      await (this.committing ?? new Promise((r) => setImmediate(r)));
    }
  }

  private flushIdleChunks(): void {
    const cutoff = performance.now() - this.config.chunk_flush_interval;
    for (const writer of this.writers) writer.flushChunks(cutoff);
  }

  private async heartbeat(): Promise<void> {
    try {
      await this.store.heartbeat(this.instanceId, this.now());
      this.health?.recovered();
      if (this.unsettled.size > 0 && !this.endRetry.timer) await this.retryEnds();
      await this.recover();
    } catch (err) {
      this.health?.failed(err);
      this.log?.debug({ err: (err as Error).message }, 'recorder heartbeat failed');
    }
  }

  /**
   * Ends, as `incomplete`, every open session of an instance that is gone:
   * one that stopped checking in for `recovery_lease`, or a previous process
   * on this host that is no longer running. Returns the sessions marked.
   */
  async recover(): Promise<string[]> {
    const now = this.now();
    const here = hostname();
    const dead = (await this.store.unclosedInstances()).filter(
      (i) => !openInstances.has(i.id) && (now - i.heartbeat_at > this.config.recovery_lease || (i.hostname === here && !processAlive(i.pid))),
    );
    if (dead.length === 0) return [];
    const marked: string[] = [];
    const abandoned = await this.store.openSessions(dead.map((i) => i.id));
    for (let i = 0; i < abandoned.length; i += RECOVERY_BATCH) {
      const ids = abandoned.slice(i, i + RECOVERY_BATCH);
      const seqs = await this.store.append(ids.map((id) => incompleteEvent(id, now, dead, 'its gateway instance stopped before the session ended')));
      ids.forEach((id, j) => seqs[j] !== null && marked.push(id));
    }
    for (const instance of dead) await this.store.closeInstance(instance.id, now);
    if (marked.length > 0) {
      this.log?.warn({ sessions: marked.length }, 'marked sessions of stopped gateway instances as incomplete');
      this.scheduleIndex();
    }
    return marked;
  }

  /**
   * Flushes everything, marks sessions still open as incomplete (the gateway
   * drains before closing, so these were cut off), and releases the store.
   */
  async close(options: { closeStore?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    for (const timer of this.timers) clearInterval(timer);
    openInstances.delete(this.instanceId);
    await this.flush();
    await this.endRetry.running;
    clearTimeout(this.endRetry.timer);
    this.closed = true;
    clearTimeout(this.indexing.timer);
    await this.indexing.running;
    const now = this.now();
    const open = [...this.writers].filter((w) => !w.ended);
    try {
      // Ends that never got stored (recorded `incomplete` already), and sessions still running: closed now, with what was recorded.
      const ends = [...this.unsettled.values()];
      if (open.length > 0 || ends.length > 0) {
        const self: RecorderInstance[] = [{ id: this.instanceId, hostname: hostname(), pid: process.pid, started_at: 0, heartbeat_at: now, closed_at: null }];
        await this.store.append([...ends, ...open.map((w) => incompleteEvent(w.id, now, self, 'the gateway shut down before the session ended'))]);
        this.unsettled.clear();
      }
      await this.store.closeInstance(this.instanceId, now);
    } catch (err) {
      this.log?.error({ err: (err as Error).message }, 'could not close the recorder cleanly');
    }
    this.writers.clear();
    if (options.closeStore ?? true) await this.store.close();
  }

  /** @internal */
  encode(text: string, sessionId: string, n: number, maxBytes = this.config.max_body_bytes): { parts: ContentPart[]; info: { bytes: number; stored_bytes: number; truncated: boolean } } {
    return encodeContent(text, { sessionId, n }, { maxBytes, partBytes: this.config.chunk_bytes }, this.cipher);
  }
}

function incompleteEvent(sessionId: string, atMs: number, dead: readonly RecorderInstance[], reason: string): NewEvent {
  const meta: SessionEndMeta = { state: 'incomplete', status: 0, reason: `${reason} (${dead.map((d) => d.id).join(', ')})` };
  return { kind: 'session.end', sessionId, n: -1, atMs, meta, precondition: 'open' };
}

/** The end of a session part of which could not be stored: what was recorded stands, marked incomplete. */
function incompleteEnd(meta: SessionEndMeta): SessionEndMeta {
  if (meta.state === 'incomplete') return meta;
  return { ...meta, state: 'incomplete', reason: `part of the session could not be recorded (storage failed); the gateway ended it ${meta.state}` };
}

function processAlive(pid: number): boolean {
  // Our own pid on an instance not open here: a previous run in a container that restarted.
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * How a forwarded body differs from the one received, member by member
 * (top level; by identity first, as the pipeline builds the forwarded body
 * from the received one's members, else by their JSON), or undefined unless
 * both are plain objects.
 */
function memberChanges(received: unknown, forwarded: unknown): { changed: string[]; removed: string[]; kept: number } | undefined {
  if (!isPlainObject(received) || !isPlainObject(forwarded)) return undefined;
  const changed: string[] = [];
  let kept = 0;
  for (const key of Object.keys(forwarded)) {
    const same = Object.hasOwn(received, key) && (received[key] === forwarded[key] || JSON.stringify(received[key]) === JSON.stringify(forwarded[key]));
    if (same) kept++;
    else changed.push(key);
  }
  const removed = Object.keys(received).filter((key) => !Object.hasOwn(forwarded, key));
  return { changed, removed, kept };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function bodyText(body: unknown): string {
  if (typeof body === 'string') return body;
  if (body instanceof Uint8Array) return Buffer.from(body).toString('utf8');
  return JSON.stringify(body) ?? '';
}

function identityOf(p: Principal): RecordedIdentity {
  // Recorded under the IdP that vouched for the person, not the gateway that issued a browser sign-in's token:
  // two IdPs may hand out the same subject, and the sessions and usage APIs show people what is theirs by (issuer, subject).
  const identity: RecordedIdentity = {
    issuer: wellFormed(personIssuer(p)),
    subject: wellFormed(p.subject),
    email: wellFormed(p.email),
    name: wellFormed(p.name),
    groups: p.groups.map(wellFormed),
    client_id: wellFormed(p.clientId),
  };
  if (p.origin !== undefined) identity.token_issuer = wellFormed(p.issuer);
  if (p.method === 'service_key') {
    identity.service_key = p.tokenId;
    identity.owner = p.owner && { issuer: wellFormed(p.owner.issuer), subject: wellFormed(p.owner.subject), email: wellFormed(p.owner.email) };
  }
  return identity;
}

/**
 * A claim's lone UTF-16 surrogates as U+FFFD. The session's row stores its
 * text as UTF-8, which has no lone surrogates, so the event must say what the
 * row can hold, or verify would report the row as altered.
 */
function wellFormed<T extends string | undefined>(text: T): T {
  // Tested first (Node 20 has it; TypeScript's ES2023 library does not declare it): nearly every claim is well
  // formed, and the replace cost a RegExp object and its compilation per call, four calls a session.
  if (text === undefined || (text as string & { isWellFormed(): boolean }).isWellFormed()) return text;
  return text.replace(LONE_SURROGATE, '\uFFFD') as T;
}

const LONE_SURROGATE = /\p{Surrogate}/gu;

/** Chunks waiting to be flushed as one `response.chunks` event; `answer`: their search text, while every chunk came with its own. */
function emptyBatch(): { texts: string[]; offsets: number[]; sizes: number[]; bytes: number; truncated: boolean; since: number; answer: string | undefined } {
  return { texts: [], offsets: [], sizes: [], bytes: 0, truncated: false, since: 0, answer: '' };
}

export class SessionWriter {
  readonly id: string;
  readonly bodies: boolean;
  private controller: AbortController | undefined;
  private failureListener: ((failure: GatewayError) => void) | undefined;
  failure: GatewayError | undefined;
  ended = false;
  private n = 0;
  private last: Promise<void> = Promise.resolve();
  private chunkIndex = 0;
  private firstOffset: number | undefined;
  private storedResponseBytes = 0;
  /** Kept until the forwarded body is recorded, to store an unchanged body once (and a changed one by its changes). */
  private requestText: string | undefined;
  private requestBody: unknown;
  private buffer = emptyBatch();

  /** @internal use Recorder.startSession / beginSession */
  constructor(
    private readonly recorder: Recorder,
    start: SessionStart,
    bodies: boolean,
  ) {
    this.id = start.id;
    this.bodies = bodies;
    const n = this.n++;
    if (bodies) {
      this.requestText = bodyText(start.requestBody);
      this.requestBody = start.requestBody;
    }
    const request = this.requestText === undefined ? undefined : recorder.encode(this.requestText, start.id, n);
    const meta: SessionStartMeta = {
      received_at: start.receivedAt,
      identity: identityOf(start.principal),
      client_ip: start.clientIp,
      user_agent: start.userAgent,
      connection: start.connection,
      model: start.model,
      operation: start.operation,
      stream: start.stream,
      bodies,
      instance: recorder.instanceId,
      request: request?.info,
    };
    const events: NewEvent[] = [{ kind: 'session.start', sessionId: this.id, n, atMs: recorder.now(), meta, parts: request?.parts, ...this.indexed(start.requestBody, request?.info) }];
    if (start.forwardedBody !== undefined) events.push(this.forwardedEvent(start.forwardedBody, start.upstreamModel));
    this.push(events);
  }

  private forwardedEvent(body: unknown, upstreamModel: string | undefined): NewEvent {
    const n = this.n++;
    const event = (meta: SessionForwardedMeta, encoded?: ReturnType<Recorder['encode']>, indexed: unknown = undefined): NewEvent => ({
      kind: 'session.forwarded',
      sessionId: this.id,
      n,
      atMs: this.recorder.now(),
      meta,
      parts: encoded?.parts,
      ...this.indexed(indexed, encoded?.info),
    });
    const requestText = this.requestText;
    const changes = memberChanges(this.requestBody, body);
    this.requestText = this.requestBody = undefined;
    if (!this.bodies) return event({ upstream_model: upstreamModel });
    // The members the gateway replaced, added or dropped (same objects otherwise): only those are stored.
    if (changes && changes.changed.length === 0 && changes.removed.length === 0) return event({ upstream_model: upstreamModel, same_as_request: true });
    if (changes && changes.kept > 0) {
      const changed = Object.fromEntries(changes.changed.map((k) => [k, (body as Record<string, unknown>)[k]]));
      const encoded = this.recorder.encode(JSON.stringify(changed), this.id, n);
      if (!encoded.info.truncated) {
        return event({ upstream_model: upstreamModel, changed: encoded.info, ...(changes.removed.length > 0 && { removed: changes.removed }) }, encoded, changed);
      }
    }
    const text = bodyText(body);
    if (text === requestText) return event({ upstream_model: upstreamModel, same_as_request: true });
    const encoded = this.recorder.encode(text, this.id, n);
    return event({ upstream_model: upstreamModel, body: encoded.info }, encoded, body);
  }

  /**
   * The search text of a body still at hand parsed (an object), so the store
   * does not parse its stored copy again; only when that copy is whole and
   * in clear (else the store extracts from what it holds).
   */
  private indexed(body: unknown, stored: { truncated: boolean } | undefined): { indexText?: string } {
    if (!stored || stored.truncated || this.recorder.cipher || typeof body !== 'object' || body === null || body instanceof Uint8Array) return {};
    // As the pass would extract it from the stored JSON: the conversation's turns, else every string.
    return { indexText: bodyIndexText(body) ?? stringsOfValue(body) };
  }

  private push(events: NewEvent[], onFailure?: () => void): Promise<void> {
    const committed = this.recorder.enqueue(events).catch((err: unknown) => {
      this.fail(err);
      onFailure?.();
    });
    this.last = committed;
    return committed;
  }

  /** Aborts when part of this session could not be recorded: cut the response rather than deliver it unrecorded. */
  get signal(): AbortSignal {
    // Created on first use: most sessions never ask.
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.failure) this.controller.abort(this.failure);
    }
    return this.controller.signal;
  }

  /**
   * Calls `listener` once if part of this session cannot be recorded (at
   * once, if that happened already): cut the response rather than deliver it
   * unrecorded. A plain callback, where `signal` costs every request an
   * AbortController and an event listener.
   */
  onFailure(listener: (failure: GatewayError) => void): void {
    if (this.failure) listener(this.failure);
    else this.failureListener = listener;
  }

  private fail(err: unknown): void {
    if (this.failure) return;
    this.failure = err instanceof GatewayError ? err : recordingUnavailable(err);
    this.controller?.abort(this.failure);
    this.failureListener?.(this.failure);
    this.failureListener = undefined;
  }

  /**
   * Records the body as it will be forwarded, and resolves once it and
   * everything before it is durable. Forward only after this resolves.
   */
  async forwarded(body: unknown, upstreamModel?: string): Promise<void> {
    if (this.failure) throw this.failure;
    await this.push([this.forwardedEvent(body, upstreamModel)]);
    if (this.failure) throw this.failure;
  }

  decision(d: DecisionRecord): void {
    const n = this.n++;
    const excerpt = this.bodies && d.excerpt !== undefined ? this.recorder.encode(d.excerpt, this.id, n) : undefined;
    const meta: DecisionMeta = {
      direction: d.direction,
      action: d.action,
      rule: d.rule,
      entity: d.entity,
      field: d.field,
      span: d.span,
      confidence: d.confidence,
      excerpt: excerpt?.info,
    };
    void this.push([{ kind: 'decision', sessionId: this.id, n, atMs: this.recorder.now(), meta, parts: excerpt?.parts }]);
  }

  /** The limit that refused the request: metadata only, nothing a person wrote. */
  limit(meta: LimitMeta): void {
    void this.push([{ kind: 'limit', sessionId: this.id, n: this.n++, atMs: this.recorder.now(), meta }]);
  }

  approval({ comment: text, ...rest }: ApprovalRecord): void {
    const n = this.n++;
    const comment = this.bodies && text !== undefined ? this.recorder.encode(text, this.id, n) : undefined;
    const meta: ApprovalMeta = { ...rest, comment: comment?.info };
    void this.push([{ kind: 'approval', sessionId: this.id, n, atMs: this.recorder.now(), meta, parts: comment?.parts }]);
  }

  /**
   * One piece of the response exactly as delivered to the client (a whole
   * SSE event or NDJSON line; the whole body for non-streamed responses),
   * with its offset from `receivedAt`. Buffered; flushed at `chunk_bytes`.
   * `answer`: the words it adds, when the caller parsed it already: exactly
   * what `chunkText(text)` gives (content-text.ts `generatedText` of its
   * payload), so the indexing pass takes it instead of parsing the frame
   * again. Without it the pass extracts the text from the stored chunk.
   * `bytes`: `Buffer.byteLength(text)`, when the caller has it already (the relay's chunk encoding gives it).
   */
  chunk(text: string, offsetMs: number, answer?: string, bytes?: number): void {
    if (this.ended) return;
    const size = bytes ?? Buffer.byteLength(text, 'utf8');
    const b = this.buffer;
    if (b.texts.length === 0) b.since = performance.now();
    this.firstOffset ??= offsetMs;
    let stored = '';
    if (this.bodies && this.storedResponseBytes + size <= this.recorder.config.max_body_bytes) {
      stored = text;
      this.storedResponseBytes += size;
      // The batch's search text is known only while every stored chunk's is (a chunk not stored adds none).
      if (b.answer !== undefined) b.answer = answer === undefined ? undefined : b.answer + answer;
    } else {
      b.truncated = true;
    }
    b.texts.push(stored);
    b.offsets.push(Math.round(offsetMs));
    b.sizes.push(size);
    b.bytes += (stored ? size : 0) + 16;
    if (b.bytes >= this.recorder.config.chunk_bytes) this.flushChunks();
  }

  /**
   * The words of the answer recorded so far, known only once it was all
   * recorded (a non-streamed body, parsed whole after it was relayed):
   * exactly `chunkText` of its one chunk. Taken only while the buffer holds
   * the whole answer as that one chunk, stored in full; otherwise the
   * indexing pass extracts the words from the stored chunk as before.
   */
  answered(words: string): void {
    const b = this.buffer;
    if (this.ended || this.chunkIndex !== 0 || b.texts.length !== 1 || b.truncated || b.texts[0] === '' || this.recorder.cipher) return;
    b.answer = words;
  }

  /** @internal Flushes buffered chunks (only if buffered before `olderThan`, when given). */
  flushChunks(olderThan?: number): void {
    const b = this.buffer;
    if (b.texts.length === 0 || (olderThan !== undefined && b.since > olderThan)) return;
    const n = this.n++;
    const { meta, parts, indexText } = this.takeBatch(n)!;
    void this.push([{ kind: 'response.chunks', sessionId: this.id, n, atMs: this.recorder.now(), meta, parts, ...(indexText !== undefined && { indexText }) }]);
  }

  /** The buffered chunks as the batch of event `n` (its meta, content and search text), emptying the buffer; undefined if none. */
  private takeBatch(n: number): { meta: ResponseChunksMeta; parts: ContentPart[] | undefined; indexText: string | undefined } | undefined {
    const b = this.buffer;
    if (b.texts.length === 0) return undefined;
    const meta: ResponseChunksMeta = { first: this.chunkIndex, offsets: b.offsets, sizes: b.sizes, truncated: b.truncated };
    const encoded = this.bodies ? this.recorder.encode(frameChunks(b.texts), this.id, n, Number.MAX_SAFE_INTEGER) : undefined;
    this.chunkIndex += b.texts.length;
    this.buffer = emptyBatch();
    return { meta, parts: encoded?.parts, indexText: encoded && !this.recorder.cipher ? b.answer : undefined };
  }

  /** Resolves once everything recorded so far is durable; never rejects (see `failure`). */
  async flush(): Promise<void> {
    this.flushChunks();
    await this.last;
  }

  /**
   * Completes the session. Resolves once the end is durable, or once storing
   * it failed: the recorder then retries it in the background, and a
   * graceful stop (or recovery after a crash) closes the session as
   * `incomplete`. A session part of which was lost ends `incomplete` too,
   * with the state the gateway gave it in its reason.
   */
  async end(end: SessionEnd): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    const n = this.n++;
    // The last chunks go into the end itself: one event (one hash, one row) fewer per session.
    const last = this.takeBatch(n);
    let meta: SessionEndMeta = {
      state: end.state,
      status: end.status,
      error_code: end.errorCode,
      usage: end.usage,
      ttft_ms: end.ttftMs ?? (this.firstOffset === undefined ? undefined : Math.round(this.firstOffset)),
      latency_ms: Math.round(end.latencyMs),
    };
    if (last) meta.chunks = last.meta;
    // Not waiting on earlier commits keeps group commits large; losses in them are known by now.
    if (this.failure) meta = incompleteEnd(meta);
    const event: NewEvent = {
      kind: 'session.end',
      sessionId: this.id,
      n,
      atMs: this.recorder.now(),
      meta,
      ...(last?.parts && { parts: last.parts }),
      ...(last?.indexText !== undefined && { indexText: last.indexText }),
    };
    let stored = true;
    await this.push([event], () => (stored = false));
    this.recorder.forget(this);
    if (!stored) this.recorder.settleLater({ ...event, meta: incompleteEnd(meta) });
  }
}
