// Recorded sessions: filters as the sessions API takes them (kept in the
// URL, so a filtered view can be shared), newest first, a page at a time
// with the API's keyset cursor. The API decides what the person may see.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { Link } from '../link';
import { navigate, useLocation } from '../router';
import { segments } from '../highlight';
import { escapeHidden, Untrusted, when } from '../text';

export interface SessionRow {
  id: string;
  received_at: number;
  issuer: string;
  subject: string;
  email: string | null;
  groups: string[];
  connection: string | null;
  model: string;
  operation: string;
  stream: boolean;
  state: string;
  status: number | null;
  error_code: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  total_tokens: number | null;
  /** The token numbers were estimated from text: the model server reported none. */
  estimated: boolean;
  ttft_ms: number | null;
  latency_ms: number | null;
  blocked: boolean;
  masked: boolean;
  approved: boolean;
  flagged: boolean;
  redacted: boolean;
  legal_hold: boolean;
}

/** With a text search: where the session matched, and the [start, end) of each term in `text`. */
interface Match {
  source: 'prompt' | 'forwarded' | 'answer';
  text: string;
  highlights: Array<[number, number]>;
}

interface Page {
  data: Array<SessionRow & { match?: Match }>;
  has_more: boolean;
  next_cursor: string | null;
  scope?: 'all' | 'own';
}

const SOURCES: Record<Match['source'], string> = { prompt: 'Prompt', forwarded: 'As forwarded', answer: 'Answer' };

const FILTERS = [
  { key: 'user', label: 'Person (subject or email)', type: 'text' },
  { key: 'group', label: 'Group', type: 'text' },
  { key: 'connection', label: 'Connection', type: 'text' },
  { key: 'model', label: 'Model', type: 'text' },
  { key: 'since', label: 'Since (e.g. 24h or 2026-01-31)', type: 'text' },
  { key: 'until', label: 'Until', type: 'text' },
] as const;

// The API's states (audit/api.ts STATES); `shutdown`: still streaming when the gateway's shutdown grace ran out.
const STATES = ['open', 'completed', 'aborted', 'upstream_failed', 'refused', 'incomplete', 'shutdown'];
const DECISIONS = ['blocked', 'masked', 'approved', 'flagged'];

