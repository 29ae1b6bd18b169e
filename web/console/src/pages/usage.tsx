// Usage: totals and cost per model, group and person from the usage API
// (GET /v1/usage), with the requests a limit refused and the token counts
// estimated from text (marked ~), and charts over time aggregated in the browser from the
// sessions API (the sessions the person may see, newest first, up to
// MAX_SESSIONS): requests, tokens, blocks, masks, approvals, latency and
// time to first token.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { escapeHidden } from '../text';
import { Tokens, type SessionRow } from './sessions';

const MAX_SESSIONS = 5_000;
const RANGES = [
  { value: '24h', label: 'Last 24 hours', bucketMs: 3_600_000 },
  { value: '7d', label: 'Last 7 days', bucketMs: 86_400_000 },
] as const;

interface Bucket {
  start: number;
  requests: number;
  tokens: number;
  blocked: number;
  masked: number;
  approved: number;
  latency: number[];
  ttft: number[];
}

export function UsagePage() {
  const [range, setRange] = useState<(typeof RANGES)[number]>(RANGES[0]);
  const [rows, setRows] = useState<SessionRow[]>();
  const [capped, setCapped] = useState(false);
  const [error, setError] = useState<string>();

  useEffect(() => {
    let cancelled = false;
    setRows(undefined);
    (async () => {
      const all: SessionRow[] = [];
      let cursor: string | null = null;
      do {
        const params = new URLSearchParams({ since: range.value, limit: '1000' });
        if (cursor) params.set('cursor', cursor);
        const page: { data: SessionRow[]; next_cursor: string | null } = await api(`/v1/sessions?${params}`);
        all.push(...page.data);
        cursor = page.next_cursor;
      } while (cursor && all.length < MAX_SESSIONS && !cancelled);
      if (!cancelled) {
        setRows(all);
        setCapped(cursor !== null);
      }
    })().catch((err: unknown) => setError(err instanceof Error ? err.message : String(err)));
    return () => {
      cancelled = true;
    };
  }, [range]);

  const buckets = rows ? bucketize(rows, range.bucketMs) : [];
  return (
    <section aria-labelledby="usage-title">
      <h1 id="usage-title" tabIndex={-1}>
        Usage
      </h1>
      <label>
        <span>Period </span>
        <select value={range.value} onChange={(e) => setRange(RANGES.find((r) => r.value === e.currentTarget.value) ?? RANGES[0])}>
          {RANGES.map((r) => (
            <option key={r.value} value={r.value}>
              {r.label}
            </option>
          ))}
        </select>
      </label>
      {error && <p role="alert" class="error">{error}</p>}
      {!rows && !error && <p aria-busy="true">Loading…</p>}
      <Costs since={range.value} />
      {rows && (
        <>
          <h2>Over time</h2>
          <p class="note">
            From {rows.length} recorded sessions you may see{capped ? ` (the newest ${MAX_SESSIONS}; narrow the period for the rest)` : ''}.
          </p>
          <div class="charts">
            <Chart title="Requests" buckets={buckets} value={(b) => b.requests} />
            <Chart title="Tokens" buckets={buckets} value={(b) => b.tokens} />
            <Chart title="Blocked" buckets={buckets} value={(b) => b.blocked} />
            <Chart title="Masked" buckets={buckets} value={(b) => b.masked} />
            <Chart title="Approved" buckets={buckets} value={(b) => b.approved} />
            <Chart title="Median latency (ms)" buckets={buckets} value={(b) => median(b.latency)} />
            <Chart title="Median time to first token (ms)" buckets={buckets} value={(b) => median(b.ttft)} />
          </div>
          <div class="breakdowns">
            <Breakdown title="By connection" rows={rows} key_={(s) => [s.connection ?? '—']} />
            <Breakdown title="By model" rows={rows} key_={(s) => [s.model]} />
            <Breakdown title="By group" rows={rows} key_={(s) => (s.groups.length ? s.groups : ['(no group)'])} />
            <Breakdown title="Top people" rows={rows} key_={(s) => [s.email ?? s.subject]} />
          </div>
        </>
      )}
    </section>
  );
}

function bucketize(rows: SessionRow[], size: number): Bucket[] {
  const now = Date.now();
  const count = size === 3_600_000 ? 24 : 7;
  const first = Math.floor(now / size) * size - (count - 1) * size;
  const buckets: Bucket[] = Array.from({ length: count }, (_, i) => ({ start: first + i * size, requests: 0, tokens: 0, blocked: 0, masked: 0, approved: 0, latency: [], ttft: [] }));
  for (const s of rows) {
    const b = buckets[Math.floor((s.received_at - first) / size)];
    if (!b) continue;
    b.requests++;
    b.tokens += s.total_tokens ?? 0;
    if (s.blocked) b.blocked++;
    if (s.masked) b.masked++;
    if (s.approved) b.approved++;
    if (s.latency_ms !== null) b.latency.push(s.latency_ms);
    if (s.ttft_ms !== null) b.ttft.push(s.ttft_ms);
  }
  return buckets;
}

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** A bar chart in SVG with a text equivalent: each bar has a title, and the figure a summary. */
function Chart({ title, buckets, value }: { title: string; buckets: Bucket[]; value: (b: Bucket) => number }) {
  const values = buckets.map(value);
  const max = Math.max(1, ...values);
  const total = values.reduce((a, b) => a + b, 0);
  const width = 240;
  const height = 80;
  const bar = width / Math.max(1, values.length);
  const label = (b: Bucket) => new Date(b.start).toLocaleString(undefined, buckets.length === 24 ? { hour: '2-digit', minute: '2-digit' } : { weekday: 'short', day: 'numeric' });
  return (
    <figure class="chart">
      <figcaption>
        {title}: <strong>{title.startsWith('Median') ? Math.max(...values) : total}</strong>
        {title.startsWith('Median') ? ' at most' : ' in total'}
      </figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`${title} per ${buckets.length === 24 ? 'hour' : 'day'}: ${values.join(', ')}`}>
        {buckets.map((b, i) => {
          const h = (values[i]! / max) * (height - 4);
          return (
            <rect key={b.start} x={i * bar + 1} y={height - h} width={Math.max(1, bar - 2)} height={h} class="bar">
              <title>{`${label(b)}: ${values[i]}`}</title>
            </rect>
          );
        })}
      </svg>
    </figure>
  );
}

