// The web console at /ui, end to end in real headless Chromium (Debian's
// package, driven by playwright-core): people sign in at the development
// IdP's login page, the official OpenAI SDK makes the requests, and every
// check reads the page the way a person (or axe-core) would. Each page is
// saved as a screenshot under test-results/console/.
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import type { BrowserContext, Locator, Page } from 'playwright-core';
import { isLoopback, launchChromium, type LaunchedChromium } from '../helpers/chromium.js';
import { withTwoPersonRule } from '../helpers/approvals.js';
import { recordSession } from '../audit/fixtures.js';
import { devConsoleOidc, startHarness, type Harness } from '../helpers/harness.js';

const WAIT_MS = 20_000;
const SCREENSHOTS = join(process.cwd(), 'test-results', 'console');
const AXE_SOURCE = readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** Markup, script, bidi overrides, control and invisible characters: what an attacker puts in a prompt. */
const HOSTILE_WORDS = [
  '<svg/onload=window.__pwned=1>',
  '<img\u0020src=x\u0020onerror=window.__pwned=2>'.replaceAll(' ', ''),
  '\u202Etxt.exe',
  '\u0007\u001b[31mred\u001b[0m',
];
const HOSTILE_TAIL = '</pre></bdi><script>window.__pwned=3</script><a href="javascript:window.__pwned=4">click</a> zero\u200Bwidth \u2066isolate\u2069 {{constructor.constructor("window.__pwned=5")()}} ${7*7}';

interface SignedIn {
  context: BrowserContext;
  page: Page;
  /** Requests that left loopback: must stay empty. */
  offLoopback: string[];
  /** Console errors other than expected failed API calls, e.g. CSP violations. */
  cspViolations: string[];
}

