// The audit trail's vocabulary: every record is one of these events. Like
// Teleport's audit events, each kind has one typed shape, and everything
// enters the trail through one door (`AuditStore.append`), which chains it.
//
// An event has two halves. `meta` is what the trail vouches for forever
// (who, when, which model, which rule): it is hashed into the chain
// directly. `content` is what a person wrote or a model said (bodies,
// chunks, excerpts): it is stored apart, optionally encrypted, hashed into
// `content_hash`, and can be legitimately redacted by a chained
// `redaction` event.

export type SessionState = 'open' | 'completed' | 'aborted' | 'upstream_failed' | 'refused' | 'incomplete' | 'shutdown';
/** How the gateway ends a session; `incomplete` is only set by crash recovery. */
export type EndState = 'completed' | 'aborted' | 'upstream_failed' | 'refused' | 'shutdown';

/** Size of a recorded body: `stored_bytes < bytes` means it was truncated at `max_body_bytes`. */
export interface ContentInfo {
  bytes: number;
  stored_bytes: number;
  truncated: boolean;
}

export interface RecordedIdentity {
  /** The identity provider that vouched for the person (for a gateway-issued token, the IdP they signed in with). */
  issuer: string;
  /** Who signed the bearer token, when not that IdP: the gateway, after a browser sign-in. */
  token_issuer?: string;
  subject: string;
  email?: string;
  name?: string;
  groups: string[];
  client_id?: string;
  /** A service key's id (`mgk_<id>_…`), when the caller used one. */
  service_key?: string;
  /** For a service identity: the person who created it. */
  owner?: { issuer: string; subject: string; email?: string };
}

export interface SessionStartMeta {
  /** Epoch milliseconds. */
  received_at: number;
  identity: RecordedIdentity;
  client_ip?: string;
  user_agent?: string;
  /** Absent when the request was refused before it was routed. */
  connection?: string;
  model: string;
  operation: string;
  stream: boolean;
  /** False: the connection records metadata only. */
  bodies: boolean;
  /** The recorder instance that owns the session until it ends. */
  instance: string;
  request?: ContentInfo;
}

export interface SessionForwardedMeta {
  upstream_model?: string;
  body?: ContentInfo;
  /** The body was forwarded exactly as received, so it is not stored twice. */
  same_as_request?: boolean;
  /**
   * The body was the one received with some top-level members replaced or
   * added (e.g. the gateway's `stream_options`, masked `messages`): the
   * content is a JSON object of just those members, so what did not change
   * is not stored twice. Sessions recorded before this store the whole body.
   */
  changed?: ContentInfo;
  /** Top-level members of the body received that were not forwarded (with `changed`). */
  removed?: string[];
}

export type DecisionAction = 'allow' | 'flag' | 'mask' | 'block' | 'require_approval' | 'end_stream';

export interface DecisionMeta {
  direction: 'input' | 'output';
  action: DecisionAction;
  rule: string;
  entity?: string;
  /** Where in the body, e.g. `messages[1].content`. */
  field?: string;
  /** UTF-16 offsets into that field. */
  span?: { start: number; end: number };
  confidence?: number;
  excerpt?: ContentInfo;
}

/**
 * A review's state changes as a session records them. `waiting`: this request
 * joined a review an identical request opened; `voted`: an approval short of
 * the required number; `access_granted`: a just-in-time grant let it through.
 */
export type ApprovalOutcome = 'created' | 'waiting' | 'voted' | 'approved' | 'rejected' | 'expired' | 'cancelled' | 'executed' | 'access_granted';

export interface ApprovalMeta {
  outcome: ApprovalOutcome;
  review_id: string;
  rule?: string;
  /** Who made the change (an approver's email or subject), or `gateway`. */
  approver?: string;
  /** The approver's comment is content: encrypted with bodies, and redactable. */
  comment?: ContentInfo;
  approvals?: number;
  required?: number;
}

/** A limit or budget refused the request before anything was forwarded (the session then ends `refused`). */
export interface LimitMeta {
  outcome: 'refused';
  /** The limit's name in `limits.rules`, or `budget:<group>`. */
  limit: string;
  /** requests_per_minute, tokens_per_minute, …, concurrent_requests, monthly_budget; absent when the limit store failed closed. */
  kind?: string;
  /** The counter it was charged to, e.g. `subject=…,model=demo-chat`. */
  scope?: string;
  /** The refusal's stable code, as the client got it. */
  code: string;
  /** When the limit allows the request again (ISO 8601), if it ever does. */
  resets_at?: string;
}

export interface ResponseChunksMeta {
  /** Index of the first chunk of this batch within the response. */
  first: number;
  /** Milliseconds since the request was received, one per chunk. */
  offsets: number[];
  /** Bytes of each chunk as delivered (also when its text was not stored). */
  sizes: number[];
  /** Some chunk texts were not stored: bodies are off, or the response passed `max_body_bytes`. */
  truncated: boolean;
}

export interface TokenUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
  /** Some of the numbers were estimated from text: the model server reported none. */
  estimated?: boolean;
}

