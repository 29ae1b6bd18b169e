// What a storage driver provides. Both drivers hold the same schema
// (src/audit/migrations) and pass the same test suite. Every write that
// touches the trail happens in one transaction that holds the chain head, so
// the chain stays linear however many gateway instances write to it.
import type { StorageConfig } from './config.js';
import type { ContentPart, NewEvent, StoredEvent } from './events.js';
import type { SessionRow } from './projection.js';
import type { SearchTerm } from './search.js';

export type { SessionRow };

export interface ChainHead {
  seq: number;
  hash: string;
}

export interface RecorderInstance {
  id: string;
  hostname: string;
  pid: number;
  started_at: number;
  heartbeat_at: number;
  closed_at: number | null;
}

export type DecisionFilter = 'blocked' | 'masked' | 'approved' | 'flagged';

export interface SessionQuery {
  issuer?: string;
  /** Any of these issuers: one person's identity at their IdP and in gateway-issued tokens (browser sign-in). */
  issuers?: string[];
  subject?: string;
  /** Subject or email. */
  user?: string;
  group?: string;
  connection?: string;
  model?: string;
  /** Epoch ms, inclusive. */
  since?: number;
  /** Epoch ms, exclusive. */
  until?: number;
  decision?: DecisionFilter;
  state?: SessionRow['state'];
  /** Full-text search: sessions whose indexed prompt or answer has every term. */
  text?: SearchTerm[];
  /** Keyset pagination: sessions strictly older than this one (newest first). */
  before?: { receivedAt: number; id: string };
  limit: number;
}

/** Sessions of `connection` (null: every connection without its own period) received before `beforeMs` are expired. */
export interface RetentionCutoff {
  connection: string | null;
  beforeMs: number;
}

export interface ExpiredQuery {
  cutoffs: RetentionCutoff[];
  /** Connections with their own period: the default cutoff does not apply to them. */
  ownPeriod: string[];
  limit: number;
}

export interface ContentRewrite {
  n: number;
  parts: ContentPart[];
}

export interface DeleteOutcome {
  deleted: string[];
  /** On legal hold: kept. */
  held: string[];
  /** Still in progress: kept. */
  open: string[];
}

/** A thread's V8 heap before and after a collection, in bytes: in use, and held from the OS. */
export interface ThreadHeap {
  usedBytes: [before: number, after: number];
  heldBytes: [before: number, after: number];
}

export interface AuditStore {
  readonly driver: 'sqlite' | 'postgres';

  /**
   * Appends events in one transaction, chained in order. Returns each event's seq, or null if dropped by its `precondition`.
   * `replay`: the batch may have committed already (its transaction's answer was lost); events of a session already
   * stored under their ordinal (and starts of sessions that exist) are not appended again, and their stored seq is returned.
   */
  append(events: NewEvent[], options?: { replay?: boolean }): Promise<Array<number | null>>;
  /** Number of append transactions committed by this handle (group commit observability). */
  readonly transactions: number;

  registerInstance(instance: RecorderInstance): Promise<void>;
  heartbeat(id: string, atMs: number): Promise<void>;
  closeInstance(id: string, atMs: number): Promise<void>;
  unclosedInstances(): Promise<RecorderInstance[]>;
  /** Sessions still open that belong to these instances. */
  openSessions(instanceIds: string[]): Promise<string[]>;

  /**
   * After a burst (ops/idle-reclaim.ts): gives back memory held for it, such as SQLite's page cache; a store on its
   * own thread also collects that thread's heap, and answers with its size (in use, and held) before and after.
   */
  reclaimMemory?(): Promise<ThreadHeap | void>;

  chainHead(): Promise<ChainHead>;
  getSession(id: string): Promise<SessionRow | undefined>;
  listSessions(query: SessionQuery): Promise<SessionRow[]>;
  /** Every session row, in id order, a page at a time (for verify). */
  scanSessions(afterId: string, limit: number): Promise<SessionRow[]>;
  sessionEvents(sessionId: string, withContent: boolean): Promise<StoredEvent[]>;
  /** The events (without content) of several sessions, in seq order. */
  eventsOfSessions(sessionIds: string[]): Promise<StoredEvent[]>;
  /** Events with seq > afterSeq in seq order. */
  readEvents(afterSeq: number, limit: number, options?: { withContent?: boolean; kinds?: readonly string[]; sinceMs?: number }): Promise<StoredEvent[]>;
  sessionIdsOfSubject(subject: string, issuer?: string): Promise<string[]>;
  expiredSessions(query: ExpiredQuery): Promise<string[]>;

  /**
   * Replaces the content of some of a session's events and appends `evidence`
   * (a redaction event), whose `targets` the store fills with the new content
   * hashes, all in one transaction. Refused for sessions on legal hold.
   */
  rewriteContents(sessionId: string, rewrites: ContentRewrite[], evidence: NewEvent & { kind: 'redaction' }): Promise<{ seq: number }>;
  /**
   * Deletes sessions that are neither on legal hold nor still open, with all their events and content,
   * and appends `evidence` whose `sessions`/`deleted` the store fills in.
   */
  deleteSessions(ids: string[], evidence: NewEvent & { kind: 'retention.delete' | 'session.delete' }): Promise<DeleteOutcome>;
  /**
   * Full-text indexing, after the fact: in one transaction, indexes the sessions of up to `limit` session ends
   * recorded since the last pass (src/audit/search.ts), each from its stored content. Returns how many ends it
   * went through; 0 when nothing was waiting.
   */
  indexEnded(limit: number): Promise<number>;
  /** Makes removed content unrecoverable where the driver can (SQLite: checkpoint the WAL). */
  purge(): Promise<void>;

  close(): Promise<void>;
}

export class StorageUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageUnavailableError';
  }
}

/**
 * The database refused a value the write holds (PostgreSQL: a data exception
 * or a size limit), not an outage: the same write fails again however often
 * it is tried. The recorder then stores each session of the group commit
 * alone, so only the one holding the value fails.
 */
export class RejectedWriteError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RejectedWriteError';
  }
}

/** A change a session's state does not allow: it is on legal hold, still open, or gone. */
export class SessionStateError extends Error {
  constructor(
    readonly sessionId: string,
    readonly reason: 'legal_hold' | 'open' | 'not_found',
  ) {
    super(
      reason === 'legal_hold'
        ? `session ${sessionId} is on legal hold; release the hold first`
        : reason === 'open'
          ? `session ${sessionId} is still in progress`
          : `session ${sessionId} does not exist`,
    );
    this.name = 'SessionStateError';
  }
}

/**
 * Opens the configured store and brings its schema up to date. The gateway
 * uses `thread: 'worker'` (writes off its event loop); the CLI and tests may
 * use the calling thread.
 */
export async function openStore(storage: StorageConfig, options: { thread?: 'main' | 'worker' } = {}): Promise<AuditStore> {
  if (options.thread === 'worker') {
    const { WorkerStore } = await import('./worker-store.js');
    return WorkerStore.open(storage);
  }
  if (storage.driver === 'postgres') {
    const { PostgresStore } = await import('./postgres-store.js');
    return PostgresStore.open(storage.postgres!);
  }
  const { SqliteStore } = await import('./sqlite-store.js');
  return SqliteStore.open(storage.sqlite);
}
