// One recorded session: who, where, tokens and latencies, guardrail
// decisions, the approval trail, its chained events, and a replay of the
// answer with the streaming timing it was recorded with. Opening the page
// (GET /v1/sessions/:id) and pressing play (GET .../replay) are each
// recorded by the gateway as views of the session.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api } from '../api';
import { Link } from '../link';
import { highlightFields, type Decision } from '../highlight';
import { escapeHidden, Marked, span as duration, Untrusted, UntrustedJson, when } from '../text';
import { flags, type SessionRow } from './sessions';

interface Chunk {
  index: number;
  offset_ms: number;
  size: number;
  raw: string | null;
  text: string;
}

interface Detail {
  session: SessionRow;
  request: { body?: unknown; error?: string };
  forwarded?: { body?: unknown; error?: string; upstream_model?: string };
  decisions: Array<Decision & { confidence?: number; at: number; excerpt_text?: string }>;
  approvals: Array<{ outcome: string; review_id: string; approver: string; approvals: number; required: number; at: number; comment_text?: string }>;
  response: { chunks: Chunk[]; text: string; truncated: boolean; error?: string };
  end?: { state: string; status: number; error_code?: string; at: number };
  events: Array<{ seq: number; kind: string; at: number; hash: string; meta: unknown }>;
}

type ChainStatus =
  | { status: 'verified'; events: number }
  | { status: 'broken'; seq: number | null; problems: Array<{ kind: string; seq: number | null; detail: string }>; events: number }
  | { status: 'unverifiable'; reason: string; events: number };

interface Replay {
  prompt: Array<{ role: string; text: string }>;
  chunks: Chunk[];
}

