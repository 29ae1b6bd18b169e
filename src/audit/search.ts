// Full-text search over stored prompts and answers: what the index holds for
// an event, and the one query language both drivers translate (SQLite FTS5,
// PostgreSQL tsvector). Only plaintext content is ever indexed: an event with
// an encrypted part gives no text, so with recording encryption on the index
// stays empty and search is refused (SessionArchive.list).
import { decodeContent } from './content.js';
import { chunkText, promptOf, REDACTED, stringsOf, unframeChunks } from './content-text.js';
import { isChunkBatch, type ContentPart, type EventKind } from './events.js';

/** Sessions indexed per indexing transaction (AuditStore.indexEnded). */
export const INDEX_BATCH = 500;

/** The event kinds whose content is indexed: the prompt as received and as forwarded, and the answer as delivered (its last batch stored with the end). */
export const INDEXED_KINDS: readonly EventKind[] = ['session.start', 'session.forwarded', 'response.chunks', 'session.end'];

/**
 * Most characters indexed per event. PostgreSQL refuses a tsvector over
 * 1 MB, which would fail the recording commit; this keeps far below it.
 */
const MAX_INDEXED_CHARS = 200_000;

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The searchable text of an event's stored content, or undefined when there
 * is none to index: no content, an encrypted part, a whole-session redaction.
 * An event kept from its commit may carry the text the recorder extracted
 * already (`NewEvent.indexText`, the same extraction from what the gateway
 * had parsed): it is used instead of decoding and parsing the content.
 */
export function indexTextOf(event: IndexableEvent, trim = true): string | undefined {
  const parts = event.parts ?? [];
  if (!INDEXED_KINDS.includes(event.kind as EventKind) || (event.indexText === undefined && parts.length === 0) || parts.some((p) => p.keyId !== null)) return undefined;
  let searchable = event.indexText ?? extractText(event, parts);
  if (searchable === undefined) return undefined;
  // NUL is not valid in PostgreSQL text; it separates words as well as a space does.
  searchable = searchable.slice(0, MAX_INDEXED_CHARS).replace(/\0/g, ' ');
  if (trim) searchable = searchable.trim();
  return searchable === '' || searchable === REDACTED ? undefined : searchable;
}

/** The text to index, extracted from stored content: the prompt of a body, the words of every delivered frame. */
function extractText(event: IndexableEvent, parts: readonly ContentPart[]): string | undefined {
  let text: string;
  try {
    text = decodeContent(parts, event, undefined);
  } catch {
    return undefined;
  }
  if (isChunkBatch(event.kind)) {
    try {
      return unframeChunks(text).map(chunkText).join('');
    } catch {
      return undefined;
    }
  }
  return bodyIndexText(parseJson(text)) ?? stringsOf(text);
}

/** A request body's searchable text: its conversation's turns, or undefined when it has none (then every string of it). */
export function bodyIndexText(body: unknown): string | undefined {
  const turns = body === undefined ? [] : promptOf(body);
  return turns.length > 0 ? turns.map((t) => t.text).join('\n') : undefined;
}

/** Most characters of one session's index entry: three sources at most, each within MAX_INDEXED_CHARS. */
const MAX_SESSION_CHARS = 2 * MAX_INDEXED_CHARS;

/** An event as the index reads it: stored, or kept from its commit (then perhaps with its text extracted already). */
type IndexableEvent = { kind: string; sessionId: string; n: number; parts?: readonly ContentPart[]; indexText?: string };

/**
 * A session's index entry: the searchable text of its indexed events (in
 * ordinal order; the answer's batches joined, so a word split between two
 * batches is found), or undefined when there is nothing to index.
 */
export function sessionIndexText(events: readonly IndexableEvent[]): string | undefined {
  const sources: string[] = [];
  const answer: IndexableEvent[] = [];
  for (const event of events) {
    if (isChunkBatch(event.kind)) answer.push(event);
    else {
      const text = indexTextOf(event);
      if (text !== undefined) sources.push(text);
    }
  }
  if (answer.length > 0) {
    let joined = '';
    for (const event of answer) {
      if (joined.length >= MAX_INDEXED_CHARS) break;
      // Batches are indexed as one text: no separator, so a word cut between two batches is whole again.
      joined += indexTextOf(event, false) ?? '';
    }
    joined = joined.slice(0, MAX_INDEXED_CHARS).trim();
    if (joined !== '' && joined !== REDACTED) sources.push(joined);
  }
  const text = sources.join('\n').slice(0, MAX_SESSION_CHARS);
  return text === '' ? undefined : text;
}

type IndexEvent = { kind: string; sessionId: string; n: number; parts?: ContentPart[]; indexText?: string };

/**
 * The indexed events of sessions committed through one store handle and not
 * indexed yet, kept (copied) from their commits so the indexing pass does
 * not read them back. Only sessions whose start was committed here are
 * complete; anything else, or anything over the bounds, is read back. A
 * redaction or deletion forgets its sessions first.
 */
export class PendingIndex {
  private readonly sessions = new Map<number, { events: IndexEvent[]; bytes: number }>();
  private bytes = 0;
  /** Sessions whose end was committed here, in that order, with when. */
  private readonly ended: Array<[number, number]> = [];

