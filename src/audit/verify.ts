// `audit verify`: walks the whole chain and names every event that was
// edited, inserted, deleted or moved behind the gateway's back. Legitimate
// changes are not problems because they are vouched for by chained
// evidence: a redaction lists the new content hash of each event it
// rewrote, a deletion lists the seq and hash of each event it removed.
//
// Limits: someone who can rewrite every row from some point to the end
// *and* the chain head can forge a consistent chain; compare the printed
// head with a copy kept elsewhere (`--expect-head`) to rule that out.
import { contentHash, eventHash, GENESIS_HASH } from './chain.js';
import { APPENDED_ORDINAL_BASE, EVIDENCE_KINDS, parseMeta, TRAIL_SESSION_ID, type AuditEvent, type DeletionMeta, type RedactionMeta, type StoredEvent } from './events.js';
import { foldSession, SESSION_COLUMNS, type SessionRow } from './projection.js';
import type { AuditStore, ChainHead } from './store.js';

export type ProblemKind = 'modified' | 'inserted' | 'deleted' | 'reordered';

export interface Problem {
  kind: ProblemKind;
  /** The event concerned; null when the problem is a session row. */
  seq: number | null;
  sessionId: string | null;
  detail: string;
}

export interface VerifyResult {
  ok: boolean;
  /** Events checked. */
  checked: number;
  /** Session rows compared with their events. */
  sessions: number;
  head: ChainHead;
  problems: Problem[];
  /** More problems were found than listed. */
  truncated: boolean;
}

const PAGE = 500;
const MAX_PROBLEMS = 1000;

/**
 * 52 bits of a hash as a number: a compact key for the per-event maps.
 * Used only to explain breaks (which row a link points at), never to detect them.
 */
const key = (hash: string): number => Number.parseInt(hash.slice(0, 13), 16);