describe('web console at /ui in headless Chromium', () => {
  let chromium: LaunchedChromium;
  let h: Harness;
  let gateway: string;
  const contexts: BrowserContext[] = [];
  /** Uncaught errors in any console page: each test ends with none. */
  const pageErrors: string[] = [];

  before(async () => {
    await mkdir(join(SCREENSHOTS, 'last'), { recursive: true });
    [chromium, h] = await Promise.all([
      launchChromium(),
      startHarness({
        // Paced like a real model, so the replay has timing to play back.
        model: { chunkDelayMs: 15 },
        configure(input) {
          input.identity!.web = { session_lifetime: '15m', oidc: devConsoleOidc(input.identity!.issuers[0]!.issuer) };
          // Held SDK calls wait long enough for a person to click.
          input.approvals = { wait: '30s', keepalive_interval: '1s', poll_interval: '100ms' };
          // Erin (an approver) also uses the model: she must not approve her own request.
          input.access = [...(input.access ?? []), { groups: ['approvers'], connections: ['demo'] }];
          // Erin may embed once a minute: her second embedding is refused by a limit, and the usage page counts it.
          input.limits = { rules: [{ name: 'erin-embeds', subjects: ['erin'], models: ['demo-embed'], requests_per_minute: 1 }] };
          const guardrails = withTwoPersonRule(input.guardrails);
          guardrails.input = [...(guardrails.input ?? []), { name: 'mask-email', detect: ['EMAIL'], action: 'mask' }];
          input.guardrails = guardrails;
        },
      }),
    ]);
    // The gateway listened on port 0; only now is its callback URL known to register at the IdP.
    gateway = h.url;
    h.idp.setConsoleRedirectUris([`${gateway}/auth/oidc/callback`]);
  });

  // What every page of a test showed at its end, failed or not: the first thing to look at when one fails.
  let finished = 0;
  afterEach(async () => {
    finished++;
    assert.deepEqual(pageErrors.splice(0), [], 'no uncaught errors in the console pages');
    const pages = contexts.flatMap((c) => c.pages());
    await Promise.all(pages.map((p, i) => p.screenshot({ path: join(SCREENSHOTS, 'last', `${finished}-${i}.png`), fullPage: true }).catch(() => undefined)));
    await Promise.all(contexts.splice(0).map((c) => c.close().catch(() => undefined)));
  });

  after(async () => {
    await Promise.all(contexts.map((c) => c.close().catch(() => undefined)));
    await chromium?.close();
    await h?.close();
  });

  const sdk = async (user: string) => new OpenAI({ baseURL: `${gateway}/v1`, apiKey: await h.userToken(user), maxRetries: 0, timeout: 60_000 });

  /** Opens `path` in a fresh browser profile, signs in at the dev IdP's login page, and returns on the console page. */
  async function signIn(user: string, path = '/ui/'): Promise<SignedIn> {
    const context = await chromium.browser.newContext({ viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(WAIT_MS);
    contexts.push(context);
    const offLoopback: string[] = [];
    const cspViolations: string[] = [];
    context.on('request', (r) => {
      if (!isLoopback(r.url())) offLoopback.push(r.url());
    });
    const page = await context.newPage();
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) cspViolations.push(m.text());
    });
    page.on('pageerror', (err) => pageErrors.push(`${page.url()}: ${err.message}`));
    await page.goto(`${gateway}${path}`);
    await page.getByRole('link', { name: 'Sign in with OpenID Connect' }).click();
    await page.waitForURL((url) => url.origin === h.idp.issuer);
    await page.fill('#username', user);
    await page.fill('#password', `${user}-password`);
    await Promise.all([page.waitForURL((url) => url.origin === gateway && url.pathname.startsWith('/ui')), page.click('button[type=submit]')]);
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    return { context, page, offLoopback, cspViolations };
  }

  async function screenshot(page: Page, name: string): Promise<void> {
    await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
  }

  /** axe-core in the page (evaluated over the DevTools protocol, which the CSP does not govern): serious and critical violations. */
  async function seriousViolations(page: Page): Promise<string[]> {
    await page.evaluate(await AXE_SOURCE);
    const result = await page.evaluate<{ violations: Array<{ id: string; impact: string; help: string; nodes: Array<{ target: string[] }> }> }>(
      "axe.run(document, { resultTypes: ['violations'] })",
    );
    return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join('; ')}`);
  }

  function reviewCard(page: Page, marker: string): Locator {
    return page.locator('article.review', { hasText: marker });
  }

  test('the console is served with a strict CSP and no framing, and signing in at the dev IdP lands on the inbox', async () => {
    const response = await fetch(`${gateway}/ui/`);
    assert.equal(response.status, 200);
    const csp = response.headers.get('content-security-policy') ?? '';
    assert.match(csp, /frame-ancestors 'none'/, csp);
    assert.match(csp, /script-src 'self'(;|$)/, `scripts only from the gateway's own files: ${csp}`);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*|https?:/, `no inline script, eval or other hosts: ${csp}`);
    assert.equal(response.headers.get('x-frame-options'), 'DENY');
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    const html = await response.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline <script> in the page');
    assert.doesNotMatch(html, /\bstyle=|<style/, 'no inline styles in the page');
    const asset = /src="(\/ui\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    assert.ok(asset, 'the page loads its script from /ui/assets');
    assert.match((await fetch(`${gateway}${asset}`)).headers.get('cache-control') ?? '', /immutable/, 'content-hashed assets are cached');
    assert.equal((await fetch(`${gateway}/ui/assets/..%2f..%2fpackage.json`)).status, 404, 'no path traversal out of the assets');

    const context = await chromium.browser.newContext();
    contexts.push(context);
    const anonymous = await context.newPage();
    await anonymous.goto(`${gateway}/ui/sessions`);
    await anonymous.getByRole('link', { name: 'Sign in with OpenID Connect' }).waitFor();
    await screenshot(anonymous, 'sign-in');
    assert.deepEqual(await seriousViolations(anonymous), [], 'axe on the sign-in page');

    const { page, offLoopback, cspViolations } = await signIn('carol', '/ui/');
    assert.equal(new URL(page.url()).pathname, '/ui/', 'back on the console after the IdP');
    assert.match((await page.locator('.who').textContent()) ?? '', /Carol Chen/, 'the console shows who is signed in');
    await page.getByRole('heading', { name: 'Reviews', level: 1 }).waitFor();
    assert.deepEqual(offLoopback, [], 'no CDN or other host at run time');
    assert.deepEqual(cspViolations, [], 'the console itself runs under its CSP');
  });

  test('a held "nightingale" prompt appears live in the inbox, is approved there, and the waiting SDK call completes', async () => {
    const { page, cspViolations } = await signIn('carol', '/ui/reviews');
    await page.locator('.live.on').waitFor();
    const marker = `inbox-${Date.now()}`;
    const client = await sdk('alice');
    const held = client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: `nightingale launch plan ${marker}` }] });
    // No reload: the event stream brings the new review onto the open page.
    const card = reviewCard(page, marker);
    await card.waitFor();
    const text = (await card.textContent()) ?? '';
    assert.match(text, /Alice Anders/, 'the requester');
    assert.match(text, /engineering, ml-platform/, 'their groups');
    assert.match(text, /codename-review/, 'the rule that fired');
    assert.match(text, /Waiting/, 'how long it has waited');
    assert.match(text, /Expires in/, 'when it expires');
    await screenshot(page, 'inbox');
    assert.deepEqual(await seriousViolations(page), [], 'axe on the inbox');

    // The session cookie alone (even with the CSRF token) never decides: state changes need the bearer token the console mints with its CSRF token.
    const reviewId = await card.getAttribute('data-review-id');
    const csrf = (await (await page.request.get(`${gateway}/auth/session`)).json()) as { csrf_token: string };
    for (const headers of [{}, { 'x-csrf-token': csrf.csrf_token }] as Array<Record<string, string>>) {
      const status = await page.evaluate<number, { url: string; headers: Record<string, string> }>(
        async ({ url, headers }) => (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{}' })).status,
        { url: `/v1/reviews/${reviewId}/approve`, headers },
      );
      assert.equal(status, 401, `a cookie-only approval is refused (${JSON.stringify(Object.keys(headers))})`);
    }
    await card.getByLabel(/Comment/).fill('ok for the launch review');
    await card.getByRole('button', { name: 'Approve' }).click();
    const completion = await held;
    assert.ok(completion.choices[0]?.message.content, 'the held SDK call completed with the model answer');
    await page.locator('article.review', { hasText: marker }).waitFor({ state: 'detached' });
    const decided = page.locator('table.list tr', { hasText: 'codename-review' }).first();
    await decided.waitFor();
    assert.deepEqual(cspViolations, []);
  });

  test('a two-person rule needs a second approver: one approval in the inbox keeps the SDK call held, the second releases it', async () => {
    const carol = await signIn('carol', '/ui/reviews');
    const erin = await signIn('erin', '/ui/reviews');
    const marker = `tp-${Date.now()}`;
    let settled = false;
    const held = (await sdk('alice')).chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: `merger terms ${marker}` }] });
    void held.then(
      () => (settled = true),
      () => (settled = true),
    );

    const first = reviewCard(carol.page, marker);
    await first.waitFor();
    assert.match((await first.textContent()) ?? '', /0 of 2/, 'two approvals needed');
    await first.getByRole('button', { name: 'Approve' }).click();
    await first.getByText(/1 of 2\. Another approver must also approve/).waitFor();
    await first.getByText(/You already approved/).waitFor();
    await screenshot(carol.page, 'inbox-two-person');
    assert.equal(settled, false, 'one approval does not release the request');

    // Erin's open inbox follows carol's vote live.
    const second = reviewCard(erin.page, marker);
    await second.getByText(/1 of 2 from approvers/).waitFor();
    await second.getByRole('button', { name: 'Approve' }).click();
    const completion = await held;
    assert.ok(completion.choices[0]?.message.content, 'the second approval released the held SDK call');
  });

  test('a requester who is an approver cannot approve their own request: the page says why and the API refuses', async () => {
    const erin = await signIn('erin', '/ui/reviews');
    const carol = await signIn('carol', '/ui/reviews');
    const marker = `own-${Date.now()}`;
    const held = (await sdk('erin')).chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: `nightingale ${marker}` }] });

    const own = reviewCard(erin.page, marker);
    await own.waitFor();
    assert.match((await own.getByRole('note').textContent()) ?? '', /You asked for this review, so you cannot decide it/, 'self-approval is explained, not hidden');
    assert.equal(await own.getByRole('button', { name: 'Approve' }).count(), 0, 'no approve button on one’s own review');
    await screenshot(erin.page, 'inbox-own-review');
    const reviewId = await own.getAttribute('data-review-id');
    const forced = await fetch(`${gateway}/v1/reviews/${reviewId}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await h.userToken('erin')}`, 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(forced.status, 403, 'the API the console uses refuses self-approval too');
    assert.equal(((await forced.json()) as { error: { code: string } }).error.code, 'self_approval_forbidden');

    // The review's own page (where review_url, webhooks and Slack point): another approver decides there.
    const review = (await (await fetch(`${gateway}/v1/reviews/${reviewId}`, { headers: { authorization: `Bearer ${await h.userToken('carol')}` } })).json()) as { url: string };
    assert.equal(review.url, `${gateway}/ui/reviews/${reviewId}`, 'review links open the console');
    await carol.page.goto(review.url);
    await carol.page.getByRole('heading', { name: `Review ${reviewId}` }).waitFor();
    await screenshot(carol.page, 'review-page');
    await reviewCard(carol.page, marker).getByRole('button', { name: 'Approve' }).click();
    assert.ok((await held).choices[0]?.message.content, 'another approver released it');
  });

  test('a session made with the OpenAI SDK appears in the list and replays with its recorded timing; viewing is recorded', async () => {
    const marker = `replay${Date.now()}`;
    const stream = await (await sdk('alice')).chat.completions.create({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: `summarise ${marker}` }] });
    let answer = '';
    for await (const chunk of stream) answer += chunk.choices[0]?.delta?.content ?? '';
    assert.match(answer, new RegExp(marker), 'the demo model echoes the marker');

    const { page } = await signIn('alice', '/ui/sessions');
    const row = page.locator('tr[data-session-id]').first();
    await row.waitFor();
    const id = await row.getAttribute('data-session-id');
    await screenshot(page, 'sessions');
    assert.deepEqual(await seriousViolations(page), [], 'axe on the sessions list');
    await row.getByRole('link').click();
    await page.getByRole('heading', { name: `Session ${id}` }).waitFor();
    const promptField = page.locator('.prompt-field', { hasText: marker });
    assert.match((await promptField.locator('.field-name').first().textContent()) ?? '', /user messages\[0\]\.content/, 'the prompt, by role and field');
    assert.equal(await promptField.locator('pre.received').textContent(), `summarise ${marker}`);
    await page.locator('[data-chain="verified"]').waitFor();

    const replayed = page.waitForResponse((r) => r.url().endsWith(`/v1/sessions/${id}/replay`));
    await page.getByRole('button', { name: 'Play' }).click();
    assert.equal((await replayed).status(), 200);
    // Midway the answer is partial; at the end it is the whole answer, chunk by chunk as recorded.
    await untilText(page.locator('pre.answer'), (t) => t === answer, 'the whole answer after playing');
    const scrubber = page.getByRole('slider', { name: 'Position' });
    const total = Number(await scrubber.getAttribute('max'));
    assert.ok(total > 0, `chunks were recorded with their offsets (last at ${total} ms)`);
    // Scrubbing with the keyboard, as a person would: Home goes back to the start.
    await scrubber.focus();
    await page.keyboard.press('Home');
    const atStart = await untilText(page.locator('pre.answer'), (t) => t.length < answer.length, 'less of the answer after scrubbing to the start');
    assert.ok(answer.startsWith(atStart), `the start of the answer (${JSON.stringify(atStart)})`);
    await page.getByLabel('Speed').selectOption('4');
    await page.getByRole('button', { name: 'Play' }).click();
    await untilText(page.locator('pre.answer'), (t) => t === answer, 'the whole answer after playing at 4×');
    await screenshot(page, 'replay');
    assert.deepEqual(await seriousViolations(page), [], 'axe on the session page');

    const detail = await h.gateway.services.audit!.archive.show(id!);
    const views = detail!.events.filter((e) => e.kind === 'session.view').map((e) => e.meta as { action: string; by: string });
    // Recorded as the person at the IdP she signed in with, not the gateway that signed her browser's token.
    const alice = `${h.idp.issuer}#alice`;
    assert.ok(views.some((v) => v.action === 'open' && v.by.startsWith(alice)), `opening is recorded: ${JSON.stringify(views)}`);
    assert.ok(views.some((v) => v.action === 'replay' && v.by.startsWith(alice)), `replaying is recorded: ${JSON.stringify(views)}`);
  });

  test('full-text search finds sessions by the words of their prompts, shows where each matched, and keeps to what the person may see', async () => {
    const word = `quokka${Date.now()}`;
    await (await sdk('alice')).chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: `Plan the ${word} migration with the Crème team` }] });
    await (await sdk('bob')).embeddings.create({ model: 'demo-embed', input: `bob also writes ${word}` });
    const [alicesSession, bobsSession] = [await lastEndedSession('alice'), await lastEndedSession('bob')];

    const alice = await signIn('alice', '/ui/sessions');
    const searched = alice.page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/sessions' && new URL(r.url()).searchParams.get('q') === `${word} creme`);
    await alice.page.getByRole('searchbox', { name: 'Search prompts and answers' }).fill(`${word} creme`);
    await alice.page.getByRole('button', { name: 'Search', exact: true }).click();
    const body = (await (await searched).json()) as { scope: string; data: Array<{ id: string; match?: { source: string } }> };
    assert.deepEqual(body.data.map((s) => s.id), [alicesSession], 'the API finds only alice’s own session');
    const row = alice.page.locator(`tr[data-session-id="${alicesSession}"]`);
    await row.waitFor();
    assert.deepEqual(await row.locator('mark.term').allTextContents(), [word, 'Crème'], 'the matched words are marked where they are (accents folded)');
    assert.match((await row.locator('td.match').textContent()) ?? '', /^Prompt:/, 'and where: the prompt');
    assert.equal(await alice.page.locator(`tr[data-session-id="${bobsSession}"]`).count(), 0, 'bob’s session with the same word is not shown to alice');
    assert.equal(new URL(alice.page.url()).searchParams.get('q'), `${word} creme`, 'the search is in the URL, to share');
    await screenshot(alice.page, 'sessions-search');
    assert.deepEqual(await seriousViolations(alice.page), [], 'axe on search results');

    const carol = await signIn('carol', `/ui/sessions?q=${word}`);
    await carol.page.locator(`tr[data-session-id="${bobsSession}"]`).waitFor();
    await carol.page.locator(`tr[data-session-id="${alicesSession}"]`).waitFor();
    await carol.page.goto(`${gateway}/ui/sessions?q=${encodeURIComponent('"" ***')}`);
    await carol.page.getByRole('alert').getByText(/no letters or digits/).waitFor();
  });

  test('the session page marks guardrail hits and masked text at their exact positions, and shows the hash-chain status, broken after tampering', async () => {
    const marker = `hl${Date.now()}`;
    const prompt = `Ask ${marker} then mail jane.roe@example.com and ops@example.org today`;
    await (await sdk('alice')).chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: prompt }] });
    const id = await lastEndedSession('alice');
    const { page } = await signIn('alice', `/ui/sessions/${id}`);
    const field = page.locator('.prompt-field', { hasText: marker });
    const hits = field.locator('pre.received mark.hit');
    await hits.first().waitFor();
    const positions = await hits.evaluateAll((marks) => marks.map((m) => [m.getAttribute('data-start'), m.getAttribute('data-end'), m.firstChild?.textContent]));
    const at = (text: string): [string, string, string] => [String(prompt.indexOf(text)), String(prompt.indexOf(text) + text.length), text];
    assert.deepEqual(positions, [at('jane.roe@example.com'), at('ops@example.org')], 'each hit marked at the span the gateway recorded');
    assert.match((await hits.first().getAttribute('title')) ?? '', /mask-email: mask EMAIL/, 'the rule, action and entity');
    const masked = await field.locator('pre.forwarded mark.masked').evaluateAll((marks) => marks.map((m) => [m.getAttribute('data-start'), m.firstChild?.textContent]));
    const sent = `Ask ${marker} then mail [EMAIL_1] and [EMAIL_2] today`;
    assert.deepEqual(masked, [[String(sent.indexOf('[EMAIL_1]')), '[EMAIL_1]'], [String(sent.indexOf('[EMAIL_2]')), '[EMAIL_2]']], 'what the model got instead, marked at its position in the forwarded text');
    assert.doesNotMatch((await field.locator('pre.forwarded').textContent()) ?? '', /jane\.roe/);
    await page.locator('[data-chain="verified"]').waitFor();
    await screenshot(page, 'session-highlights');
    assert.deepEqual(await seriousViolations(page), [], 'axe on highlights and chain status');

    // A database operator edits the prompt behind the gateway's back.
    const db = new Database(h.gateway.services.config.storage.sqlite.path);
    try {
      const [start] = db.prepare<[string], { seq: number }>("SELECT seq FROM events WHERE session_id = ? AND kind = 'session.start'").all(id);
      db.prepare('UPDATE events SET content = ? WHERE seq = ?').run(Buffer.from(JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'innocent' }] })), start!.seq);
      await page.reload();
      const broken = page.locator('[data-chain="broken"]');
      await broken.waitFor();
      assert.match((await broken.textContent()) ?? '', new RegExp(`broken at event ${start!.seq}\\.[\\s\\S]*request as received`), 'names the edited event');
      await screenshot(page, 'session-chain-broken');
    } finally {
      db.close();
    }
  });

  test('a non-auditor sees only their own sessions, in the page and in the API it calls; an auditor sees everyone’s', async () => {
    await (await sdk('bob')).embeddings.create({ model: 'demo-embed', input: `bob-only-${Date.now()}` });
    const bobsSession = (await h.gateway.services.audit!.archive.list({ subject: 'bob', limit: 1 })).sessions[0]!;

    const alice = await signIn('alice', '/ui/sessions');
    const listed = alice.page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/sessions' && new URL(r.url()).searchParams.get('state') === 'completed');
    await alice.page.goto(`${gateway}/ui/sessions?state=completed`);
    const list = (await (await listed).json()) as { scope: string; data: Array<{ subject: string }> };
    assert.equal(list.scope, 'own');
    assert.ok(list.data.length > 0 && list.data.every((s) => s.subject === 'alice'), 'the API returns alice only her own sessions');
    await alice.page.getByText('You see the sessions you made.').waitFor();
    assert.equal(await alice.page.locator(`tr[data-session-id="${bobsSession.id}"]`).count(), 0, 'bob’s session is not listed');

    const opened = alice.page.waitForResponse((r) => new URL(r.url()).pathname === `/v1/sessions/${bobsSession.id}`);
    await alice.page.goto(`${gateway}/ui/sessions/${bobsSession.id}`);
    assert.equal((await opened).status(), 404, 'the API refuses alice bob’s session');
    await alice.page.getByRole('alert').getByText(/may not see it/).waitFor();
    assert.equal(await alice.page.getByText('bob@example.com').count(), 0, 'nothing of bob’s shows');
    await screenshot(alice.page, 'session-not-visible');

    const carol = await signIn('carol', `/ui/sessions?user=bob`);
    await carol.page.locator(`tr[data-session-id="${bobsSession.id}"]`).waitFor();
    await carol.page.getByText('You are an auditor').waitFor();
  });

  test('the playground shows a masked entity, and the effective policy is shown to auditors only', async () => {
    const alice = await signIn('alice', '/ui/policy');
    await alice.page.getByLabel('Prompt').fill('Write to jane.doe@example.com about the invoice');
    await alice.page.getByRole('button', { name: 'Test prompt' }).click();
    const masked = alice.page.locator('pre.masked-prompt mark.masked');
    await masked.waitFor();
    assert.match((await masked.textContent()) ?? '', /^\[EMAIL_1\]$/, 'the masked entity is marked');
    assert.doesNotMatch((await alice.page.locator('pre.masked-prompt').textContent()) ?? '', /jane\.doe/, 'the address never shows in what the model gets');
    assert.match((await alice.page.locator('.result').textContent()) ?? '', /mask-email/, 'the rule that masked it');
    await alice.page.getByText(/Only members of an auditor group may read the gateway configuration/).waitFor();
    await screenshot(alice.page, 'playground');
    assert.deepEqual(await seriousViolations(alice.page), [], 'axe on the policy page');

    const carol = await signIn('carol', '/ui/policy');
    await carol.page.getByRole('heading', { name: 'Input rules' }).waitFor();
    const rules = (await carol.page.locator('table.list').nth(1).textContent()) ?? '';
    assert.match(rules, /two-person-rule/);
    assert.match(rules, /require_approval by 2 of approvers/);
    const config = await (await fetch(`${gateway}/v1/policy`, { headers: { authorization: `Bearer ${await h.userToken('carol')}` } })).text();
    assert.doesNotMatch(config, /demo-upstream-key|127\.0\.0\.1/, 'no upstream keys or addresses in the policy view');
    await screenshot(carol.page, 'policy');
  });

  test('usage charts are drawn from the sessions the person may see', async () => {
    await (await sdk('alice')).chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'usage please' }] });
    await lastEndedSession('alice');
    const { page } = await signIn('carol', '/ui/usage');
    await page.getByText(/From \d+ recorded sessions/).waitFor();
    assert.ok((await page.locator('figure.chart').count()) >= 5, 'charts of requests, tokens, blocks, masks, approvals, latency');
    assert.match((await page.getByRole('table', { name: 'By model', exact: true }).textContent()) ?? '', /demo-chat/);
    const costs = page.getByRole('table', { name: 'Tokens and cost by model' });
    await costs.waitFor();
    assert.match((await costs.textContent()) ?? '', /demo-chat/, 'totals and cost per model from /v1/usage');
    await screenshot(page, 'usage');
    assert.deepEqual(await seriousViolations(page), [], 'axe on the usage page');
  });

  test('the usage page counts requests refused by a limit and marks token counts estimated from text', async () => {
    const erin = await sdk('erin');
    await erin.embeddings.create({ model: 'demo-embed', input: 'first embedding' });
    await assert.rejects(erin.embeddings.create({ model: 'demo-embed', input: 'second embedding' }), (err: { status?: number }) => err.status === 429);
    // A model server that reports no usage: the gateway estimates alice's tokens from the text.
    const chunk = (content: string) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'demo-chat', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
    h.model.setFault({ kind: 'raw', contentType: 'text/event-stream', writes: [chunk('no usage '), chunk('reported'), 'data: [DONE]\n\n'] }, { times: 1, path: '/v1/chat/completions' });
    for await (const _ of await (await sdk('alice')).chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'estimate me' }], stream: true })) void _;
    await lastEndedSession('alice');
    await h.gateway.services.audit!.recorder.flush();

    const { page } = await signIn('carol', '/ui/usage');
    const people = page.getByRole('table', { name: 'Tokens and cost by person' });
    await people.waitFor();
    const header = await people.locator('thead th').allTextContents();
    const column = (name: string) => header.indexOf(name);
    assert.ok(column('Limited') > 0 && column('Estimated') > 0, `columns: ${header.join(', ')}`);
    const cells = async (who: string) => people.locator('tbody tr', { hasText: who }).locator('td').allTextContents();
    const erinRow = await cells('erin@example.com');
    assert.ok(Number(erinRow[column('Requests')]) >= 2, 'both embeddings are requests (her earlier chats too)');
    assert.equal(erinRow[column('Limited')], '1', 'the refused embedding is counted as limited');
    const aliceRow = await cells('alice@example.com');
    assert.ok(Number(aliceRow[column('Estimated')]) >= 1, `alice's estimated requests: ${aliceRow.join(' | ')}`);
    assert.match(aliceRow[column('Tokens')]!, /^~\d+ \(estimated\)$/, 'her token count is marked estimated (the mark is read out too)');
    assert.doesNotMatch(erinRow[column('Tokens')]!, /~/, 'the model server reported every count of erin');
    assert.match((await page.locator('p.usage-total').textContent()) ?? '', /\d+ requests \([1-9]\d* refused by a limit\)/);
    await page.getByText(/~ includes tokens estimated from text: the model server reported no usage for \d+ requests?\./).waitFor();
    await screenshot(page, 'usage-limited-estimated');
    assert.deepEqual(await seriousViolations(page), [], 'axe on the usage page');
  });

  test('the state filter offers `shutdown` (streams cut off by a gateway stop) and lists only those sessions', async () => {
    // Recorded as the gateway records a stream still running when its shutdown grace ends.
    const stopped = await recordSession(h.gateway.services.audit!.recorder, { subject: 'stopped-stream', end: 'shutdown' });
    const { page } = await signIn('carol', '/ui/sessions');
    const state = page.getByLabel('State');
    assert.deepEqual(await state.locator('option').allTextContents(), ['any', 'open', 'completed', 'aborted', 'upstream_failed', 'refused', 'incomplete', 'shutdown']);
    await state.selectOption('shutdown');
    const listed = page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/sessions' && new URL(r.url()).searchParams.get('state') === 'shutdown');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    assert.equal((await listed).status(), 200);
    const row = page.locator(`tr[data-session-id="${stopped}"]`);
    await row.waitFor();
    assert.equal(await row.locator('.badge.shutdown').textContent(), 'shutdown');
    const badges = await page.locator('table.sessions tbody .badge').allTextContents();
    assert.ok(badges.length > 0 && badges.every((b) => b === 'shutdown'), `only shutdown sessions: ${badges.join(', ')}`);
    assert.equal(new URL(page.url()).searchParams.get('state'), 'shutdown', 'the filter is kept in the URL');
    await screenshot(page, 'sessions-shutdown');
  });

  test('hostile prompts (markup, script, bidi, control characters) are shown as inert text in the inbox and the session replay', async () => {
    const carol = await signIn('carol', '/ui/reviews');
    await carol.page.locator('.live.on').waitFor();
    const marker = `hostile${Date.now()}`;
    const prompt = `${HOSTILE_WORDS.join(' ')} nightingale ${marker} evil.person@example.com ${HOSTILE_TAIL}`;
    const held = (await sdk('alice')).chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: prompt }] });
    const card = reviewCard(carol.page, marker);
    await card.waitFor();
    await assertInert(carol.page, 'inbox');
    const shown = (await card.locator('pre.untrusted-block').textContent()) ?? '';
    assert.ok(shown.includes('<svg/onload=window.__pwned=1>') && shown.includes('<script>window.__pwned=3</script>'), `markup shows as text: ${shown}`);
    assert.ok(shown.includes('\\u{202E}') && shown.includes('\\u{0007}') && shown.includes('\\u{001B}') && shown.includes('\\u{200B}') && shown.includes('\\u{2066}'), `bidi and control characters show as escapes: ${JSON.stringify(shown)}`);
    assert.equal(/[\u202E\u0007\u001b\u200B\u2066]/.test(shown), false, 'no raw bidi or control character reaches the page');
    await screenshot(carol.page, 'hostile-inbox');
    await card.getByRole('button', { name: 'Approve' }).click();
    const completion = await held;
    const answer = completion.choices[0]!.message.content!;
    assert.ok(answer.includes('<svg/onload'), 'the model’s answer echoes the hostile markup too');

    const sessionId = await lastEndedSession('alice');
    await carol.page.goto(`${gateway}/ui/sessions/${sessionId}`);
    await carol.page.getByRole('button', { name: 'Play' }).click();
    await untilText(carol.page.locator('pre.answer'), (t) => t.includes('window.__pwned=1'), 'the hostile answer replayed');
    await carol.page.waitForTimeout(200);
    await assertInert(carol.page, 'session replay');
    const received = (await carol.page.locator('.prompt-field pre.received').first().textContent()) ?? '';
    assert.ok(received.includes('<script>window.__pwned=3</script>') && received.includes('\\u{202E}'), `the prompt field shows markup and escapes as text: ${received}`);
    const hit = carol.page.locator('.prompt-field pre.received mark.hit[title*="mask-email"]').first();
    assert.equal(await hit.locator('bdi').first().textContent(), 'evil.person@example.com', 'the hit beside hostile text is marked exactly');
    assert.equal(await carol.page.locator('.prompt-field pre.forwarded mark.masked').first().textContent().then((t) => t?.startsWith('[EMAIL_')), true);
    await screenshot(carol.page, 'hostile-session');

    // The same text in search results: an excerpt with the term marked, still inert.
    await carol.page.goto(`${gateway}/ui/sessions?q=${marker}`);
    const result = carol.page.locator(`tr[data-session-id="${sessionId}"] td.match`);
    await result.waitFor();
    assert.equal(await result.locator('mark.term').textContent(), marker);
    const excerpt = (await result.textContent()) ?? '';
    assert.ok(excerpt.includes('<script>window.__pwned=3</script>') || excerpt.includes('nightingale'), `the excerpt is text: ${excerpt}`);
    assert.equal(/[\u202E\u0007\u001b\u200B\u2066]/.test(excerpt), false, 'no raw bidi or control character in the excerpt');
    await assertInert(carol.page, 'search results');
    await screenshot(carol.page, 'hostile-search');
  });

  /** The person's newest session once its recording has ended (the recorder writes behind the response). */
  async function lastEndedSession(subject: string): Promise<string> {
    for (let i = 0; i < 200; i++) {
      const [last] = (await h.gateway.services.audit!.archive.list({ subject, limit: 1 })).sessions;
      if (last && last.state !== 'open') return last.id;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${subject}'s last session never ended`);
  }

  /** Polls a locator's text (page.waitForFunction would need eval, which the console's CSP rightly refuses). */
  async function untilText(locator: Locator, ok: (text: string) => boolean, what: string): Promise<string> {
    let text = '';
    for (const deadline = Date.now() + WAIT_MS; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
      text = (await locator.textContent()) ?? '';
      if (ok(text)) return text;
    }
    throw new Error(`${what}: never shown; last text ${JSON.stringify(text)}`);
  }

  /** Nothing the prompt carried became an element, ran, or changed the page's direction. */
  async function assertInert(page: Page, where: string): Promise<void> {
    const probe = await page.evaluate<{ pwned: unknown; scripts: number; images: number; svgs: number; iframes: number; jsLinks: number; dirs: string[] }>(
      `({
        pwned: window.__pwned,
        scripts: document.querySelectorAll('script').length,
        images: document.querySelectorAll('img').length,
        svgs: document.querySelectorAll('main svg').length,
        iframes: document.querySelectorAll('iframe').length,
        jsLinks: [...document.querySelectorAll('a')].filter((a) => /^\s*javascript:/i.test(a.getAttribute('href') ?? '')).length,
        dirs: [...document.querySelectorAll('[dir]')].map((e) => e.getAttribute('dir')).filter((d) => d !== 'ltr'),
      })`,
    );
    assert.deepEqual(probe, { pwned: undefined, scripts: 1, images: 0, svgs: 0, iframes: 0, jsLinks: 0, dirs: [] }, `${where}: the hostile prompt stayed text`);
  }
});
