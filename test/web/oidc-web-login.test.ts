// Browser sign-in with OIDC (authorization code + PKCE, state, nonce)
// against the real development IdP, the session cookie it yields, and CSRF
// protection on every state-changing call made with that cookie.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { devConsoleOidc, errorOf, postJson, startHarness, type Harness } from '../helpers/harness.js';
import { TestBrowser } from './browser.js';

const chat = { model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] };

describe('OIDC web login', () => {
  let h: Harness;
  let gateway: string;

  before(async () => {
    h = await startHarness({
      configure(input) {
        input.identity!.web = {
          session_lifetime: '15m',
          oidc: devConsoleOidc(input.identity!.issuers[0]!.issuer),
        };
      },
    });
    // The gateway listened on port 0; only now is its callback URL known to register at the IdP.
    gateway = h.url;
    h.idp.setConsoleRedirectUris([`${gateway}/auth/oidc/callback`]);
  });
  after(() => h.close());

  /** Starts at the gateway, signs in at the IdP, and returns the gateway callback URL the IdP redirected to. */
  async function startLogin(browser: TestBrowser, user: string, returnTo = '/console'): Promise<URL> {
    const start = await browser.get(`${gateway}/auth/oidc/login?return_to=${encodeURIComponent(returnTo)}`);
    assert.equal(start.status, 302);
    const authorization = new URL(start.headers.get('location')!);
    assert.equal(authorization.origin, h.idp.issuer);
    for (const parameter of ['state', 'nonce', 'code_challenge']) assert.ok(authorization.searchParams.get(parameter), parameter);
    assert.equal(authorization.searchParams.get('code_challenge_method'), 'S256');
    return h.idp.completeAuthorization(authorization, user);
  }

  async function signedIn(user: string): Promise<{ browser: TestBrowser; csrf: string }> {
    const browser = new TestBrowser();
    const callback = await startLogin(browser, user);
    const finished = await browser.get(callback);
    assert.equal(finished.status, 303, await finished.clone().text());
    const session = (await (await browser.get(`${gateway}/auth/session`)).json()) as { csrf_token: string };
    return { browser, csrf: session.csrf_token };
  }

  test('sign-in sets a short-lived HttpOnly, SameSite=Lax session cookie and returns to the page asked for', async () => {
    const browser = new TestBrowser();
    const callback = await startLogin(browser, 'alice');
    const finished = await browser.get(callback);
    assert.equal(finished.status, 303);
    assert.equal(finished.headers.get('location'), '/console');
    const cookie = browser.setCookies.find((c) => c.startsWith('modelgate_session='))!;
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Lax/);
    assert.match(cookie, /Max-Age=900/);
    assert.doesNotMatch(cookie, /Secure/, 'plain http here; Secure is set behind TLS (see the SAML suite)');

    const session = (await (await browser.get(`${gateway}/auth/session`)).json()) as Record<string, any>;
    assert.equal(session.identity.subject, 'alice');
    assert.equal(session.identity.method, 'oidc');
    assert.deepEqual(session.identity.groups, ['engineering', 'ml-platform']);
    assert.equal(typeof session.csrf_token, 'string');
  });

  test('a gateway token for the session needs the CSRF token; the token then calls models', async () => {
    const { browser, csrf } = await signedIn('alice');
    const without = await browser.post(`${gateway}/auth/token`, undefined);
    assert.equal(without.status, 403);
    assert.equal((await errorOf(without)).code, 'csrf_token_invalid');
    const wrong = await browser.post(`${gateway}/auth/token`, undefined, { 'x-csrf-token': 'guess' });
    assert.equal((await errorOf(wrong)).code, 'csrf_token_invalid');
    const crossSite = await browser.post(`${gateway}/auth/token`, undefined, { 'x-csrf-token': csrf, origin: 'https://evil.example' });
    assert.equal((await errorOf(crossSite)).code, 'csrf_origin_mismatch');

    const issued = await browser.post(`${gateway}/auth/token`, undefined, { 'x-csrf-token': csrf, origin: gateway });
    assert.equal(issued.status, 200);
    const { access_token, expires_in } = (await issued.json()) as { access_token: string; expires_in: number };
    assert.ok(expires_in > 3000 && expires_in <= 3600, 'gateway tokens live 1 hour by default');
    const response = await postJson(`${gateway}/v1/chat/completions`, access_token, chat);
    assert.equal(response.status, 200);
    await response.body?.cancel();
  });

  test('the session cookie never authenticates the model API', async () => {
    const { browser } = await signedIn('alice');
    const response = await browser.post(`${gateway}/v1/chat/completions`, undefined, { 'content-type': 'application/json' });
    assert.equal(response.status, 401);
    assert.equal((await errorOf(response)).code, 'token_missing');
  });

  test('login CSRF: a callback finished in a browser that did not start the login is refused', async () => {
    const attacker = new TestBrowser();
    const callback = await startLogin(attacker, 'bob');
    const victim = new TestBrowser();
    const response = await victim.get(callback);
    assert.equal(response.status, 400);
    assert.equal((await errorOf(response)).code, 'login_binding_mismatch');
    assert.equal(victim.cookies.size, 0, 'no session for the victim');
  });

  test('a callback cannot be used twice', async () => {
    const browser = new TestBrowser();
    const callback = await startLogin(browser, 'alice');
    assert.equal((await browser.get(callback)).status, 303);
    const again = await browser.get(callback);
    assert.equal(again.status, 400);
    assert.equal((await errorOf(again)).code, 'login_expired');
  });

  test('a callback with a forged state is refused', async () => {
    const browser = new TestBrowser();
    const callback = await startLogin(browser, 'alice');
    callback.searchParams.set('state', 'forged');
    assert.equal((await errorOf(await browser.get(callback))).code, 'login_expired');
  });

  test('return_to cannot send the browser to another site', async () => {
    for (const target of ['//evil.example/x', 'https://evil.example', '/\\evil.example']) {
      const browser = new TestBrowser();
      const callback = await startLogin(browser, 'alice', target);
      const finished = await browser.get(callback);
      assert.equal(finished.headers.get('location'), '/', target);
    }
  });

  test('logout needs the CSRF token and ends the session', async () => {
    const { browser, csrf } = await signedIn('carol');
    assert.equal((await browser.post(`${gateway}/auth/logout`, undefined)).status, 403);
    assert.equal((await browser.post(`${gateway}/auth/logout`, undefined, { 'x-csrf-token': csrf })).status, 204);
    const after = await browser.get(`${gateway}/auth/session`);
    assert.equal(after.status, 401);
    assert.equal((await errorOf(after)).code, 'session_missing');
  });

  test('a forged session cookie is no session', async () => {
    const browser = new TestBrowser();
    browser.cookies.set('modelgate_session', 'A'.repeat(43));
    assert.equal((await browser.get(`${gateway}/auth/session`)).status, 401);
  });
});
