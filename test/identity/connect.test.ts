// `modelgate connect`: an unchanged OpenAI SDK client, pointed at the local
// proxy with a dummy key, keeps working while the caller's token expires
// (refreshed ahead of time) and when the gateway refuses a token the CLI
// still believed valid (refreshed and retried once).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { CredentialStore } from '../../src/cli/credential-store.js';
import { LocalProxy } from '../../src/cli/local-proxy.js';
import { login } from '../../src/cli/oauth-login.js';
import { TokenSource } from '../../src/cli/token-source.js';
import { startHarness, type Harness } from '../helpers/harness.js';

describe('modelgate connect', () => {
  let h: Harness;
  let dir: string;
  let store: CredentialStore;
  let proxy: LocalProxy;
  let proxyUrl: string;
  const served: Array<{ status: number; retried: boolean }> = [];

  before(async () => {
    h = await startHarness({
      idp: { accessTokenTtlSeconds: 3 },
      configure(input) {
        input.identity!.clock_skew = '0s';
      },
    });
    dir = await mkdtemp(join(tmpdir(), 'modelgate-connect-'));
    store = new CredentialStore(dir);
    await store.write(
      'default',
      await login(
        h.url,
        {
          showDeviceCode() {},
          async openBrowser(url) {
            await (await fetch(await h.idp.completeAuthorization(url, 'alice'))).text();
          },
        },
        { flow: 'browser' },
      ),
    );
    const profile = await store.read('default');
    proxy = new LocalProxy({
      gateway: profile.gateway,
      tokens: new TokenSource(store, 'default'),
      refreshMarginSeconds: 2,
      onRequest: (entry) => served.push(entry),
    });
    proxyUrl = await proxy.listen(0);
  });
  after(async () => {
    await proxy.close();
    await h.close();
    await rm(dir, { recursive: true, force: true });
  });

  const client = () => new OpenAI({ baseURL: `${proxyUrl}/v1`, apiKey: 'dummy', maxRetries: 0 });

  test('an unchanged OpenAI SDK client works through the proxy, streaming and not', async () => {
    const completion = await client().chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'Hello' }] });
    assert.ok(completion.choices[0]?.message.content);
    const stream = await client().chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'Hello' }], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.ok(text.length > 0);
    const models = await client().models.list();
    assert.deepEqual(models.data.map((m) => m.id).sort(), ['demo-chat', 'demo-embed']);
    const seen = h.model.received.at(-2)!;
    assert.equal(seen.headers.authorization, 'Bearer demo-upstream-key', 'neither the dummy key nor the user token reaches the model');
  });

  test('after logout: 401 in the OpenAI shape saying to run modelgate login, with a request ID, and no SDK retry', async () => {
    // A profile with no stored login, as `modelgate logout` leaves it.
    const loggedOut = new LocalProxy({ gateway: h.url, tokens: new TokenSource(store, 'logged-out') });
    const url = await loggedOut.listen(0);
    let attempts = 0;
    const sdk = new OpenAI({
      baseURL: `${url}/v1`,
      apiKey: 'dummy',
      maxRetries: 2,
      fetch: (input, init) => {
        attempts++;
        return fetch(input, init);
      },
    });
    try {
      const err = await sdk.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] }).then(
        () => assert.fail('served without a login'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof OpenAI.AuthenticationError, `a 401, not ${String(err)}`);
      assert.equal(err.code, 'connect_not_logged_in');
      assert.match(err.message, /Run: modelgate login --gateway/);
      assert.match(err.requestID ?? '', /^req_/);
      assert.equal(attempts, 1, 'the SDK does not retry a missing login');
    } finally {
      await loggedOut.close();
    }
  });

  test('across token expiry: the proxy refreshes before the token runs out', async () => {
    const before = (await store.read('default')).tokens.bearer;
    await new Promise((r) => setTimeout(r, 2_200)); // under the 2 s margin of the 3 s token left
    const completion = await client().chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'again' }] });
    assert.ok(completion.choices[0]?.message.content);
    assert.notEqual((await store.read('default')).tokens.bearer, before, 'the stored token was refreshed');
    assert.equal(served.at(-1)?.retried, false);
  });

  test('forced expiry: a token the gateway refuses as expired is refreshed and the request retried once', async () => {
    // The stored token expires, but the CLI is told it is good for an hour (a clock jump, or an IdP that shortened it).
    const stored = await store.read('default');
    await store.write('default', { ...stored, tokens: { ...stored.tokens, expiresAt: Math.floor(Date.now() / 1000) + 3600 } });
    await new Promise((r) => setTimeout(r, 3_100));
    const stream = await client().chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'still there?' }], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.ok(text.length > 0);
    assert.deepEqual(served.at(-1), { method: 'POST', path: '/v1/chat/completions', status: 200, retried: true });
  });

  test('a refusal that a new token cannot fix is passed through, not retried', async () => {
    const servedBefore = served.length;
    const response = await client().chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    assert.ok(response instanceof OpenAI.NotFoundError);
    assert.deepEqual(served.slice(servedBefore), [{ method: 'POST', path: '/v1/chat/completions', status: 404, retried: false }], 'one attempt, no retry');
  });

  test('a 401 that a new token cannot fix is passed through once, without asking for a new token', async () => {
    const asked: Array<{ force?: boolean }> = [];
    const entries: typeof served = [];
    const malformed = { bearer: async (options: { force?: boolean } = {}) => (asked.push(options), 'not-a-jwt') } as unknown as TokenSource;
    const stubbed = new LocalProxy({ gateway: h.url, tokens: malformed, onRequest: (entry) => entries.push(entry) });
    const url = await stubbed.listen(0);
    try {
      const refused = await new OpenAI({ baseURL: `${url}/v1`, apiKey: 'dummy', maxRetries: 0 }).models.list().catch((e: unknown) => e);
      assert.ok(refused instanceof OpenAI.AuthenticationError);
      assert.deepEqual(entries, [{ method: 'GET', path: '/v1/models', status: 401, retried: false }]);
      assert.ok(!asked.some((o) => o.force), 'no forced refresh for a refusal a new token cannot fix');
    } finally {
      await stubbed.close();
    }
  });

  test('DNS rebinding: a request for another host name is refused', async () => {
    // fetch() will not send a foreign Host header; a browser after DNS rebinding would.
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(`${proxyUrl}/v1/models`, { headers: { host: 'attacker.example' } }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 403);
    assert.equal((JSON.parse(body) as { error: { code: string } }).error.code, 'connect_host_refused');
  });

  test('--require-key: only clients with the printed key are served', async () => {
    const localKey = LocalProxy.generateLocalKey();
    const locked = new LocalProxy({ gateway: h.url, tokens: new TokenSource(store, 'default'), localKey });
    const url = await locked.listen(0);
    try {
      const refused = await fetch(`${url}/v1/models`, { headers: { authorization: 'Bearer dummy' } });
      assert.equal(refused.status, 401);
      await refused.body?.cancel();
      const models = await new OpenAI({ baseURL: `${url}/v1`, apiKey: localKey, maxRetries: 0 }).models.list();
      assert.ok(models.data.length > 0);
    } finally {
      await locked.close();
    }
  });

  /** A raw request, so the request line and headers are exactly what an attacker sends. */
  function raw(path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(proxyUrl, { path, method: options.method ?? 'GET', headers: options.headers }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.end(options.body);
    });
  }
  const codeOf = (body: string) => (JSON.parse(body) as { error: { code: string } }).error.code;

  describe('the token goes only to the gateway', () => {
    let evil: Server;
    let evilHost: string;
    const collected: string[] = [];
    before(async () => {
      evil = createServer((req, res) => {
        collected.push(`${req.url} ${req.headers.authorization ?? ''}`);
        res.end('{}');
      });
      await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
      evilHost = `127.0.0.1:${(evil.address() as AddressInfo).port}`;
    });
    after(() => new Promise<void>((resolve) => evil.close(() => resolve())));

    for (const [name, path] of [
      ['a scheme-relative path', (host: string) => `//${host}/v1/models`],
      ['an absolute URL', (host: string) => `http://${host}/v1/models`],
      ['a backslash path', (host: string) => `/\\${host}/v1/models`],
      ['a backslash inside an API path', (host: string) => `/v1/\\${host}/models`],
    ] as const) {
      test(`${name} cannot send the token to another host: 400`, async () => {
        const answer = await raw(path(evilHost));
        assert.deepEqual(collected, [], 'nothing reached the other host');
        assert.equal(answer.status, 400, answer.body);
        assert.equal(codeOf(answer.body), 'connect_path_refused');
      });
    }

    test('paths outside the API (also reached through dot segments) are refused', async () => {
      for (const path of ['/auth/token', '/v1/../auth/token', '/v1/%2e%2e/metrics', '/metrics']) {
        const answer = await raw(path);
        assert.equal(answer.status, 400, `${path}: ${answer.body}`);
        assert.equal(codeOf(answer.body), 'connect_path_refused');
      }
      assert.equal((await raw('/v1/models')).status, 200, 'API paths still pass');
    });
  });

  describe('cross-site requests', () => {
    test('a page of another site cannot approve a review through the proxy (Origin)', async () => {
      const answer = await raw('/v1/reviews/rev_x/approve', { method: 'POST', headers: { origin: 'https://evil.example', 'content-type': 'application/json' }, body: '{}' });
      assert.equal(answer.status, 403, answer.body);
      assert.equal(codeOf(answer.body), 'connect_cross_site_refused');
    });

    test('Sec-Fetch-Site of another site is refused, also on GET', async () => {
      for (const site of ['cross-site', 'same-site']) {
        const answer = await raw('/v1/models', { headers: { 'sec-fetch-site': site } });
        assert.equal(answer.status, 403, `${site}: ${answer.body}`);
        assert.equal(codeOf(answer.body), 'connect_cross_site_refused');
      }
      assert.equal((await raw('/v1/models', { headers: { 'sec-fetch-site': 'same-origin', origin: proxyUrl } })).status, 200);
    });

    test('a state-changing call needs a JSON content type (a simple form post has none)', async () => {
      for (const headers of [{ 'content-type': 'text/plain' }, { 'content-type': 'application/x-www-form-urlencoded' }, {} as Record<string, string>]) {
        const answer = await raw('/v1/sessions/s_x/hold', { method: 'POST', headers, body: 'a=b' });
        assert.equal(answer.status, 415, answer.body);
        assert.equal(codeOf(answer.body), 'connect_json_required');
      }
    });
  });
});