export async function verify(store: AuditStore, options: { expectHead?: ChainHead } = {}): Promise<VerifyResult> {
  const problems: Problem[] = [];
  let problemCount = 0;
  const report = (p: Problem): void => {
    problemCount++;
    if (problems.length < MAX_PROBLEMS) problems.push(p);
  };

  // Pass 1: what the evidence vouches for.
  const vouchedContent = new Map<number, string>();
  const vouchedDeletions = new Map<number, { hash: string; by: number }>();
  for (let after = 0; ; ) {
    const page = await store.readEvents(after, PAGE, { kinds: EVIDENCE_KINDS });
    if (page.length === 0) break;
    for (const event of page) {
      after = event.seq;
      try {
        if (event.kind === 'redaction') for (const [seq, hash] of (parseMeta(event) as RedactionMeta).targets) vouchedContent.set(seq, hash);
        else for (const [seq, hash] of (parseMeta(event) as DeletionMeta).deleted) vouchedDeletions.set(seq, { hash, by: event.seq });
      } catch {
        // Unparseable evidence vouches for nothing; pass 2 reports the edit.
      }
    }
  }
  const deletions = [...vouchedDeletions.entries()].sort((a, b) => a[0] - b[0]);
  let nextDeletion = 0;

  // Pass 2: walk the chain in seq order, merging in the vouched deletions.
  // Cheap checks stream; rows that fail their hash or link are kept aside
  // and explained at the end, when every row's hash is known.
  let prev = { seq: 0, hash: GENESIS_HASH };
  const hashAt = new Map<number, number>();
  const suspects = new Map<number, Suspect>();
  const brokenLinks: Array<{ seq: number; sessionId: string | null; prevHash: string }> = [];
  const claimed = new Set<number>();
  const startedSessions = new Set<string>();
  let checked = 0;
  const reportGap = (fromSeq: number, toSeq: number): void => {
    if (toSeq === fromSeq + 1) return;
    const range = toSeq - fromSeq === 2 ? `event ${fromSeq + 1} is` : `events ${fromSeq + 1}..${toSeq - 1} are`;
    report({ kind: 'deleted', seq: fromSeq + 1, sessionId: null, detail: `${range} missing, and no deletion event vouches for them` });
  };
  const consumeDeletionsBefore = (seq: number): void => {
    while (nextDeletion < deletions.length && deletions[nextDeletion]![0] < seq) {
      const [deletedSeq, vouch] = deletions[nextDeletion++]!;
      reportGap(prev.seq, deletedSeq);
      prev = { seq: deletedSeq, hash: vouch.hash };
    }
  };

  for (let after = 0; ; ) {
    const page = await store.readEvents(after, PAGE, { withContent: true });
    if (page.length === 0) break;
    for (const event of page) {
      after = event.seq;
      checked++;
      consumeDeletionsBefore(event.seq);
      const sessionId = event.sessionId === TRAIL_SESSION_ID ? null : event.sessionId;
      const deletedBy = vouchedDeletions.get(event.seq);
      if (deletedBy) {
        report({ kind: 'inserted', seq: event.seq, sessionId, detail: `event ${event.seq} is present although event ${deletedBy.by} recorded its deletion` });
        nextDeletion++;
      }
      reportGap(prev.seq, event.seq);
      if (eventHash(event.prevHash, event) !== event.hash) suspects.set(event.seq, { event: { ...event, parts: [] }, sessionId });
      if (event.contentHash !== null || event.parts.length > 0) {
        const actual = contentHash(event.parts);
        if (actual === null) {
          report({ kind: 'deleted', seq: event.seq, sessionId, detail: `the content of this ${event.kind} event is missing` });
        } else if (actual !== event.contentHash && vouchedContent.get(event.seq) !== actual) {
          report({ kind: 'modified', seq: event.seq, sessionId, detail: `the content (${contentName(event.kind)}) of this ${event.kind} event was edited without a redaction event` });
        }
      }
      if (event.prevHash !== prev.hash) brokenLinks.push({ seq: event.seq, sessionId, prevHash: event.prevHash });
      if (event.kind === 'session.start') startedSessions.add(event.sessionId);
      claimed.add(key(event.prevHash));
      hashAt.set(event.seq, key(event.hash));
      prev = { seq: event.seq, hash: event.hash };
    }
  }
  consumeDeletionsBefore(Number.POSITIVE_INFINITY);
  const head = await store.chainHead();
  if (suspects.size > 0 || brokenLinks.length > 0) explainBreaks({ suspects, brokenLinks, hashAt, claimed, vouchedDeletions, head, report });

  if (head.seq !== prev.seq || head.hash !== prev.hash) {
    if (head.seq > prev.seq) report({ kind: 'deleted', seq: prev.seq + 1, sessionId: null, detail: `the chain head is at event ${head.seq}, but the last event is ${prev.seq}: events at the end were removed` });
    else if (head.seq < prev.seq) report({ kind: 'inserted', seq: head.seq + 1, sessionId: null, detail: `events after the chain head (${head.seq}) were added outside the gateway` });
    else report({ kind: 'modified', seq: prev.seq, sessionId: null, detail: 'the last event does not match the chain head' });
  }
  if (options.expectHead && (options.expectHead.seq > head.seq || (options.expectHead.seq === head.seq && options.expectHead.hash !== head.hash))) {
    report({ kind: 'modified', seq: options.expectHead.seq, sessionId: null, detail: `the chain no longer contains the expected head ${options.expectHead.seq}:${options.expectHead.hash}` });
  } else if (options.expectHead && options.expectHead.seq < head.seq) {
    const [event] = await store.readEvents(options.expectHead.seq - 1, 1);
    const vouched = vouchedDeletions.get(options.expectHead.seq)?.hash;
    const hash = event?.seq === options.expectHead.seq ? event.hash : vouched;
    if (hash !== options.expectHead.hash) report({ kind: 'modified', seq: options.expectHead.seq, sessionId: null, detail: `event ${options.expectHead.seq} no longer has the expected hash ${options.expectHead.hash}` });
  }

  const sessions = await verifyProjection(store, startedSessions, report);
  return { ok: problemCount === 0, checked, sessions, head, problems, truncated: problemCount > problems.length };
}

