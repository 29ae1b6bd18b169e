// The browser sign-in flows in a real browser: headless Chromium (Debian's
// package, driven by playwright-core) signs in at the development IdP's own
// login page and at a SAML IdP that answers with an auto-posting form, and
// the gateway's session cookie, CSRF token, logout and return paths are
// checked the way a browser enforces them (SameSite, HttpOnly, CORS), not as
// a script chooses to send them. The scripted suites next to this one cover
// each protocol check in detail.
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { isLoopback, launchChromium, type LaunchedChromium } from '../helpers/chromium.js';
import { devConsoleOidc, startHarness, type Harness } from '../helpers/harness.js';
import { TestSamlIdp, type SamlUser } from './saml-idp.js';

const SESSION_COOKIE = 'modelgate_session';
const WAIT_MS = 15_000;
const bob: SamlUser = { nameId: 'bob@corp.example', email: 'bob@corp.example', name: 'Bob B', groups: ['engineering', 'saml-users'] };

interface FetchResult {
  status: number;
  body: string;
}

describe('browser sign-in in headless Chromium', () => {
  let chromium: LaunchedChromium;
  let h: Harness;
  let gateway: string;
  let samlIdp: TestSamlIdp;
  /** Serves the SAML IdP's endpoint and the attacker's pages. */
  let otherSite: Server;
  /** The ACS URL of each AuthnRequest the SAML IdP received. */
  const samlRequests: string[] = [];
  /** otherSite as another site (localhost, where the gateway is 127.0.0.1). */
  let crossSite: string;
  /** otherSite as another origin on the gateway's own site (127.0.0.1, another port). */
  let sameSite: string;
  const contexts: BrowserContext[] = [];

  before(async () => {
    samlIdp = new TestSamlIdp();
    [chromium, otherSite] = await Promise.all([launchChromium(), startOtherSite(samlIdp, samlRequests)]);
    const otherPort = (otherSite.address() as AddressInfo).port;
    crossSite = `http://localhost:${otherPort}`;
    sameSite = `http://127.0.0.1:${otherPort}`;
    h = await startHarness({
      configure(input) {
        input.identity!.web = {
          session_lifetime: '15m',
          oidc: devConsoleOidc(input.identity!.issuers[0]!.issuer),
          // A real IdP on another site (localhost vs the gateway's 127.0.0.1), as in production.
          saml: { idp_sso_url: `${crossSite}/saml/sso`, idp_certificate: samlIdp.certificate, idp_entity_id: samlIdp.entityId },
        };
      },
    });
    // The gateway listened on port 0; only now is its callback URL known to register at the IdP.
    gateway = h.url;
    h.idp.setConsoleRedirectUris([`${gateway}/auth/oidc/callback`]);
  });

  after(async () => {
    await Promise.all(contexts.map((context) => context.close().catch(() => undefined)));
    await chromium?.close();
    await new Promise<void>((resolve) => {
      if (!otherSite) return resolve();
      otherSite.close(() => resolve());
      otherSite.closeAllConnections();
    });
    await h?.close();
  });

  /** A fresh browser profile (no cookies) that records every request leaving loopback. */
  async function newContext(): Promise<{ context: BrowserContext; offLoopback: string[] }> {
    const context = await chromium.browser.newContext();
    context.setDefaultTimeout(WAIT_MS);
    contexts.push(context);
    const offLoopback: string[] = [];
    context.on('request', (request) => {
      if (!isLoopback(request.url())) offLoopback.push(request.url());
    });
    return { context, offLoopback };
  }

  /** Starts at the gateway, fills in the dev IdP's login form, and waits until the browser is back on the gateway. */
  async function signIn(context: BrowserContext, user: string, returnTo: string): Promise<Page> {
    const page = await context.newPage();
    await page.goto(`${gateway}/auth/oidc/login?return_to=${encodeURIComponent(returnTo)}`);
    assert.equal(new URL(page.url()).origin, h.idp.issuer, `the gateway sends the browser to the IdP, not to ${page.url()}`);
    assert.equal((await page.locator('h1').textContent())?.trim(), 'Sign in', 'the IdP shows its login page');
    await page.fill('#username', user);
    await page.fill('#password', `${user}-password`);
    // The dev IdP grants consent by itself; a consent page would leave the browser on the IdP and time out here.
    await Promise.all([page.waitForURL((url) => url.origin === gateway), page.click('button[type=submit]')]);
    return page;
  }

  /** The JSON document the page shows. */
  async function shownJson(page: Page): Promise<Record<string, any>> {
    // Strings, not functions: the tests compile without the DOM library.
    const text = await page.evaluate<string>("document.querySelector('pre')?.textContent ?? document.body.innerText");
    try {
      return JSON.parse(text) as Record<string, any>;
    } catch {
      throw new Error(`the page at ${page.url()} shows no JSON: ${text.slice(0, 300)}`);
    }
  }

  /** fetch() run by the page's own script, with the browser's cookies and its own Origin header. */
  function pageFetch(page: Page, url: string, init: { method?: string; headers?: Record<string, string>; credentials?: 'include' | 'same-origin' }): Promise<FetchResult | { error: string }> {
    return page.evaluate(async ({ url, init }) => {
      try {
        const response = await fetch(url, init);
        return { status: response.status, body: await response.text() };
      } catch (err) {
        return { error: String(err) };
      }
    }, { url, init });
  }

  async function csrfTokenOf(page: Page): Promise<string> {
    const result = await pageFetch(page, '/auth/session', {});
    assert.ok('status' in result && result.status === 200, `GET /auth/session from the page: ${JSON.stringify(result)}`);
    const token = (JSON.parse(result.body) as { csrf_token?: unknown }).csrf_token;
    assert.equal(typeof token, 'string', 'the session names its CSRF token');
    return token as string;
  }

  async function sessionStillAlive(context: BrowserContext, why: string): Promise<void> {
    const page = await context.newPage();
    const response = await page.goto(`${gateway}/auth/session`);
    assert.equal(response?.status(), 200, `${why}: the session should still be alive`);
    assert.equal((await shownJson(page)).identity?.subject, 'alice', `${why}: still alice's session`);
    await page.close();
  }

  test('OIDC sign-in at the dev IdP login page lands back on the gateway with an HttpOnly, SameSite=Lax session', async () => {
    const { context, offLoopback } = await newContext();
    const page = await signIn(context, 'alice', '/auth/session');
    assert.equal(page.url(), `${gateway}/auth/session`, 'back on the page asked for');
    const session = await shownJson(page);
    assert.equal(session.identity?.subject, 'alice', `the session is alice's: ${JSON.stringify(session)}`);
    assert.equal(session.identity?.method, 'oidc', 'signed in with OIDC');
    assert.deepEqual(session.identity?.groups, ['engineering', 'ml-platform'], 'alice keeps her groups');
    assert.match(String(session.csrf_token), /^[A-Za-z0-9_-]{43}$/, 'the session shows its CSRF token');

    const cookies = await context.cookies(gateway);
    const cookie = cookies.find((c) => c.name === SESSION_COOKIE);
    assert.ok(cookie, `the browser keeps a session cookie: ${cookies.map((c) => c.name).join(', ')}`);
    assert.equal(cookie.httpOnly, true, 'the session cookie is HttpOnly');
    assert.equal(cookie.sameSite, 'Lax', 'the session cookie is SameSite=Lax');
    assert.equal(cookie.secure, false, 'plain http here; Secure is set behind TLS (see the SAML suite)');
    assert.equal(cookie.path, '/', 'the session cookie covers the whole gateway');
    assert.ok(cookie.expires > Date.now() / 1000, 'the session cookie is persistent for the session lifetime, not forever');
    assert.equal(cookies.some((c) => c.name === 'modelgate_oidc_login'), false, 'the login binding cookie is gone after the callback');
    const scriptVisible = await page.evaluate<string>('document.cookie');
    assert.equal(scriptVisible.includes(SESSION_COOKIE), false, `page scripts cannot read the session cookie: ${scriptVisible}`);
    assert.deepEqual(offLoopback, [], 'nothing left loopback');
  });

  test('the page gets an API token with its CSRF token, and is refused without it or with a wrong one', async () => {
    const { context } = await newContext();
    const page = await signIn(context, 'alice', '/auth/session');
    const csrf = await csrfTokenOf(page);

    const without = await pageFetch(page, '/auth/token', { method: 'POST' });
    assert.ok('status' in without && without.status === 403, `no CSRF header: ${JSON.stringify(without)}`);
    assert.equal(JSON.parse(without.body).error?.code, 'csrf_token_invalid', 'refused for the missing CSRF token');
    const wrong = await pageFetch(page, '/auth/token', { method: 'POST', headers: { 'x-csrf-token': 'guess' } });
    assert.ok('status' in wrong && wrong.status === 403, `wrong CSRF header: ${JSON.stringify(wrong)}`);
    assert.equal(JSON.parse(wrong.body).error?.code, 'csrf_token_invalid', 'refused for the wrong CSRF token');

    const issued = await pageFetch(page, '/auth/token', { method: 'POST', headers: { 'x-csrf-token': csrf } });
    assert.ok('status' in issued && issued.status === 200, `with the CSRF header: ${JSON.stringify(issued)}`);
    const { access_token } = JSON.parse(issued.body) as { access_token: string };
    assert.equal(typeof access_token, 'string', 'an access token is issued');
    const whoami = await fetch(`${gateway}/auth/whoami`, { headers: { authorization: `Bearer ${access_token}` } });
    assert.equal(whoami.status, 200, 'the issued token authenticates');
    assert.equal(((await whoami.json()) as { subject: string }).subject, 'alice', 'the issued token is alice’s');

    const cookieOnly = await pageFetch(page, '/v1/models', {});
    assert.ok('status' in cookieOnly && cookieOnly.status === 401, `the session cookie alone never authenticates the model API: ${JSON.stringify(cookieOnly)}`);
  });

  test('a page on another site cannot use the session: its form POSTs to /auth/token and /auth/logout are refused', async () => {
    const { context } = await newContext();
    await signIn(context, 'alice', '/auth/session');
    const page = await context.newPage();

    for (const path of ['/auth/token', '/auth/logout']) {
      const answered = page.waitForResponse((r) => r.url() === `${gateway}${path}` && r.request().method() === 'POST');
      await page.goto(`${crossSite}/autopost?action=${encodeURIComponent(`${gateway}${path}`)}`);
      const response = await answered;
      const headers = await response.request().allHeaders();
      assert.equal(headers.cookie?.includes(`${SESSION_COOKIE}=`) ?? false, false, `${path}: SameSite=Lax keeps the cookie off a cross-site POST`);
      const body = await response.text();
      assert.equal(response.status(), 401, `${path} from another site: ${body}`);
      assert.equal(JSON.parse(body).error?.code, 'session_missing', `${path}: no session without the cookie`);
    }

    // Script on the other site cannot read the CSRF token (no CORS), nor send it.
    await page.goto(`${crossSite}/blank`);
    const read = await pageFetch(page, `${gateway}/auth/session`, { credentials: 'include' });
    assert.ok('error' in read, `a cross-site script cannot read /auth/session: ${JSON.stringify(read)}`);
    const mint = await pageFetch(page, `${gateway}/auth/token`, { method: 'POST', credentials: 'include', headers: { 'x-csrf-token': 'guess' } });
    assert.ok('error' in mint, `a cross-site script cannot call /auth/token with a CSRF header: ${JSON.stringify(mint)}`);
    await sessionStillAlive(context, 'after the cross-site attempts');
  });

  test('a page on the same site but another origin gets the cookie sent, and is still refused (Origin and CSRF token)', async () => {
    const { context } = await newContext();
    await signIn(context, 'alice', '/auth/session');
    const page = await context.newPage();

    for (const path of ['/auth/token', '/auth/logout']) {
      const answered = page.waitForResponse((r) => r.url() === `${gateway}${path}` && r.request().method() === 'POST');
      await page.goto(`${sameSite}/autopost?action=${encodeURIComponent(`${gateway}${path}`)}`);
      const response = await answered;
      const headers = await response.request().allHeaders();
      assert.equal(headers.cookie?.includes(`${SESSION_COOKIE}=`) ?? false, true, `${path}: a same-site POST carries the Lax cookie, so the gateway must refuse it itself`);
      const body = await response.text();
      assert.equal(response.status(), 403, `${path} from ${sameSite}: ${body}`);
      assert.equal(JSON.parse(body).error?.code, 'csrf_origin_mismatch', `${path}: the Origin header gives the other origin away`);
    }
    await page.goto(`${sameSite}/blank`);
    const read = await pageFetch(page, `${gateway}/auth/session`, { credentials: 'include' });
    assert.ok('error' in read, `another origin's script cannot read the CSRF token: ${JSON.stringify(read)}`);
    await sessionStillAlive(context, 'after the same-site attempts');
  });

  test('logout in the browser ends the session, and the old cookie is worthless', async () => {
    const { context } = await newContext();
    const page = await signIn(context, 'alice', '/auth/session');
    const csrf = await csrfTokenOf(page);
    const old = (await context.cookies(gateway)).find((c) => c.name === SESSION_COOKIE);
    assert.ok(old, 'signed in with a session cookie');

    const minted = await pageFetch(page, '/auth/token', { method: 'POST', headers: { 'x-csrf-token': csrf } });
    const { access_token: apiToken } = JSON.parse((minted as { body: string }).body) as { access_token: string };
    assert.equal((await fetch(`${gateway}/auth/whoami`, { headers: { authorization: `Bearer ${apiToken}` } })).status, 200);

    const refused = await pageFetch(page, '/auth/logout', { method: 'POST' });
    assert.ok('status' in refused && refused.status === 403, `logout without the CSRF token: ${JSON.stringify(refused)}`);
    const loggedOut = await pageFetch(page, '/auth/logout', { method: 'POST', headers: { 'x-csrf-token': csrf } });
    assert.ok('status' in loggedOut && loggedOut.status === 204, `logout with the CSRF token: ${JSON.stringify(loggedOut)}`);
    assert.equal((await context.cookies(gateway)).some((c) => c.name === SESSION_COOKIE), false, 'the browser dropped the session cookie');
    const revoked = await fetch(`${gateway}/auth/whoami`, { headers: { authorization: `Bearer ${apiToken}` } });
    assert.equal(revoked.status, 401, 'the API token the session minted is revoked, not left to expire');
    assert.equal(((await revoked.json()) as { error: { code: string } }).error.code, 'token_revoked');

    const after = await page.goto(`${gateway}/auth/session`);
    assert.equal(after?.status(), 401, 'no session after logout');
    assert.equal((await shownJson(page)).error?.code, 'session_missing', 'the gateway says there is no session');

    await context.addCookies([old]);
    const replayed = await page.goto(`${gateway}/auth/session`);
    assert.equal(replayed?.status(), 401, 'the old session cookie no longer works: the session ended on the server');
  });

  test('SAML sign-in: the browser follows the IdP’s auto-posting form to the ACS and gets a session', async () => {
    const { context, offLoopback } = await newContext();
    const page = await context.newPage();
    await Promise.all([
      page.waitForURL((url) => url.origin === gateway && url.pathname !== '/auth/saml/login'),
      page.goto(`${gateway}/auth/saml/login?return_to=/auth/session`, { waitUntil: 'commit' }),
    ]);
    assert.equal(page.url(), `${gateway}/auth/session`, 'from the IdP’s form POST to the ACS, back to the page asked for');
    assert.deepEqual(samlRequests, [`${gateway}/auth/saml/acs`], 'the browser went to the IdP once, with an AuthnRequest naming the gateway’s ACS');
    const session = await shownJson(page);
    assert.deepEqual(
      session.identity,
      { subject: 'bob@corp.example', groups: ['engineering', 'saml-users'], origin: samlIdp.entityId, method: 'saml', email: 'bob@corp.example', name: 'Bob B' },
      `the session is bob’s, from the SAML assertion: ${JSON.stringify(session)}`,
    );
    const cookie = (await context.cookies(gateway)).find((c) => c.name === SESSION_COOKIE);
    assert.ok(cookie?.httpOnly && cookie.sameSite === 'Lax', `an HttpOnly, SameSite=Lax session cookie: ${JSON.stringify(cookie)}`);
    assert.deepEqual(offLoopback, [], 'nothing left loopback');
  });

  test('return_to cannot send the browser to another site', async () => {
    for (const target of ['https://evil.example', '//evil.example/x', '/\\evil.example']) {
      const { context, offLoopback } = await newContext();
      const page = await signIn(context, 'alice', target);
      assert.equal(page.url(), `${gateway}/ui/`, `${target}: the browser stays on the gateway (/, which opens the console)`);
      assert.deepEqual(offLoopback, [], `${target}: the browser never asked another host`);
      await context.close();
    }
  });
});

