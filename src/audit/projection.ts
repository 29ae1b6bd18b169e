// The `sessions` table is a projection of the events, kept for search. It is
// written in the same transaction as the events, from the same pure function
// `verify` folds, so an edit to a projected column (say, a forged legal
// hold) is caught by comparing the row with its events.
import type { AuditEvent, SessionState } from './events.js';

export interface SessionRow {
  id: string;
  received_at: number;
  issuer: string;
  subject: string;
  email: string | null;
  groups: string[];
  client_ip: string | null;
  user_agent: string | null;
  connection: string | null;
  model: string;
  operation: string;
  stream: boolean;
  bodies: boolean;
  instance_id: string;
  state: SessionState;
  status: number | null;
  error_code: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  total_tokens: number | null;
  /** The token numbers were estimated from text: the model server reported none. */
  estimated: boolean;
  ttft_ms: number | null;
  latency_ms: number | null;
  ended_at: number | null;
  blocked: boolean;
  masked: boolean;
  approved: boolean;
  /** A guardrail flagged it (action `flag`). */
  flagged: boolean;
  redacted: boolean;
  legal_hold: boolean;
}

export type SessionColumn = Exclude<keyof SessionRow, 'id' | 'groups'>;
export type SessionUpdate = Partial<Pick<SessionRow, SessionColumn>>;

export type Projection = { insert: SessionRow } | { update: SessionUpdate } | undefined;

/** Which columns are booleans (stored as 0/1) and which are numbers, for the SQL layers. */
export const BOOLEAN_COLUMNS = ['stream', 'bodies', 'estimated', 'blocked', 'masked', 'approved', 'flagged', 'redacted', 'legal_hold'] as const satisfies readonly SessionColumn[];
export const INTEGER_COLUMNS = [
  'received_at',
  'status',
  'prompt_tokens',
  'completion_tokens',
  'total_tokens',
  'ttft_ms',
  'latency_ms',
  'ended_at',
] as const satisfies readonly SessionColumn[];

export const SESSION_COLUMNS: readonly SessionColumn[] = [
  'received_at',
  'issuer',
  'subject',
  'email',
  'client_ip',
  'user_agent',
  'connection',
  'model',
  'operation',
  'stream',
  'bodies',
  'instance_id',
  'state',
  'status',
  'error_code',
  'prompt_tokens',
  'completion_tokens',
  'total_tokens',
  'ttft_ms',
  'latency_ms',
  'ended_at',
  'blocked',
  'masked',
  'approved',
  'flagged',
  'redacted',
  'legal_hold',
  'estimated',
];

export function projectEvent(sessionId: string, event: AuditEvent, atMs: number): Projection {
  switch (event.kind) {
    case 'session.start': {
      const m = event.meta;
      return {
        insert: {
          id: sessionId,
          received_at: m.received_at,
          issuer: m.identity.issuer,
          subject: m.identity.subject,
          email: m.identity.email ?? null,
          groups: m.identity.groups,
          client_ip: m.client_ip ?? null,
          user_agent: m.user_agent ?? null,
          connection: m.connection ?? null,
          model: m.model,
          operation: m.operation,
          stream: m.stream,
          bodies: m.bodies,
          instance_id: m.instance,
          state: 'open',
          status: null,
          error_code: null,
          prompt_tokens: null,
          completion_tokens: null,
          total_tokens: null,
          estimated: false,
          ttft_ms: null,
          latency_ms: null,
          ended_at: null,
          blocked: false,
          masked: false,
          approved: false,
          flagged: false,
          redacted: false,
          legal_hold: false,
        },
      };
    }
    case 'decision':
      if (event.meta.action === 'block') return { update: { blocked: true } };
      if (event.meta.action === 'mask') return { update: { masked: true } };
      if (event.meta.action === 'flag') return { update: { flagged: true } };
      return undefined;
    case 'approval':
      return event.meta.outcome === 'approved' ? { update: { approved: true } } : undefined;
    case 'session.end': {
      const m = event.meta;
      return {
        update: {
          state: m.state,
          status: m.status,
          error_code: m.error_code ?? null,
          prompt_tokens: m.usage?.prompt_tokens ?? null,
          completion_tokens: m.usage?.completion_tokens ?? null,
          total_tokens: m.usage?.total_tokens ?? null,
          estimated: m.usage?.estimated === true,
          ttft_ms: m.ttft_ms ?? null,
          latency_ms: m.latency_ms ?? null,
          ended_at: atMs,
        },
      };
    }
    case 'redaction':
      return { update: { redacted: true } };
    case 'legal_hold':
      return { update: { legal_hold: event.meta.hold } };
    case 'session.forwarded':
    case 'limit':
    case 'response.chunks':
    case 'retention.delete':
    case 'session.delete':
    case 'session.view':
      return undefined;
  }
}

/** The row a session's events imply, or undefined without a `session.start`. */
export function foldSession(sessionId: string, events: Iterable<{ event: AuditEvent; atMs: number }>): SessionRow | undefined {
  let row: SessionRow | undefined;
  for (const { event, atMs } of events) {
    const p = projectEvent(sessionId, event, atMs);
    if (!p) continue;
    if ('insert' in p) row = { ...p.insert };
    else if (row) Object.assign(row, p.update);
  }
  return row;
}