  constructor(
    private readonly maxBytes = 16 * 1024 * 1024,
    private readonly maxSessions = 100_000,
    /**
     * A copy is dropped this long after its session ended even if no pass here took it: another process's pass
     * (several workers or instances on one database) may have indexed the session, and then a redaction or deletion
     * there would not reach this copy.
     */
    private readonly endedGraceMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** After a commit: the committed events, with their sessions' sids (null: no session row). */
  committed(events: ReadonlyArray<{ event: IndexableEvent; sid: number | null }>): void {
    for (const { event, sid } of events) {
      if (sid === null) continue;
      let entry = this.sessions.get(sid);
      if (event.kind === 'session.start' && !entry) {
        if (this.sessions.size >= this.maxSessions) this.evictOldest();
        this.sessions.set(sid, (entry = { events: [], bytes: 0 }));
      }
      if (entry && event.kind === 'session.end') this.ended.push([sid, this.now()]);
      if (!entry || !INDEXED_KINDS.includes(event.kind as EventKind)) continue;
      const parts = event.parts ?? [];
      // Encrypted content is never indexed: keep nothing of it.
      if (parts.length === 0 || parts.some((p) => p.keyId !== null)) continue;
      // The text extracted already is all the pass needs; else a copy of the content, to extract it from.
      const kept: IndexEvent =
        event.indexText !== undefined
          ? { kind: event.kind, sessionId: event.sessionId, n: event.n, indexText: event.indexText }
          : { kind: event.kind, sessionId: event.sessionId, n: event.n, parts: parts.map((p) => ({ part: p.part, keyId: null, nonce: null, data: p.data.slice() })) };
      const size = kept.indexText !== undefined ? kept.indexText.length * 2 : kept.parts!.reduce((sum, p) => sum + p.data.byteLength, 0);
      entry.events.push(kept);
      entry.bytes += size;
      this.bytes += size;
      while (this.bytes > this.maxBytes && this.sessions.size > 0) this.evictOldest();
    }
    const cutoff = this.now() - this.endedGraceMs;
    let stale = Math.max(0, this.ended.length - this.maxSessions);
    for (let i = 0; i < stale; i++) this.forget(this.ended[i]![0]);
    while (stale < this.ended.length && this.ended[stale]![1] < cutoff) this.forget(this.ended[stale++]![0]);
    if (stale > 0) this.ended.splice(0, stale);
  }

  /** Sessions with a copy kept. */
  get size(): number {
    return this.sessions.size;
  }

  /** The kept events of a session (complete), removing them; undefined: read them back. */
  take(sid: number): IndexEvent[] | undefined {
    const entry = this.sessions.get(sid);
    if (!entry) return undefined;
    this.forget(sid);
    return entry.events;
  }

  forget(sid: number): void {
    const entry = this.sessions.get(sid);
    if (!entry) return;
    this.bytes -= entry.bytes;
    this.sessions.delete(sid);
  }

  private evictOldest(): void {
    const first = this.sessions.keys().next();
    if (!first.done) this.forget(first.value);
  }
}

/** A session's index entry, ready to write. */
export type IndexEntry = { sid: number; text: string };

/**
 * The first half of an indexing pass over `sids`: the entries of the sessions
 * whose content was kept since their commits, and the sessions to read back.
 */
export function keptEntries(pending: PendingIndex, sids: readonly number[]): { entries: IndexEntry[]; unread: number[] } {
  const entries: IndexEntry[] = [];
  const unread: number[] = [];
  for (const sid of sids) {
    const kept = pending.take(sid);
    if (kept === undefined) unread.push(sid);
    else pushEntry(entries, sid, kept);
  }
  return { entries, unread };
}

/** The second half: entries from the indexed events read back, `events[i]` belonging to session `sidOf(i)`, in session order. */
export function readEntries(events: readonly IndexableEvent[], sidOf: (i: number) => number, into: IndexEntry[]): void {
  for (let i = 0; i < events.length; ) {
    const sid = sidOf(i);
    let j = i;
    while (j < events.length && sidOf(j) === sid) j++;
    pushEntry(into, sid, events.slice(i, j));
    i = j;
  }
}

function pushEntry(entries: IndexEntry[], sid: number, events: readonly IndexableEvent[]): void {
  const text = sessionIndexText(events);
  if (text !== undefined) entries.push({ sid, text });
}

export type SearchTerm = { kind: 'word' | 'prefix' | 'phrase'; text: string };

export class SearchQueryError extends Error {}

const WORD = /[\p{L}\p{N}]/u;

/**
 * The query language: words (all must occur, case and accents ignored),
 * "quoted phrases" (words in that order), and `prefix*`. Anything else is
 * text to look for, never syntax of the underlying engine.
 */
export function parseSearchQuery(q: string): SearchTerm[] {
  if (q.length > 1000) throw new SearchQueryError('the search text is longer than 1000 characters');
  const terms: SearchTerm[] = [];
  for (const match of q.matchAll(/"([^"]*)"?|(\S+)/g)) {
    const phrase = match[1];
    const word = match[2];
    if (phrase !== undefined) {
      if (WORD.test(phrase)) terms.push({ kind: 'phrase', text: phrase.trim() });
    } else if (word !== undefined) {
      const prefix = /^[\p{L}\p{N}_]+\*$/u.test(word);
      const text = prefix ? word.slice(0, -1) : word;
      if (WORD.test(text)) terms.push({ kind: prefix ? 'prefix' : 'word', text });
    }
  }
  if (terms.length === 0) throw new SearchQueryError('the search text has no letters or digits to look for');
  if (terms.length > 16) throw new SearchQueryError('the search text has more than 16 terms');
  return terms;
}