interface Suspect {
  event: StoredEvent;
  sessionId: string | null;
}

/**
 * Explains rows that fail their own hash or their link. A row that hashes
 * correctly at the seq right after the row its link names was moved
 * ('reordered'); links are then judged by original positions, so the rows
 * around a moved one are not blamed. What remains was edited, or inserted
 * (a row nothing links to).
 */
function explainBreaks(input: {
  suspects: Map<number, Suspect>;
  brokenLinks: Array<{ seq: number; sessionId: string | null; prevHash: string }>;
  hashAt: Map<number, number>;
  claimed: Set<number>;
  vouchedDeletions: Map<number, { hash: string }>;
  head: ChainHead;
  report: (p: Problem) => void;
}): void {
  const { suspects, hashAt, claimed, vouchedDeletions, report } = input;
  const seqOfHash = new Map<number, number>();
  for (const [seq, hash] of hashAt) seqOfHash.set(hash, seq);
  for (const [seq, vouch] of vouchedDeletions) if (!seqOfHash.has(key(vouch.hash))) seqOfHash.set(key(vouch.hash), seq);
  seqOfHash.set(key(GENESIS_HASH), 0);

  // The original seq of each moved row; runs of moved rows resolve through their links.
  const original = new Map<number, number>();
  const resolve = (seq: number): void => {
    const path: number[] = [];
    let current: number | undefined = seq;
    let base: number | undefined;
    while (current !== undefined) {
      if (!suspects.has(current)) {
        base = current;
        break;
      }
      if (original.has(current)) {
        base = original.get(current);
        break;
      }
      if (path.includes(current)) return;
      path.push(current);
      current = seqOfHash.get(key(suspects.get(current)!.event.prevHash));
    }
    if (base === undefined) return;
    for (let i = path.length - 1; i >= 0; i--) {
      const event = suspects.get(path[i]!)!.event;
      if (eventHash(event.prevHash, { ...event, seq: base + 1 }) !== event.hash) return;
      base += 1;
      original.set(path[i]!, base);
    }
  };
  for (const seq of suspects.keys()) resolve(seq);

  const atOriginal = new Map<number, number>();
  for (const [seq, hash] of hashAt) if (!suspects.has(seq)) atOriginal.set(seq, hash);
  for (const [seq, from] of original) atOriginal.set(from, hashAt.get(seq)!);
  for (const [seq, vouch] of vouchedDeletions) if (!atOriginal.has(seq)) atOriginal.set(seq, key(vouch.hash));

  for (const [seq, { event, sessionId }] of suspects) {
    const from = original.get(seq);
    if (from !== undefined) {
      report({ kind: 'reordered', seq, sessionId, detail: `${event.kind} event was written as event ${from} and now sits at ${seq}` });
    } else if (claimed.has(key(event.hash)) || input.head.hash === event.hash) {
      report({ kind: 'modified', seq, sessionId, detail: `${event.kind} event does not match its hash: its kind, time, session or metadata was edited` });
    } else {
      report({ kind: 'inserted', seq, sessionId, detail: `${event.kind} event was not written by the gateway: it does not match its hash and no event links to it` });
    }
  }
  for (const link of input.brokenLinks) {
    if (suspects.has(link.seq)) continue;
    const expected = atOriginal.get(link.seq - 1);
    // A gap is reported already; a link that matches the original order is explained by a move.
    if (expected === undefined || expected === key(link.prevHash)) continue;
    const skipped = seqOfHash.get(key(link.prevHash)) === link.seq - 2 ? expected : undefined;
    if (skipped !== undefined && !claimed.has(skipped)) {
      report({ kind: 'inserted', seq: link.seq - 1, sessionId: null, detail: `event ${link.seq - 1} sits between two events that are linked to each other` });
    } else {
      report({ kind: 'modified', seq: link.seq, sessionId: link.sessionId, detail: `event ${link.seq} does not link to event ${link.seq - 1}: the link or the predecessor's hash was edited` });
    }
  }
}