export function SessionsPage() {
  const { query } = useLocation();
  const key = query.toString();
  const [rows, setRows] = useState<Page['data']>();
  const [page, setPage] = useState<Page>();
  const [error, setError] = useState<string>();
  const [loading, setLoading] = useState(false);

  async function fetchPage(cursor?: string) {
    setLoading(true);
    try {
      const params = new URLSearchParams(query);
      params.set('limit', '50');
      if (cursor) params.set('cursor', cursor);
      const next = await api<Page>(`/v1/sessions?${params}`);
      setRows((prev) => (cursor ? [...(prev ?? []), ...next.data] : next.data));
      setPage(next);
      setError(undefined);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setLoading(false);
    }
  }

  const searching = Boolean(query.get('q'));
  useEffect(() => {
    setRows(undefined);
    void fetchPage();
  }, [key]);

  function apply(event: Event) {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const params = new URLSearchParams();
    for (const [name, value] of form) if (typeof value === 'string' && value.trim()) params.set(name, value.trim());
    navigate(`/sessions${params.size ? `?${params}` : ''}`);
  }

  return (
    <section aria-labelledby="sessions-title">
      <h1 id="sessions-title" tabIndex={-1}>
        Sessions
      </h1>
      {page?.scope && (
        <p class="status-line">{page.scope === 'all' ? 'You are an auditor: you see every recorded session.' : 'You see the sessions you made.'}</p>
      )}
      <form class="filters" onSubmit={apply} role="search" aria-label="Search and filter sessions">
        <div class="search-bar">
          <label>
            <span>Search prompts and answers</span>
            <input name="q" type="search" defaultValue={query.get('q') ?? ''} aria-describedby="search-help" placeholder='words, "a phrase", prefix*' />
          </label>
          <button type="submit">Search</button>
        </div>
        <p id="search-help" class="note search-help">
          Every word must occur (case and accents ignored); quote a phrase; end a word with * to match its start. Encrypted recordings are never indexed.
        </p>
        {FILTERS.map((f) => (
          <label key={f.key}>
            <span>{f.label}</span>
            <input name={f.key} type={f.type} defaultValue={query.get(f.key) ?? ''} />
          </label>
        ))}
        <label>
          <span>State</span>
          <select name="state" defaultValue={query.get('state') ?? ''}>
            <option value="">any</option>
            {STATES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          <span>Decision</span>
          <select name="decision" defaultValue={query.get('decision') ?? ''}>
            <option value="">any</option>
            {DECISIONS.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <div class="actions">
          <button type="submit">Apply filters</button>
          <button type="button" class="quiet" onClick={() => navigate('/sessions')}>
            Clear
          </button>
        </div>
      </form>
      {error && <p role="alert" class="error">{error}</p>}
      {rows === undefined ? (
        <p aria-busy="true">Loading…</p>
      ) : rows.length === 0 ? (
        <p class="empty">No sessions match.</p>
      ) : (
        <div class="table-wrap">
          <table class="list sessions">
            <caption class="sr-only">Recorded sessions, newest first</caption>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Person</th>
                <th scope="col">Connection / model</th>
                <th scope="col">State</th>
                <th scope="col">Decisions</th>
                <th scope="col">Tokens</th>
                <th scope="col">Latency</th>
                {searching && <th scope="col">Where it matched</th>}
              </tr>
            </thead>
            <tbody>
              {rows.map((s) => (
                <tr key={s.id} data-session-id={s.id}>
                  <td>
                    <Link to={`/sessions/${s.id}`}>{when(s.received_at)}</Link>
                  </td>
                  <td>{escapeHidden(s.email ?? s.subject)}</td>
                  <td>
                    {s.connection ?? '—'} / {s.model}
                  </td>
                  <td>
                    <span class={`badge ${s.state}`}>{s.state}</span>
                  </td>
                  <td>{flags(s)}</td>
                  <td>{s.total_tokens === null ? '—' : <Tokens count={s.total_tokens} estimated={s.estimated} />}</td>
                  <td>{s.latency_ms === null ? '—' : `${s.latency_ms} ms`}</td>
                  {searching && <td class="match">{s.match ? <MatchText match={s.match} /> : <span class="note">the stored text no longer shows the words</span>}</td>}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {page?.has_more && page.next_cursor && (
        <p>
          <button type="button" disabled={loading} onClick={() => void fetchPage(page.next_cursor!)}>
            {loading ? 'Loading…' : 'Load older sessions'}
          </button>
        </p>
      )}
    </section>
  );
}

/** A search excerpt: untrusted text, the terms marked at the offsets the API gave. */
function MatchText({ match }: { match: Match }) {
  const marks = match.highlights.map(([start, end]) => ({ start, end, kind: 'masked' as const, label: 'search term' }));
  return (
    <>
      <span class="source">{SOURCES[match.source] ?? match.source}:</span>
      <bdi class="untrusted" dir="ltr">
        {segments(match.text, marks).map((piece) =>
          piece.marks.length === 0 ? (
            <Untrusted key={piece.start} text={piece.text} marks={false} />
          ) : (
            <mark key={piece.start} class="term">
              <Untrusted text={piece.text} marks={false} />
            </mark>
          ),
        )}
      </bdi>
    </>
  );
}

export function flags(s: Pick<SessionRow, 'blocked' | 'masked' | 'approved' | 'flagged' | 'redacted' | 'legal_hold'>): string {
  const out = [s.blocked && 'blocked', s.masked && 'masked', s.approved && 'approved', s.flagged && 'flagged', s.redacted && 'redacted', s.legal_hold && 'on hold'].filter(Boolean);
  return out.length ? out.join(', ') : '—';
}

/** A token count, marked `~` when it includes numbers estimated from text (the model server reported none). */
export function Tokens({ count, estimated }: { count: number; estimated: boolean }) {
  if (!estimated) return <>{count}</>;
  return (
    <span class="estimated" title="estimated from the text: the model server reported no usage">
      ~{count}
      <span class="sr-only"> (estimated)</span>
    </span>
  );
}