/** An FTS5 MATCH expression: every term a quoted string (so nothing in it is syntax), ANDed. */
export function fts5Match(terms: readonly SearchTerm[]): string {
  return terms.map((t) => `"${t.text.replace(/"/g, '""')}"${t.kind === 'prefix' ? '*' : ''}`).join(' AND ');
}

/**
 * Text as PostgreSQL indexes and queries it: accents removed, as FTS5's
 * `remove_diacritics` does (the `unaccent` extension may not be installed).
 */
export function foldAccents(text: string): string {
  return text.normalize('NFD').replace(/\p{M}+/gu, '').normalize('NFC');
}

/** A PostgreSQL tsquery expression over the `simple` configuration; `param` binds each term's text. */
export function tsQuery(terms: readonly SearchTerm[], param: (value: unknown) => string): string {
  return terms
    .map((t) => {
      const text = param(foldAccents(t.text));
      return t.kind === 'phrase'
        ? `phraseto_tsquery('simple', ${text})`
        : t.kind === 'prefix'
          ? `to_tsquery('simple', quote_literal(lower(${text})) || ':*')`
          : `plainto_tsquery('simple', ${text})`;
    })
    .join(' && ');
}

/** Where a search result matched, for a person to see why it was found. */
export interface SearchMatch {
  /** Which stored text matched. */
  source: 'prompt' | 'forwarded' | 'answer';
  /** An excerpt of it, cut at whole characters. */
  text: string;
  /** [start, end) of each term found in `text`, UTF-16 offsets. */
  highlights: Array<[number, number]>;
}

const SOURCES: Record<string, SearchMatch['source']> = { 'session.start': 'prompt', 'session.forwarded': 'forwarded', 'response.chunks': 'answer', 'session.end': 'answer' };
const CONTEXT = 60;

/** `text` lowercased and without accents, with the index in `text` of each of its UTF-16 units. */
function folded(text: string): { text: string; at: number[] } {
  let out = '';
  const at: number[] = [];
  for (let i = 0; i < text.length; ) {
    const cp = text.codePointAt(i)!;
    const width = cp > 0xffff ? 2 : 1;
    const f = foldAccents(String.fromCodePoint(cp)).toLowerCase();
    for (let k = 0; k < f.length; k++) at.push(i);
    out += f;
    i += width;
  }
  at.push(text.length);
  return { text: out, at };
}

const isWordChar = (c: string | undefined): boolean => c !== undefined && /[\p{L}\p{N}_]/u.test(c);

/**
 * The first place in `text` where a term of the query occurs as a whole
 * word (or word start, for a prefix), with every term occurrence nearby
 * highlighted. Undefined when none occurs (the index matched elsewhere).
 */
export function matchIn(text: string, terms: readonly SearchTerm[], kind: string): SearchMatch | undefined {
  const source = SOURCES[kind];
  if (!source) return undefined;
  const f = folded(text);
  const hits: Array<[number, number]> = [];
  for (const term of terms) {
    const needle = folded(term.kind === 'phrase' ? term.text.replace(/\s+/g, ' ') : term.text).text;
    if (!needle) continue;
    for (let from = 0; ; ) {
      const i = f.text.indexOf(needle, from);
      if (i < 0) break;
      from = i + 1;
      const end = i + needle.length;
      if (isWordChar(f.text[i - 1]) && isWordChar(needle[0])) continue;
      if (term.kind !== 'prefix' && isWordChar(f.text[end]) && isWordChar(needle[needle.length - 1])) continue;
      hits.push([f.at[i]!, f.at[end]!]);
    }
  }
  if (hits.length === 0) return undefined;
  hits.sort((a, b) => a[0] - b[0]);
  const first = hits[0]!;
  let start = Math.max(0, first[0] - CONTEXT);
  let end = Math.min(text.length, first[1] + CONTEXT * 2);
  // Never cut a surrogate pair in half.
  if (start > 0 && /[\udc00-\udfff]/.test(text[start]!)) start--;
  if (end < text.length && /[\udc00-\udfff]/.test(text[end]!)) end++;
  const prefix = start > 0 ? '…' : '';
  const excerpt = prefix + text.slice(start, end) + (end < text.length ? '…' : '');
  const highlights = hits.filter(([s, e]) => s >= start && e <= end).map(([s, e]): [number, number] => [s - start + prefix.length, e - start + prefix.length]);
  return { source, text: excerpt, highlights };
}