/**
 * Another site on loopback. /saml/sso is the SAML IdP: it reads the gateway's
 * AuthnRequest and answers, as a real IdP does after sign-in, with a page that
 * posts the signed SAMLResponse to the ACS by script. /autopost is an
 * attacker's page that POSTs an empty form to `action` as soon as it loads.
 */
async function startOtherSite(samlIdp: TestSamlIdp, samlRequests: string[]): Promise<Server> {
  const html = (res: ServerResponse, body: string) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(body);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://other-site');
    if (url.pathname === '/saml/sso') {
      // TestSamlIdp knows itself by its own SSO URL; the query is the gateway's, untouched.
      const request = samlIdp.parseRequest(`${samlIdp.ssoUrl}${url.search}`);
      samlRequests.push(request.acsUrl);
      html(res, autoPostPage(request.acsUrl, { SAMLResponse: samlIdp.respond(request, bob), RelayState: request.relayState }));
    } else if (url.pathname === '/autopost') {
      html(res, autoPostPage(url.searchParams.get('action') ?? '/', {}));
    } else {
      html(res, '<!DOCTYPE html><title>elsewhere</title>');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** A page that submits a POST form by script on load, as SAML IdPs and CSRF attackers both do. */
function autoPostPage(action: string, fields: Record<string, string>): string {
  const inputs = Object.entries(fields)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('');
  return `<!DOCTYPE html><html><body onload="document.forms[0].submit()"><form method="post" action="${escapeHtml(action)}">${inputs}<noscript><button>Continue</button></noscript></form></body></html>`;
}

function escapeHtml(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
