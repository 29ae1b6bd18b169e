// The effective policy, read-only (GET /v1/policy, auditors), and a
// playground that runs the guardrails on a typed prompt as the signed-in
// person (POST /v1/policy/test): the decisions and the masked text.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from '../api';
import { Untrusted } from '../text';

interface Policy {
  connections: Array<{ name: string; kind: string; models: Array<{ name: string; aliases: string[] }> }>;
  access: Array<{ description: string | null; groups: string[]; subjects: string[]; connections: string[]; models: string[] }>;
  input_rules: Array<{ name: string; description: string | null; detect: string[]; action: string; approvers?: string[]; required_approvals?: number; connections: string[]; groups: string[] }>;
  output_rules: Array<{ name: string; description: string | null; mask: { types: string[]; strategy: string } | null; end_stream_on: string[] }>;
  limits: Array<Record<string, unknown> & { name: string }>;
}

interface TestResult {
  connection: string;
  verdict: string;
  error?: { message: string; code: string };
  decisions: Array<{ rule: string; action: string; type?: string; reason: string; span?: { start: number; end: number }; confidence?: number }>;
  masked_prompt: string | null;
}

export function PolicyPage() {
  const [policy, setPolicy] = useState<Policy>();
  const [denied, setDenied] = useState<string>();
  useEffect(() => {
    api<Policy>('/v1/policy').then(setPolicy, (err: unknown) => setDenied(err instanceof ApiError ? err.message : String(err)));
  }, []);

  return (
    <section aria-labelledby="policy-title">
      <h1 id="policy-title" tabIndex={-1}>
        Policy
      </h1>
      <Playground connections={policy?.connections.map((c) => c.name)} />
      <h2>Effective configuration</h2>
      {denied && <p class="note">{denied}</p>}
      {!policy && !denied && <p aria-busy="true">Loading…</p>}
      {policy && (
        <>
          <h3>Connections</h3>
          <ul>
            {policy.connections.map((c) => (
              <li key={c.name}>
                <strong>{c.name}</strong> ({c.kind}): {c.models.map((m) => (m.aliases.length ? `${m.name} (also ${m.aliases.join(', ')})` : m.name)).join(', ')}
              </li>
            ))}
          </ul>
          <h3>Access by group</h3>
          <table class="list">
            <caption class="sr-only">Access rules</caption>
            <thead>
              <tr>
                <th scope="col">Who</th>
                <th scope="col">Connections</th>
                <th scope="col">Models</th>
                <th scope="col">Why</th>
              </tr>
            </thead>
            <tbody>
              {policy.access.map((r, i) => (
                <tr key={i}>
                  <td>{[...r.groups.map((g) => `group ${g}`), ...r.subjects.map((s) => `subject ${s}`)].join(', ')}</td>
                  <td>{r.connections.join(', ')}</td>
                  <td>{r.models.join(', ')}</td>
                  <td>{r.description ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h3>Input rules</h3>
          <table class="list">
            <caption class="sr-only">Input guardrail rules</caption>
            <thead>
              <tr>
                <th scope="col">Rule</th>
                <th scope="col">Detects</th>
                <th scope="col">Action</th>
                <th scope="col">Applies to</th>
              </tr>
            </thead>
            <tbody>
              {policy.input_rules.map((r) => (
                <tr key={r.name}>
                  <td>
                    <strong>{r.name}</strong>
                    {r.description && <div class="note">{r.description}</div>}
                  </td>
                  <td>{r.detect.join(', ')}</td>
                  <td>
                    {r.action}
                    {r.approvers && ` by ${r.required_approvals} of ${r.approvers.join(' or ')}`}
                  </td>
                  <td>
                    connections {r.connections.join(', ')}; groups {r.groups.join(', ')}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <h3>Output rules</h3>
          {policy.output_rules.length === 0 ? (
            <p class="empty">None.</p>
          ) : (
            <ul>
              {policy.output_rules.map((r) => (
                <li key={r.name}>
                  <strong>{r.name}</strong>: {r.mask ? `mask ${r.mask.types.join(', ')} (${r.mask.strategy})` : ''}
                  {r.end_stream_on.length ? ` end the answer on ${r.end_stream_on.join(', ')}` : ''}
                </li>
              ))}
            </ul>
          )}
          <h3>Limits</h3>
          {policy.limits.length === 0 ? (
            <p class="empty">None.</p>
          ) : (
            <ul>
              {policy.limits.map((l) => (
                <li key={l.name}>
                  <strong>{l.name}</strong>: {JSON.stringify(Object.fromEntries(Object.entries(l).filter(([k]) => k !== 'name')))}
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </section>
  );
}

function Playground({ connections }: { connections: string[] | undefined }) {
  const [prompt, setPrompt] = useState('');
  const [connection, setConnection] = useState('');
  const [result, setResult] = useState<TestResult>();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  async function run(event: Event) {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      setResult(await api<TestResult>('/v1/policy/test', { method: 'POST', body: { prompt, ...(connection && { connection }) } }));
    } catch (err) {
      setResult(undefined);
      setError(err instanceof ApiError ? `${err.message} (${err.code})` : String(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section class="card" aria-labelledby="playground-title">
      <h2 id="playground-title">Playground</h2>
      <p class="note">Runs the input rules on a prompt as you (your groups pick the rules). No model is called and nothing is recorded.</p>
      <form onSubmit={run} class="playground">
        <label for="playground-prompt">Prompt</label>
        <textarea id="playground-prompt" rows={4} required maxLength={20000} value={prompt} onInput={(e) => setPrompt(e.currentTarget.value)} />
        {connections && connections.length > 1 && (
          <label>
            <span>Connection</span>
            <select value={connection} onChange={(e) => setConnection(e.currentTarget.value)}>
              <option value="">first one I may use</option>
              {connections.map((c) => (
                <option key={c}>{c}</option>
              ))}
            </select>
          </label>
        )}
        <div class="actions">
          <button type="submit" disabled={busy || !prompt}>
            {busy ? 'Testing…' : 'Test prompt'}
          </button>
        </div>
      </form>
      {error && <p role="alert" class="error">{error}</p>}
      {result && (
        <div class="result" role="status">
          <p>
            Verdict on <strong>{result.connection}</strong>: <span class={`badge ${result.verdict}`}>{result.verdict}</span>
            {result.error && (
              <>
                {' '}
                — {result.error.message} ({result.error.code})
              </>
            )}
          </p>
          {result.decisions.length === 0 ? (
            <p>No rule fired.</p>
          ) : (
            <ul class="decisions">
              {result.decisions.map((d, i) => (
                <li key={i}>
                  <strong>{d.rule}</strong>: {d.action} {d.type ?? ''}
                  {d.span && ` at characters ${d.span.start}–${d.span.end}`}
                  {d.confidence !== undefined && `, confidence ${d.confidence.toFixed(2)}`} — <Untrusted text={d.reason} />
                </li>
              ))}
            </ul>
          )}
          {result.masked_prompt !== null && (
            <>
              <h3>What the model would receive</h3>
              <pre class="untrusted-block masked-prompt">
                <Untrusted text={result.masked_prompt} />
              </pre>
            </>
          )}
        </div>
      )}
    </section>
  );
}