/** Compares each session row with the row its events imply. */
async function verifyProjection(store: AuditStore, started: Set<string>, report: (p: Problem) => void): Promise<number> {
  let count = 0;
  for (let after = ''; ; ) {
    const rows = await store.scanSessions(after, PAGE);
    if (rows.length === 0) break;
    after = rows[rows.length - 1]!.id;
    const events = await store.eventsOfSessions(rows.map((r) => r.id));
    const bySession = new Map<string, Array<{ event: AuditEvent; atMs: number }>>();
    for (const e of events) {
      let list = bySession.get(e.sessionId);
      if (!list) bySession.set(e.sessionId, (list = []));
      try {
        list.push({ event: { kind: e.kind, meta: JSON.parse(e.metaText) } as AuditEvent, atMs: e.atMs });
      } catch {
        // An unparseable event is already reported by the chain walk.
      }
    }
    for (const row of rows) {
      count++;
      started.delete(row.id);
      const expected = foldSession(row.id, bySession.get(row.id) ?? []);
      if (!expected) {
        report({ kind: 'inserted', seq: null, sessionId: row.id, detail: 'a session row exists without a session.start event' });
        continue;
      }
      const differing = differences(expected, row);
      if (differing.length > 0) {
        report({ kind: 'modified', seq: null, sessionId: row.id, detail: `session row differs from its events in ${differing.join(', ')}` });
      }
    }
  }
  for (const id of started) report({ kind: 'deleted', seq: null, sessionId: id, detail: 'the session row is missing, although its events are present' });
  return count;
}

function differences(expected: SessionRow, actual: SessionRow): string[] {
  const out: string[] = [];
  for (const column of SESSION_COLUMNS) if (expected[column] !== actual[column]) out.push(column);
  if (JSON.stringify(expected.groups) !== JSON.stringify(actual.groups)) out.push('groups');
  return out;
}

function contentName(kind: string): string {
  switch (kind) {
    case 'session.start':
      return 'the request as received';
    case 'session.forwarded':
      return 'the request as forwarded';
    case 'response.chunks':
      return 'response chunks';
    case 'decision':
      return 'a guardrail excerpt';
    default:
      return 'its content';
  }
}

export type SessionChainStatus =
  | { status: 'verified'; events: number }
  | { status: 'broken'; seq: number | null; problems: Problem[]; events: number }
  | { status: 'unverifiable'; reason: string; events: number };

/**
 * The hash-chain status of one session, without walking the whole trail:
 * each of its events matches its hash and stored content (or a redaction
 * that vouches for it), links to the event before it and is linked to by
 * the event after it (or the head, or a vouched deletion), its writer's
 * ordinals have no hole, and its session row matches its events. What this
 * cannot rule out is a consistent rewrite of everything after it including
 * the head; `audit verify --expect-head` does.
 */
