// The reviews inbox: pending reviews the signed-in person may see, kept
// current by the reviews event stream, each with who asked, which rule
// fired and why, the masked prompt, how long it has waited and when it
// expires; approve or reject with a comment. Whether the person may decide
// is explained, not hidden: the API's `can_decide` plus the reason why not.
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api, ApiError, follow, type Identity } from '../api';
import { Link } from '../link';
import { ago, person, span, Untrusted, UntrustedJson, when } from '../text';

interface Party {
  issuer: string;
  subject: string;
  email?: string;
  name?: string;
}

export interface Review {
  id: string;
  kind: 'prompt' | 'access';
  state: string;
  created_at: number;
  expires_at: number;
  decided_at?: number;
  requester: Party & { groups: string[] };
  connection: string;
  model?: string;
  session_id?: string;
  executed_session_id?: string;
  prompt?: unknown;
  rule?: string;
  reason: string;
  approvers: { groups: string[]; required: number };
  approvals: number;
  votes: Array<{ decision: 'approve' | 'reject'; by: Party; at: number; comment?: string }>;
  can_decide: boolean;
  url: string;
}

/** Ticks every second so waiting times and countdowns stay true. */
function useNow(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  return now;
}

export function ReviewsPage({ me }: { me: Identity }) {
  const [pending, setPending] = useState<Review[]>();
  const [decided, setDecided] = useState<Review[]>([]);
  const [error, setError] = useState<string>();
  const [live, setLive] = useState(false);
  const [announcement, setAnnouncement] = useState('');

  const load = useCallback(async () => {
    try {
      const [open, recent] = await Promise.all([
        api<{ data: Review[] }>('/v1/reviews?state=pending&limit=100'),
        api<{ data: Review[] }>('/v1/reviews?limit=20'),
      ]);
      // Lists leave prompts out; each pending review is read in full.
      const full = await Promise.all(open.data.map((r) => api<Review>(`/v1/reviews/${encodeURIComponent(r.id)}`)));
      setPending(full);
      setDecided(recent.data.filter((r) => r.state !== 'pending').slice(0, 10));
      setError(undefined);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  }, []);

  useEffect(() => {
    void load();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stop = follow(
      '/v1/reviews/events',
      (event, data) => {
        if (event !== 'review') return;
        const change = data as { event: string; id: string };
        setAnnouncement(`Review ${change.id} ${change.event}.`);
        // Bursts (two votes, executed right after approved) become one reload.
        clearTimeout(timer);
        timer = setTimeout(() => void load(), 100);
      },
      (on) => {
        setLive(on);
        if (on) void load();
      },
    );
    return () => {
      stop();
      clearTimeout(timer);
    };
  }, [load]);

  return (
    <section aria-labelledby="reviews-title">
      <h1 id="reviews-title" tabIndex={-1}>
        Reviews
      </h1>
      <p class="status-line">
        <span class={live ? 'live on' : 'live'}>{live ? 'Live: updates as reviews change' : 'Connecting to live updates…'}</span>
      </p>
      <div class="sr-only" role="status" aria-live="polite">
        {announcement}
      </div>
      {error && <p role="alert" class="error">{error}</p>}
      <h2>Waiting for a decision</h2>
      {pending === undefined ? (
        <p aria-busy="true">Loading…</p>
      ) : pending.length === 0 ? (
        <p class="empty">Nothing is waiting for a decision.</p>
      ) : (
        <ul class="cards" aria-label="Pending reviews">
          {pending.map((r) => (
            <li key={r.id}>
              <ReviewCard review={r} me={me} onDecided={load} />
            </li>
          ))}
        </ul>
      )}
      <h2>Recently decided</h2>
      {decided.length === 0 ? (
        <p class="empty">No decided reviews yet.</p>
      ) : (
        <table class="list">
          <caption class="sr-only">Recently decided reviews</caption>
          <thead>
            <tr>
              <th scope="col">Review</th>
              <th scope="col">Requester</th>
              <th scope="col">Rule</th>
              <th scope="col">State</th>
              <th scope="col">Decided</th>
            </tr>
          </thead>
          <tbody>
            {decided.map((r) => (
              <tr key={r.id}>
                <td>
                  <Link to={`/reviews/${r.id}`}>{r.id}</Link>
                </td>
                <td>{person(r.requester)}</td>
                <td>{r.rule ?? r.kind}</td>
                <td>
                  <span class={`badge ${r.state}`}>{r.state}</span>
                </td>
                <td>{when(r.decided_at ?? r.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function ReviewPage({ id, me }: { id: string; me: Identity }) {
  const [review, setReview] = useState<Review>();
  const [error, setError] = useState<string>();
  const load = useCallback(async () => {
    try {
      setReview(await api<Review>(`/v1/reviews/${encodeURIComponent(id)}`));
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  }, [id]);
  useEffect(() => {
    void load();
    return follow('/v1/reviews/events', (event, data) => {
      if (event === 'review' && (data as { id: string }).id === id) void load();
    });
  }, [id, load]);
  return (
    <section aria-labelledby="review-title">
      <p>
        <Link to="/reviews">← All reviews</Link>
      </p>
      <h1 id="review-title" tabIndex={-1}>
        Review {id}
      </h1>
      {error && <p role="alert" class="error">{error}</p>}
      {review ? <ReviewCard review={review} me={me} onDecided={load} full /> : !error && <p aria-busy="true">Loading…</p>}
    </section>
  );
}

/** Why this person cannot decide, in words; undefined when they can. */
function whyNot(review: Review, me: Identity): string | undefined {
  if (review.can_decide) return undefined;
  if (review.state !== 'pending') return `This review is ${review.state}; it can no longer be decided.`;
  if (review.requester.subject === me.subject) return 'You asked for this review, so you cannot decide it: another approver must.';
  if (!review.approvers.groups.some((g) => me.groups.includes(g))) return `Only members of ${review.approvers.groups.join(' or ')} may decide this review.`;
  if (review.votes.some((v) => v.by.subject === me.subject)) return `You already approved; it needs ${review.approvers.required} different approvers.`;
  return 'You may not decide this review.';
}

function ReviewCard({ review: r, me, onDecided, full = false }: { review: Review; me: Identity; onDecided: () => void; full?: boolean }) {
  const now = useNow();
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ ok: boolean; text: string }>();
  const reason = whyNot(r, me);
  const titleId = `review-${r.id}`;

  async function decide(action: 'approve' | 'reject') {
    setBusy(true);
    setResult(undefined);
    try {
      const after = await api<Review>(`/v1/reviews/${encodeURIComponent(r.id)}/${action}`, { method: 'POST', body: comment.trim() ? { comment: comment.trim() } : {} });
      setResult({
        ok: true,
        text: after.state === 'pending' ? `Your approval is recorded: ${after.approvals} of ${after.approvers.required}. Another approver must also approve.` : `Review ${after.state}.`,
      });
      setComment('');
      onDecided();
    } catch (err) {
      setResult({ ok: false, text: err instanceof ApiError ? `${err.message} (${err.code})` : String(err) });
    } finally {
      setBusy(false);
    }
  }

  return (
    <article class="card review" aria-labelledby={titleId} data-review-id={r.id}>
      <header>
        <h3 id={titleId}>
          {full ? (
            <span>{r.rule ?? 'Access request'}</span>
          ) : (
            <Link to={`/reviews/${r.id}`}>{r.rule ? `Rule ${r.rule}` : `Access to ${r.connection}`}</Link>
          )}{' '}
          <span class={`badge ${r.state}`}>{r.state}</span>
        </h3>
        <dl class="facts">
          <dt>Requester</dt>
          <dd>{person(r.requester)}</dd>
          <dt>Groups</dt>
          <dd>{r.requester.groups.length ? r.requester.groups.join(', ') : 'none'}</dd>
          <dt>Where</dt>
          <dd>
            {r.connection}
            {r.model ? ` / ${r.model}` : ''}
          </dd>
          <dt>Waiting</dt>
          <dd>{ago(r.created_at, now)}</dd>
          <dt>{r.state === 'pending' ? 'Expires in' : 'Expires'}</dt>
          <dd>{r.state === 'pending' ? span(r.expires_at - now) : when(r.expires_at)}</dd>
          <dt>Approvals</dt>
          <dd>
            {r.approvals} of {r.approvers.required} from {r.approvers.groups.join(' or ')}
          </dd>
          {r.session_id && (
            <>
              <dt>Session</dt>
              <dd>
                <Link to={`/sessions/${r.session_id}`}>{r.session_id}</Link>
              </dd>
            </>
          )}
        </dl>
      </header>
      <p class="reason">
        <strong>Why: </strong>
        <Untrusted text={r.reason} />
      </p>
      {r.prompt !== undefined && (
        <details open>
          <summary>Prompt (as masked for approvers)</summary>
          <UntrustedJson value={promptText(r.prompt)} />
        </details>
      )}
      {r.votes.length > 0 && (
        <>
          <h4>Decisions so far</h4>
          <ol class="votes">
            {r.votes.map((v, i) => (
              <li key={i}>
                {v.decision === 'approve' ? 'Approved' : 'Rejected'} by {person(v.by)} at {when(v.at)}
                {v.comment && (
                  <>
                    : “<Untrusted text={v.comment} />”
                  </>
                )}
              </li>
            ))}
          </ol>
        </>
      )}
      {r.state === 'pending' &&
        (reason ? (
          <p class="explain" role="note">
            {reason}
          </p>
        ) : (
          <form class="decide" onSubmit={(e) => e.preventDefault()}>
            <label for={`comment-${r.id}`}>Comment (optional, recorded with your decision)</label>
            <textarea id={`comment-${r.id}`} rows={2} maxLength={2000} value={comment} onInput={(e) => setComment(e.currentTarget.value)} />
            <div class="actions">
              <button type="button" class="approve" disabled={busy} onClick={() => void decide('approve')}>
                Approve
              </button>
              <button type="button" class="reject" disabled={busy} onClick={() => void decide('reject')}>
                Reject
              </button>
            </div>
          </form>
        ))}
      {result && (
        <p role={result.ok ? 'status' : 'alert'} class={result.ok ? 'ok' : 'error'}>
          {result.text}
        </p>
      )}
    </article>
  );
}

/** Chat prompts read best as "role: text" lines; anything else as JSON. */
function promptText(prompt: unknown): string {
  if (Array.isArray(prompt) && prompt.every((m) => m && typeof m === 'object' && 'role' in m)) {
    return prompt.map((m: { role: string; content?: unknown; text?: unknown }) => `${m.role}: ${typeof m.content === 'string' ? m.content : JSON.stringify(m.content ?? m.text ?? '')}`).join('\n\n');
  }
  if (prompt && typeof prompt === 'object' && 'messages' in prompt) return promptText((prompt as { messages: unknown }).messages);
  return typeof prompt === 'string' ? prompt : JSON.stringify(prompt, null, 2);
}
