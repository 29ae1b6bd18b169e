// The HTTP APIs the web console is built on, scripted: the reviews event
// stream tells each person only about reviews they may see, the policy
// playground runs as the caller on a connection they may use, the effective
// policy is for auditors and carries no upstream secrets, and the console's
// files are served with their security headers and nothing outside them.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { postJson, startHarness, type Harness } from '../helpers/harness.js';

/** Collects a server-sent event stream's `review` events until stopped. */
async function openEvents(url: string, token: string): Promise<{ events: Array<{ event: string; id: string; state: string }>; stop: () => void; ready: Promise<void> }> {
  const abort = new AbortController();
  const response = await fetch(`${url}/v1/reviews/events`, { headers: { authorization: `Bearer ${token}` }, signal: abort.signal });
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
  const events: Array<{ event: string; id: string; state: string }> = [];
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  void (async () => {
    const decoder = new TextDecoder();
    let buffered = '';
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true });
        markReady();
        let end: number;
        while ((end = buffered.indexOf('\n\n')) >= 0) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (block.includes('event: review') && data) events.push(JSON.parse(data.slice(6)) as { event: string; id: string; state: string });
        }
      }
    } catch {
      // stopped
    }
  })();
  return { events, stop: () => abort.abort(), ready };
}

describe('console APIs', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      configure(input) {
        input.approvals = { wait: '20s', poll_interval: '100ms' };
        input.guardrails = { ...input.guardrails, input: [...(input.guardrails?.input ?? []), { name: 'mask-email', detect: ['EMAIL'], action: 'mask' }] };
      },
    });
  });
  after(() => h?.close());

  test('the reviews event stream tells the requester and approvers about a review, and nobody else', async () => {
    const [carol, alice, bob] = await Promise.all([openEvents(h.url, await h.userToken('carol')), openEvents(h.url, await h.userToken('alice')), openEvents(h.url, await h.userToken('bob'))]);
    await Promise.all([carol.ready, alice.ready, bob.ready]);
    try {
      const client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: await h.userToken('alice'), maxRetries: 0 });
      const held = client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'nightingale numbers' }] });
      while (carol.events.length === 0) await new Promise((r) => setTimeout(r, 20));
      const [created] = carol.events;
      assert.deepEqual({ event: created!.event, state: created!.state }, { event: 'created', state: 'pending' }, 'the approver hears of the new review');
      assert.equal(Object.keys(created!).sort().join(','), 'event,id,kind,state', 'only the ID and state travel, never the prompt');
      const approved = await postJson(`${h.url}/v1/reviews/${created!.id}/approve`, await h.userToken('carol'), {});
      assert.equal(approved.status, 200);
      await held;
      while (!alice.events.some((e) => e.event === 'executed')) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(alice.events.map((e) => e.event).sort(), ['approved', 'created', 'executed'], 'the requester follows her own review');
      assert.deepEqual(bob.events, [], 'someone who is neither requester, approver nor auditor hears nothing');
    } finally {
      for (const s of [carol, alice, bob]) s.stop();
    }
  });

  test('the playground runs as the caller: masked text and decisions, refused on a connection they may not use', async () => {
    const ok = await postJson(`${h.url}/v1/policy/test`, await h.userToken('alice'), { prompt: 'mail jane.doe@example.com' });
    assert.equal(ok.status, 200);
    const result = (await ok.json()) as { verdict: string; masked_prompt: string; decisions: Array<{ rule: string }> };
    assert.equal(result.verdict, 'allow', 'a masked prompt is forwarded');
    assert.equal(result.masked_prompt, 'mail [EMAIL_1]');
    assert.deepEqual(result.decisions.map((d) => d.rule), ['mask-email']);

    const unknown = await postJson(`${h.url}/v1/policy/test`, await h.userToken('alice'), { prompt: 'hello', connection: 'nope' });
    assert.equal(unknown.status, 403);
    assert.equal(((await unknown.json()) as { error: { code: string } }).error.code, 'connection_not_allowed');
    const empty = await postJson(`${h.url}/v1/policy/test`, await h.userToken('alice'), { prompt: '' });
    assert.equal(empty.status, 400);
    assert.equal((await fetch(`${h.url}/v1/policy/test`, { method: 'POST', body: '{"prompt":"x"}' })).status, 401, 'a bearer token is required');
  });

  test('the effective policy is for auditors only and leaves out upstream URLs and keys', async () => {
    const alice = await fetch(`${h.url}/v1/policy`, { headers: { authorization: `Bearer ${await h.userToken('alice')}` } });
    assert.equal(alice.status, 403);
    const carol = await fetch(`${h.url}/v1/policy`, { headers: { authorization: `Bearer ${await h.userToken('carol')}` } });
    assert.equal(carol.status, 200);
    const text = await carol.text();
    const policy = JSON.parse(text) as { connections: Array<{ name: string }>; input_rules: Array<{ name: string; detect: string[] }> };
    assert.deepEqual(policy.connections.map((c) => c.name), ['demo']);
    assert.deepEqual(policy.input_rules.find((r) => r.name === 'mask-email')?.detect, ['EMAIL']);
    assert.doesNotMatch(text, /demo-upstream-key|127\.0\.0\.1|nightingale/, 'no keys, upstream addresses or dictionary terms');
  });

  test('console files: security headers on every answer, index.html for app paths, 404 outside the assets', async () => {
    for (const path of ['/ui', '/ui/', '/ui/reviews/rev_x', '/ui/sessions?user=a']) {
      const response = await fetch(`${h.url}${path}`);
      assert.equal(response.status, 200, path);
      assert.match(response.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, path);
      assert.equal(response.headers.get('x-frame-options'), 'DENY', path);
      assert.equal(response.headers.get('cache-control'), 'no-store', path);
      assert.match(await response.text(), /<div id="app">/, path);
    }
    for (const path of ['/ui/assets/nope.js', '/ui/assets/..%2f..%2fpackage.json', '/ui/assets/%2e%2e/%2e%2e/package.json', '/ui/assets/x%00.js', '/ui/assets/%E0%A4%A.js']) {
      assert.equal((await fetch(`${h.url}${path}`)).status, 404, path);
    }
    assert.equal((await fetch(`${h.url}/ui/`, { method: 'POST' })).status, 405);
    const root = await fetch(`${h.url}/`, { redirect: 'manual' });
    assert.equal(root.status, 302);
    assert.equal(root.headers.get('location'), '/ui/');
  });

  test('the console ships at most 200 KB of JavaScript gzipped, all of it from the package', async () => {
    const dir = new URL('../../dist/console/assets/', import.meta.url);
    const scripts = (await readdir(dir)).filter((f) => f.endsWith('.js'));
    assert.ok(scripts.length > 0, 'the console is built (npm run build)');
    let gzipped = 0;
    for (const file of scripts) gzipped += gzipSync(await readFile(new URL(file, dir))).length;
    assert.ok(gzipped <= 200 * 1024, `${gzipped} bytes of JavaScript gzipped`);
    const html = await (await fetch(`${h.url}/ui/`)).text();
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'no asset from another host');
  });
});