function Breakdown({ title, rows, key_ }: { title: string; rows: SessionRow[]; key_: (s: SessionRow) => string[] }) {
  const totals = new Map<string, { requests: number; tokens: number; blocked: number }>();
  for (const s of rows) {
    for (const k of key_(s)) {
      const t = totals.get(k) ?? { requests: 0, tokens: 0, blocked: 0 };
      t.requests++;
      t.tokens += s.total_tokens ?? 0;
      if (s.blocked) t.blocked++;
      totals.set(k, t);
    }
  }
  const top = [...totals].sort((a, b) => b[1].requests - a[1].requests).slice(0, 10);
  return (
    <table class="list">
      <caption>{title}</caption>
      <thead>
        <tr>
          <th scope="col">Name</th>
          <th scope="col">Requests</th>
          <th scope="col">Tokens</th>
          <th scope="col">Blocked</th>
        </tr>
      </thead>
      <tbody>
        {top.map(([name, t]) => (
          <tr key={name}>
            <td>{escapeHidden(name)}</td>
            <td>{t.requests}</td>
            <td>{t.tokens}</td>
            <td>{t.blocked}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

interface UsageRow {
  subject?: string;
  group?: string;
  connection?: string;
  model?: string;
  requests: number;
  /** Of the requests, refused by a limit or budget. */
  limited: number;
  /** Of the requests, those whose tokens were estimated from text. */
  estimated_requests: number;
  total_tokens: number;
  cost: number;
}

/** Totals and cost from GET /v1/usage, by model, group and person. */
function Costs({ since }: { since: string }) {
  const [reports, setReports] = useState<Array<{ by: string; rows: UsageRow[]; total: UsageRow; currency: string }>>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    setReports(undefined);
    Promise.all(
      // The report's own `by` is a list; ours names the one dimension asked for.
      (['model', 'group', 'subject'] as const).map(async (by) => ({ ...(await api<{ rows: UsageRow[]; total: UsageRow; currency: string }>(`/v1/usage?since=${since}&by=${by}`)), by })),
    ).then(setReports, (err: unknown) => setError(err instanceof Error ? err.message : String(err)));
  }, [since]);
  if (error) return <p class="note">Usage totals are not available: {error}</p>;
  if (!reports) return <p aria-busy="true">Loading…</p>;
  const total = reports[0]!.total;
  const money = (n: number) => `${n.toFixed(4)} ${reports[0]!.currency}`;
  return (
    <>
      <h2>Totals</h2>
      <p class="usage-total">
        <strong>{total.requests}</strong> requests (<strong>{total.limited}</strong> refused by a limit), <strong>
          <Tokens count={total.total_tokens} estimated={total.estimated_requests > 0} />
        </strong>{' '}
        tokens, cost <strong>{money(total.cost)}</strong>.
      </p>
      {total.estimated_requests > 0 && (
        <p class="note">
          ~ includes tokens estimated from text: the model server reported no usage for {total.estimated_requests} request{total.estimated_requests === 1 ? '' : 's'}.
        </p>
      )}
      <div class="breakdowns">
        {reports.map((r) => (
          <table class="list usage-totals" key={r.by}>
            <caption>Tokens and cost by {r.by === 'subject' ? 'person' : r.by}</caption>
            <thead>
              <tr>
                <th scope="col">{r.by === 'subject' ? 'Person' : r.by === 'group' ? 'Group' : 'Model'}</th>
                <th scope="col">Requests</th>
                <th scope="col">Limited</th>
                <th scope="col">Tokens</th>
                <th scope="col">Estimated</th>
                <th scope="col">Cost</th>
              </tr>
            </thead>
            <tbody>
              {r.rows.slice(0, 10).map((row, i) => (
                <tr key={i}>
                  <td>{escapeHidden(String(row[r.by as 'model'] ?? '—'))}</td>
                  <td>{row.requests}</td>
                  <td>{row.limited}</td>
                  <td>
                    <Tokens count={row.total_tokens} estimated={row.estimated_requests > 0} />
                  </td>
                  <td>{row.estimated_requests}</td>
                  <td>{money(row.cost)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ))}
      </div>
    </>
  );
}