export interface SessionEndMeta {
  state: Exclude<SessionState, 'open'>;
  status: number;
  error_code?: string;
  usage?: TokenUsage;
  ttft_ms?: number;
  latency_ms?: number;
  /** Why the gateway, not the request, ended it (crash recovery). */
  reason?: string;
  /**
   * The response's last batch of chunks, stored with the end instead of as a
   * `response.chunks` event of its own (one event fewer per session): the
   * end's content is then their frames, as a batch's is.
   */
  chunks?: ResponseChunksMeta;
}

/** `[seq, content_hash]`: the content an event now legitimately has. */
export type ContentVouch = [number, string];
/** `[seq, hash]`: an event that was legitimately removed from the chain. */
export type DeletionVouch = [number, string];

export interface RedactionMeta {
  scope: 'session' | 'subject' | 'pattern';
  by: string;
  reason?: string;
  /** SHA-256 of the pattern, not the pattern: it may be the very secret being removed. */
  pattern_sha256?: string;
  targets: ContentVouch[];
}

export interface DeletionMeta {
  by: string;
  reason?: string;
  sessions: string[];
  deleted: DeletionVouch[];
}

export interface LegalHoldMeta {
  hold: boolean;
  by: string;
  reason?: string;
}

/** Someone read a session (or, on the trail, exported sessions): who viewed what is itself recorded. */
export interface ViewMeta {
  by: string;
  action: 'open' | 'replay' | 'export';
  /** Export only: the time range asked for (epoch ms). */
  since?: number;
  until?: number;
}

export interface EventMetaByKind {
  'session.start': SessionStartMeta;
  'session.forwarded': SessionForwardedMeta;
  decision: DecisionMeta;
  limit: LimitMeta;
  approval: ApprovalMeta;
  'response.chunks': ResponseChunksMeta;
  'session.end': SessionEndMeta;
  redaction: RedactionMeta;
  'retention.delete': DeletionMeta;
  'session.delete': DeletionMeta;
  legal_hold: LegalHoldMeta;
  'session.view': ViewMeta;
}

export type EventKind = keyof EventMetaByKind;

/** The event kinds whose content, when they have any, is a batch of response chunks (`frameChunks`). */
export const CHUNK_KINDS = ['response.chunks', 'session.end'] as const satisfies readonly EventKind[];

/** Whether an event of this kind may hold a batch of response chunks as its content. */
export const isChunkBatch = (kind: string): boolean => (CHUNK_KINDS as readonly string[]).includes(kind);

/** The chunk batch an event holds: a `response.chunks` event's, or the last one stored with a `session.end`. */
export function chunkBatchOf(kind: string, meta: unknown): ResponseChunksMeta | undefined {
  if (kind === 'response.chunks') return meta as ResponseChunksMeta;
  if (kind === 'session.end') return (meta as SessionEndMeta).chunks;
  return undefined;
}

/** Events that vouch for later changes to other events (read first by `verify`). */
export const EVIDENCE_KINDS = ['redaction', 'retention.delete', 'session.delete'] as const satisfies readonly EventKind[];

/** Events about the trail itself rather than one session carry this session id. */
export const TRAIL_SESSION_ID = '';

/** Events not written by a session's own writer have no content and this ordinal. */
export const NO_ORDINAL = -1;
/**
 * Ordinals from here up are for events another party appends to a session
 * it does not write (an approver's vote, made on any instance); a writer's
 * own ordinals count up from 0 and never get here.
 */
export const APPENDED_ORDINAL_BASE = 2_000_000_000;

/** The typed union: `meta` narrows with `kind`. */
export type AuditEvent = { [K in EventKind]: { kind: K; meta: EventMetaByKind[K] } }[EventKind];

/** One stored part of an event's content (plaintext, or AES-256-GCM ciphertext with its tag). */
export interface ContentPart {
  part: number;
  keyId: string | null;
  nonce: Uint8Array | null;
  data: Uint8Array;
}

/** An event on its way into the trail. */
export type NewEvent = AuditEvent & {
  sessionId: string;
  /** The writer's ordinal for this event in its session; binds encrypted content to its row. */
  n: number;
  atMs: number;
  parts?: ContentPart[];
  /**
   * Dropped (not an error) unless, when committed, the session is still open
   * (recovery must not end a session twice) or still exists (an admin event
   * must not outlive a concurrent delete).
   */
  precondition?: 'open' | 'exists';
  /**
   * What the search index extracts from this event's content, computed by
   * the recorder from what the gateway had parsed already (the request body,
   * each frame's payload), so the store need not parse it again. Neither
   * stored nor hashed: it only saves the indexing pass work, and content
   * read back is extracted as before (search.ts `indexTextOf`).
   */
  indexText?: string;
};

/** An event as the trail holds it. */
export interface StoredEvent {
  seq: number;
  sessionId: string;
  n: number;
  kind: EventKind;
  atMs: number;
  /** The canonical JSON that was hashed; parse with `parseMeta`. */
  metaText: string;
  contentHash: string | null;
  prevHash: string;
  hash: string;
  /** Empty when not requested, or when the event has no content. */
  parts: ContentPart[];
}

export function parseMeta<K extends EventKind>(event: StoredEvent & { kind: K }): EventMetaByKind[K];
export function parseMeta(event: StoredEvent): EventMetaByKind[EventKind];
export function parseMeta(event: StoredEvent): unknown {
  return JSON.parse(event.metaText);
}