export function SessionPage({ id }: { id: string }) {
  const [detail, setDetail] = useState<Detail>();
  const [error, setError] = useState<string>();
  const [chain, setChain] = useState<ChainStatus | { status: 'error'; message: string }>();
  useEffect(() => {
    api<Detail>(`/v1/sessions/${encodeURIComponent(id)}`).then(
      (d) => {
        setDetail(d);
        // Checked after opening, so the view event just recorded is part of what is verified.
        api<ChainStatus>(`/v1/sessions/${encodeURIComponent(id)}/verify`).then(setChain, (err: unknown) =>
          setChain({ status: 'error', message: err instanceof Error ? err.message : String(err) }),
        );
      },
      (err: unknown) => setError(err instanceof Error ? err.message : String(err)),
    );
  }, [id]);

  const s = detail?.session;
  return (
    <section aria-labelledby="session-title">
      <p>
        <Link to="/sessions">← All sessions</Link>
      </p>
      <h1 id="session-title" tabIndex={-1}>
        Session {id}
      </h1>
      {error && <p role="alert" class="error">{error}</p>}
      {!detail && !error && <p aria-busy="true">Loading…</p>}
      {detail && s && (
        <>
          <dl class="facts wide">
            <dt>Person</dt>
            <dd>
              {escapeHidden(s.email ?? s.subject)} ({escapeHidden(s.issuer)})
            </dd>
            <dt>Groups</dt>
            <dd>{s.groups.join(', ') || 'none'}</dd>
            <dt>Received</dt>
            <dd>{when(s.received_at)}</dd>
            <dt>Connection / model</dt>
            <dd>
              {s.connection ?? '—'} / {s.model}
              {detail.forwarded?.upstream_model && detail.forwarded.upstream_model !== s.model ? ` (upstream ${detail.forwarded.upstream_model})` : ''}
            </dd>
            <dt>Operation</dt>
            <dd>
              {s.operation}
              {s.stream ? ', streamed' : ''}
            </dd>
            <dt>Outcome</dt>
            <dd>
              <span class={`badge ${s.state}`}>{s.state}</span> {s.status ?? ''} {s.error_code ?? ''}
            </dd>
            <dt>Decisions</dt>
            <dd>{flags(s)}</dd>
            <dt>Tokens</dt>
            <dd>
              {s.prompt_tokens ?? '—'} in, {s.completion_tokens ?? '—'} out, {s.total_tokens ?? '—'} total
            </dd>
            <dt>Time to first token</dt>
            <dd>{s.ttft_ms === null ? '—' : `${s.ttft_ms} ms`}</dd>
            <dt>Latency</dt>
            <dd>{s.latency_ms === null ? '—' : `${s.latency_ms} ms`}</dd>
          </dl>

          <h2>Prompt</h2>
          {detail.forwarded?.error || detail.request.error ? (
            <p class="error">The content could not be read: {detail.forwarded?.error ?? detail.request.error}</p>
          ) : (
            <Prompt detail={detail} />
          )}

          <Player id={id} detail={detail} />

          <h2>Guardrail decisions</h2>
          {detail.decisions.length === 0 ? (
            <p class="empty">No rule fired.</p>
          ) : (
            <ul class="decisions">
              {detail.decisions.map((d, i) => (
                <li key={i} class={`decision ${d.action}`}>
                  <strong>{d.rule}</strong> ({d.direction}): <span class={`badge ${d.action}`}>{d.action}</span> {d.entity ?? ''}
                  {d.field && ` in ${d.field}`}
                  {d.span && `[${d.span.start}..${d.span.end}]`}
                  {d.confidence !== undefined && `, confidence ${d.confidence.toFixed(2)}`}
                  {d.excerpt_text && (
                    <>
                      {' '}
                      (excerpt: <Untrusted text={d.excerpt_text} />)
                    </>
                  )}
                </li>
              ))}
            </ul>
          )}

          <h2>Approval trail</h2>
          {detail.approvals.length === 0 ? (
            <p class="empty">No approval was involved.</p>
          ) : (
            <ol class="votes">
              {detail.approvals.map((a, i) => (
                <li key={i}>
                  {when(a.at)}: {a.outcome} by {escapeHidden(a.approver)} ({a.approvals} of {a.required}) — review{' '}
                  <Link to={`/reviews/${a.review_id}`}>{a.review_id}</Link>
                  {a.comment_text && (
                    <>
                      : “<Untrusted text={a.comment_text} />”
                    </>
                  )}
                </li>
              ))}
            </ol>
          )}

          <h2>Audit trail</h2>
          <ChainLine chain={chain} />
          <p class="note">
            {detail.events.length} events in the tamper-evident chain; <code>modelgate audit verify</code> checks every hash. Views of this session are recorded here too.
          </p>
          <div class="table-wrap">
            <table class="list events">
              <caption class="sr-only">Chained events of this session</caption>
              <thead>
                <tr>
                  <th scope="col">Seq</th>
                  <th scope="col">Event</th>
                  <th scope="col">At</th>
                  <th scope="col">Hash</th>
                </tr>
              </thead>
              <tbody>
                {detail.events.map((e) => (
                  <tr key={e.seq}>
                    <td>{e.seq}</td>
                    <td>
                      {e.kind}
                      {e.kind === 'session.view' && ` (${viewText(e.meta)})`}
                    </td>
                    <td>{when(e.at)}</td>
                    <td>
                      <code title={e.hash}>{e.hash.slice(0, 16)}…</code>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}

/** Each prompt field as received, guardrail hits marked where they fired, and as forwarded, masked text marked. */
function Prompt({ detail }: { detail: Detail }) {
  const fields = useMemo(() => highlightFields(detail.request.body, detail.forwarded?.body, detail.decisions), [detail]);
  if (fields.length === 0) return <UntrustedJson value={promptOf(detail.forwarded?.body ?? detail.request.body)} />;
  const hits = fields.reduce((n, f) => n + f.received.marks.length, 0);
  return (
    <div class="prompt-fields">
      {hits > 0 && <p class="note">Highlighted: where an input rule fired, to the character, in the prompt as received; below each, the text as forwarded with what masking replaced.</p>}
      {fields.map((f) => (
        <div class="prompt-field" key={f.path} data-field={f.path}>
          <p class="field-name">
            <strong>{f.role}</strong> <code>{f.path}</code>
          </p>
          <pre class="untrusted-block received">
            <Marked text={f.received.text} marks={f.received.marks} />
          </pre>
          {f.forwarded && (
            <>
              <p class="field-name">As forwarded to the model</p>
              <pre class="untrusted-block forwarded">
                {f.forwarded.marks.length > 0 ? <Marked text={f.forwarded.text} marks={f.forwarded.marks} /> : <Untrusted text={f.forwarded.text} />}
              </pre>
            </>
          )}
        </div>
      ))}
    </div>
  );
}

function ChainLine({ chain }: { chain: ChainStatus | { status: 'error'; message: string } | undefined }) {
  if (!chain) return <p class="chain" aria-busy="true">Checking the hash chain…</p>;
  switch (chain.status) {
    case 'verified':
      return (
        <p class="chain verified" role="status" data-chain="verified">
          <span class="badge completed">verified</span> Each of this session's {chain.events} events matches its hash and links to its neighbours in the chain.
        </p>
      );
    case 'broken':
      return (
        <div class="chain broken" role="alert" data-chain="broken">
          <p>
            <span class="badge blocked">broken</span> {chain.seq === null ? 'The session record does not match its events.' : `The chain is broken at event ${chain.seq}.`}
          </p>
          <ul>
            {chain.problems.map((p, i) => (
              <li key={i}>
                {p.kind}
                {p.seq !== null && ` at event ${p.seq}`}: <Untrusted text={p.detail} />
              </li>
            ))}
          </ul>
        </div>
      );
    case 'unverifiable':
      return (
        <p class="chain" role="status" data-chain="unverifiable">
          <span class="badge open">not verifiable</span> <Untrusted text={chain.reason} />
        </p>
      );
    default:
      return (
        <p class="chain error" data-chain="error">
          The hash chain could not be checked: {chain.message}
        </p>
      );
  }
}

function viewText(meta: unknown): string {
  const m = meta as { action?: string; by?: string };
  return escapeHidden(`${m.action ?? 'view'} by ${m.by ?? '?'}`);
}

function promptOf(body: unknown): string {
  const b = body as { messages?: Array<{ role?: string; content?: unknown }>; prompt?: unknown; input?: unknown } | undefined;
  if (b && Array.isArray(b.messages)) return b.messages.map((m) => `${m.role ?? 'user'}: ${typeof m.content === 'string' ? m.content : JSON.stringify(m.content)}`).join('\n\n');
  if (b && typeof b.prompt === 'string') return b.prompt;
  if (b && typeof b.input === 'string') return b.input;
  return JSON.stringify(body ?? null, null, 2);
}

const SPEEDS = [0.5, 1, 2, 4];

/** Replays the answer chunk by chunk at the recorded offsets: play, pause, speed and a scrubber. */
function Player({ id, detail }: { id: string; detail: Detail }) {
  const [replay, setReplay] = useState<Replay>();
  const [error, setError] = useState<string>();
  const [position, setPosition] = useState(0);
  const [playing, setPlaying] = useState(false);
  const [speed, setSpeed] = useState(1);
  const clock = useRef<{ startedAt: number; from: number }>();

  const chunks = replay?.chunks ?? detail.response.chunks;
  const total = chunks.length ? chunks[chunks.length - 1]!.offset_ms : 0;
  const shown = useMemo(() => chunks.filter((c) => c.offset_ms <= position), [chunks, position]);
  const text = shown.map((c) => c.text).join('');

  useEffect(() => {
    if (!playing) return;
    const mine = { startedAt: performance.now(), from: position >= total ? 0 : position };
    clock.current = mine;
    if (position >= total) setPosition(0);
    let frame = 0;
    const tick = () => {
      // A scrub or pause clears the clock at once; a frame already scheduled must not move the position back.
      if (clock.current !== mine) return;
      const c = mine;
      const next = c.from + (performance.now() - c.startedAt) * speed;
      if (next >= total) {
        setPosition(total);
        setPlaying(false);
        return;
      }
      setPosition(next);
      frame = requestAnimationFrame(tick);
    };
    frame = requestAnimationFrame(tick);
    return () => cancelAnimationFrame(frame);
  }, [playing, speed]);

  async function play() {
    if (!replay) {
      try {
        // Replaying is recorded by the gateway as its own view of the session.
        setReplay(await api<Replay>(`/v1/sessions/${encodeURIComponent(id)}/replay`));
      } catch (err) {
        setError(err instanceof Error ? err.message : String(err));
        return;
      }
    }
    setPlaying(true);
  }

  return (
    <section class="player" aria-labelledby="replay-title">
      <h2 id="replay-title">Answer replay</h2>
      {detail.response.error && <p class="error">The answer could not be read: {detail.response.error}</p>}
      {error && <p role="alert" class="error">{error}</p>}
      <div class="controls">
        {playing ? (
          <button
            type="button"
            onClick={() => {
              clock.current = undefined;
              setPlaying(false);
            }}
          >
            Pause
          </button>
        ) : (
          <button type="button" onClick={() => void play()} disabled={chunks.length === 0}>
            Play
          </button>
        )}
        <label>
          <span>Speed</span>
          <select value={String(speed)} onChange={(e) => setSpeed(Number(e.currentTarget.value))}>
            {SPEEDS.map((s) => (
              <option key={s} value={String(s)}>
                {s}×
              </option>
            ))}
          </select>
        </label>
        <label class="scrubber">
          <span>Position</span>
          <input
            type="range"
            min={0}
            max={Math.max(total, 1)}
            step={1}
            value={Math.round(position)}
            aria-valuetext={`${duration(position)} of ${duration(total)}, ${shown.length} of ${chunks.length} chunks`}
            onInput={(e) => {
              clock.current = undefined;
              setPlaying(false);
              setPosition(Number(e.currentTarget.value));
            }}
          />
        </label>
        <span class="clock" aria-hidden="true">
          {(position / 1000).toFixed(2)} s / {(total / 1000).toFixed(2)} s · {shown.length}/{chunks.length} chunks
        </span>
      </div>
      <pre class="untrusted-block answer" aria-live="off" data-chunks-shown={shown.length}>
        <Untrusted text={text} />
      </pre>
      {detail.response.truncated && <p class="note">The recording of this answer was truncated at the configured size.</p>}
    </section>
  );
}