export async function verifySession(store: AuditStore, sessionId: string): Promise<SessionChainStatus> {
  const events = await store.sessionEvents(sessionId, true);
  const row = await store.getSession(sessionId);
  if (events.length === 0) return { status: 'unverifiable', reason: 'no event of this session is stored', events: 0 };
  if (row?.state === 'open') return { status: 'unverifiable', reason: 'the session is still being recorded: its record is not final', events: events.length };
  const problems: Problem[] = [];
  const report = (kind: ProblemKind, seq: number | null, detail: string): void => void problems.push({ kind, seq, sessionId, detail });

  const vouchedContent = new Map<number, string>();
  for (const e of events) {
    if (e.kind !== 'redaction') continue;
    try {
      for (const [seq, hash] of (parseMeta(e) as RedactionMeta).targets) vouchedContent.set(seq, hash);
    } catch {
      // Reported below: unparseable evidence fails its own hash.
    }
  }
  let deletions: Map<number, string> | undefined;
  const deletedHash = async (seq: number): Promise<string | undefined> => {
    if (!deletions) {
      deletions = new Map();
      for (let after = 0; ; ) {
        const page = await store.readEvents(after, PAGE, { kinds: ['retention.delete', 'session.delete'] });
        if (page.length === 0) break;
        for (const e of page) {
          after = e.seq;
          try {
            for (const [s, hash] of (parseMeta(e) as DeletionMeta).deleted) deletions.set(s, hash);
          } catch {
            // Vouches for nothing.
          }
        }
      }
    }
    return deletions.get(seq);
  };
  for (const event of events) {
    if (eventHash(event.prevHash, event) !== event.hash) report('modified', event.seq, `${event.kind} event does not match its hash: its kind, time, session or metadata was edited`);
    if (event.contentHash !== null || event.parts.length > 0) {
      const actual = contentHash(event.parts);
      if (actual === null) report('deleted', event.seq, `the content of this ${event.kind} event is missing`);
      else if (actual !== event.contentHash && vouchedContent.get(event.seq) !== actual) {
        report('modified', event.seq, `the content (${contentName(event.kind)}) of this ${event.kind} event was edited without a redaction event`);
      }
    }
    const [before] = event.seq > 1 ? await store.readEvents(event.seq - 2, 1) : [];
    const expectedPrev = event.seq === 1 ? GENESIS_HASH : before?.seq === event.seq - 1 ? before.hash : await deletedHash(event.seq - 1);
    if (expectedPrev === undefined) report('deleted', event.seq - 1, `event ${event.seq - 1}, before this ${event.kind} event, is missing and no deletion event vouches for it`);
    else if (expectedPrev !== event.prevHash) report('modified', event.seq, `event ${event.seq} does not link to event ${event.seq - 1}`);
    let [after] = await store.readEvents(event.seq, 1);
    if (after === undefined) {
      // The newest event: the head must be it, unless another event was committed meanwhile.
      const now = await store.chainHead();
      if (now.seq !== event.seq) [after] = await store.readEvents(event.seq, 1);
      else if (now.hash !== event.hash) report('modified', event.seq, `event ${event.seq} does not match the chain head`);
    }
    if (after === undefined) {
      const now = await store.chainHead();
      if (now.seq !== event.seq) report('deleted', event.seq + 1, `the chain head is at event ${now.seq}, but nothing follows event ${event.seq}`);
    } else if (after.seq === event.seq + 1) {
      if (after.prevHash !== event.hash) report('modified', event.seq, `event ${event.seq + 1} does not link to this ${event.kind} event: it was edited or replaced`);
    } else if ((await deletedHash(event.seq + 1)) === undefined) {
      report('deleted', event.seq + 1, `event ${event.seq + 1}, after this ${event.kind} event, is missing and no deletion event vouches for it`);
    }
  }

  const ordinals = events.map((e) => e.n).filter((n) => n >= 0 && n < APPENDED_ORDINAL_BASE);
  ordinals.sort((a, b) => a - b);
  ordinals.forEach((n, i) => {
    if (n !== i && ordinals[i - 1] !== n) report('deleted', null, `event ${i} of the session's own record is missing`);
  });

  const parsed: Array<{ event: AuditEvent; atMs: number }> = [];
  for (const e of events) {
    try {
      parsed.push({ event: { kind: e.kind, meta: JSON.parse(e.metaText) } as AuditEvent, atMs: e.atMs });
    } catch {
      // Its hash check reports it.
    }
  }
  const expected = foldSession(sessionId, parsed);
  if (!expected) report('deleted', null, 'the session.start event is missing');
  else if (!row) report('deleted', null, 'the session row is missing, although its events are present');
  else {
    const differing = differences(expected, row);
    if (differing.length > 0) report('modified', null, `session row differs from its events in ${differing.join(', ')}`);
  }

  if (problems.length === 0) return { status: 'verified', events: events.length };
  const first = problems.filter((p) => p.seq !== null).sort((a, b) => a.seq! - b.seq!)[0];
  return { status: 'broken', seq: first?.seq ?? null, problems: problems.slice(0, 50), events: events.length };
}
