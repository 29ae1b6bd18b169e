import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import {
  CLI_CLIENT_ID,
  CONSOLE_CLIENT_ID,
  CONSOLE_CLIENT_SECRET,
  DEFAULT_CONSOLE_REDIRECT_URI,
  GATEWAY_SCOPE,
  generateSigningKey,
  startDevIdp,
  type DevIdp,
} from '../../src/dev/idp.js';
import { ScriptedBrowser } from '../../src/dev/idp-browser.js';

const AUDIENCE = 'modelgate';

interface Discovery {
  issuer: string;
  jwks_uri: string;
  authorization_endpoint: string;
  token_endpoint: string;
  device_authorization_endpoint: string;
  introspection_endpoint: string;
  revocation_endpoint: string;
  end_session_endpoint: string;
  grant_types_supported: string[];
  code_challenge_methods_supported: string[];
}

async function discover(idp: DevIdp): Promise<Discovery> {
  const response = await fetch(`${idp.issuer}/.well-known/openid-configuration`);
  assert.equal(response.status, 200);
  return (await response.json()) as Discovery;
}

/** Verifies like the gateway will: a fresh remote JWKS from the discovered jwks_uri. */
async function verifyAccessToken(idp: DevIdp, token: string): Promise<JWTPayload> {
  const { jwks_uri } = await discover(idp);
  const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(jwks_uri)), {
    issuer: idp.issuer,
    audience: AUDIENCE,
    typ: 'at+jwt',
  });
  return payload;
}

async function postForm(url: string, params: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, { method: 'POST', headers, body: new URLSearchParams(params) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

function basic(clientId: string, secret: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` };
}

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

describe('dev IdP', () => {
  let idp: DevIdp;

  before(async () => {
    idp = await startDevIdp({ audience: AUDIENCE });
  });

  after(async () => {
    await idp.close();
  });

  test('serves discovery with the endpoints the gateway and CLI need', async () => {
    const discovery = await discover(idp);
    assert.equal(discovery.issuer, idp.issuer);
    assert.match(idp.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(discovery.jwks_uri, `${idp.issuer}/jwks`);
    assert.equal(discovery.token_endpoint, `${idp.issuer}/token`);
    assert.equal(discovery.device_authorization_endpoint, `${idp.issuer}/device/auth`);
    assert.ok(discovery.introspection_endpoint && discovery.revocation_endpoint && discovery.end_session_endpoint);
    for (const grant of ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code']) {
      assert.ok(discovery.grant_types_supported.includes(grant), grant);
    }
    assert.deepEqual(discovery.code_challenge_methods_supported, ['S256']);

    const jwks = (await (await fetch(discovery.jwks_uri)).json()) as { keys: Array<Record<string, unknown>> };
    assert.deepEqual(jwks.keys.map((key) => key.kid), idp.signingKeys.map((key) => key.kid));
    assert.ok(jwks.keys.every((key) => key.d === undefined), 'the JWKS publishes public keys only');
  });

  test('client credentials: a JWT access token for the service account', async () => {
    const token = await idp.clientCredentialsToken();
    assert.equal(decodeProtectedHeader(token).kid, idp.signingKeys[0]?.kid);
    const payload = await verifyAccessToken(idp, token);
    assert.equal(payload.iss, idp.issuer);
    assert.equal(payload.aud, AUDIENCE);
    assert.equal(payload.sub, 'batch-summariser');
    assert.equal(payload.client_id, 'batch-summariser');
    assert.deepEqual(payload.groups, ['engineering']);
    assert.equal(payload.scope, GATEWAY_SCOPE);
    assert.equal(typeof payload.jti, 'string');
    assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 900);

    const ciBot = decodeJwt(await idp.clientCredentialsToken('ci-bot'));
    assert.equal(ciBot.sub, 'ci-bot');
    assert.deepEqual(ciBot.groups, ['ci']);
  });

  test('client credentials: unknown clients and wrong secrets are refused', async () => {
    await assert.rejects(idp.clientCredentialsToken('nobody'), /no service client nobody/);
    const { status, body } = await postForm(
      `${idp.issuer}/token`,
      { grant_type: 'client_credentials', resource: idp.resource },
      basic('ci-bot', 'wrong-secret'),
    );
    assert.equal(status, 401);
    assert.equal(body.error, 'invalid_client');
  });

  test('loginAs: alice gets a JWT access token, an id_token and a refresh token', async () => {
    const tokens = await idp.loginAs('alice');
    const payload = await verifyAccessToken(idp, tokens.accessToken);
    assert.equal(payload.sub, 'alice');
    assert.equal(payload.email, 'alice@example.com');
    assert.equal(payload.name, 'Alice Anders');
    assert.deepEqual(payload.groups, ['engineering', 'ml-platform']);
    assert.equal(payload.client_id, CLI_CLIENT_ID);
    assert.equal(payload.scope, GATEWAY_SCOPE);
    assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 900);

    const { jwks_uri } = await discover(idp);
    const { payload: idToken } = await jwtVerify(tokens.idToken, createRemoteJWKSet(new URL(jwks_uri)), {
      issuer: idp.issuer,
      audience: CLI_CLIENT_ID,
    });
    assert.equal(idToken.sub, 'alice');
    assert.equal(typeof idToken.nonce, 'string');
    assert.equal(typeof tokens.refreshToken, 'string');
  });

  test('loginAs: a wrong password or unknown user fails clearly', async () => {
    await assert.rejects(idp.loginAs('alice', 'not-her-password'), /HTTP 401.*Wrong username or password/);
    await assert.rejects(idp.loginAs('mallory'), /Wrong username or password/);
  });

  test('loginAs: dave has no groups, so his token carries an empty groups claim', async () => {
    const payload = await verifyAccessToken(idp, (await idp.loginAs('dave')).accessToken);
    assert.equal(payload.sub, 'dave');
    assert.equal(payload.email, 'dave@example.com');
    assert.deepEqual(payload.groups, []);
  });

  test('refresh: a new access token, and the used refresh token is rotated out', async () => {
    const login = await idp.loginAs('carol');
    assert.ok(login.refreshToken);
    const refreshed = await idp.refresh(login.refreshToken);
    const before = decodeJwt(login.accessToken);
    const payload = await verifyAccessToken(idp, refreshed.accessToken);
    assert.notEqual(payload.jti, before.jti);
    assert.equal(payload.sub, 'carol');
    assert.deepEqual(payload.groups, ['auditors', 'approvers']);
    assert.ok(refreshed.refreshToken && refreshed.refreshToken !== login.refreshToken, 'public clients get rotated refresh tokens');
    const again = await idp.refresh(refreshed.refreshToken);
    assert.ok(again.refreshToken);
    // Replaying a rotated-out refresh token is treated as theft: the whole grant is revoked.
    await assert.rejects(idp.refresh(login.refreshToken), /invalid_grant/);
    await assert.rejects(idp.refresh(again.refreshToken), /invalid_grant/);
  });

  test('revocation and introspection work for refresh tokens', async () => {
    const { refreshToken } = await idp.loginAs('bob');
    assert.ok(refreshToken);
    const introspect = () =>
      postForm(`${idp.issuer}/token/introspection`, { token: refreshToken }, basic('batch-summariser', 'batch-summariser-secret'));
    const active = await introspect();
    assert.equal(active.body.active, true);
    assert.equal(active.body.sub, 'bob');

    const revoked = await fetch(`${idp.issuer}/token/revocation`, {
      method: 'POST',
      body: new URLSearchParams({ token: refreshToken, client_id: CLI_CLIENT_ID }),
    });
    assert.equal(revoked.status, 200);
    assert.equal((await introspect()).body.active, false);
    await assert.rejects(idp.refresh(refreshToken), /invalid_grant/);
  });

  test('serves its own login page instead of devInteractions', async () => {
    const { challenge } = pkce();
    const authorization = new URL(`${idp.issuer}/auth`);
    authorization.search = new URLSearchParams({
      client_id: CLI_CLIENT_ID,
      response_type: 'code',
      redirect_uri: 'http://127.0.0.1/callback',
      scope: 'openid',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }).toString();
    const start = await fetch(authorization, { redirect: 'manual' });
    assert.equal(start.status, 303);
    const location = new URL(start.headers.get('location') ?? '', idp.issuer);
    assert.match(location.pathname, /^\/interaction\/[\w-]+$/);

    const cookie = start.headers.getSetCookie().map((header) => header.split(';')[0]).join('; ');
    const page = await fetch(location, { headers: { cookie } });
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    const html = await page.text();
    assert.match(html, /<form method="post" action="\/interaction\/[\w-]+"/);
    assert.match(html, /name="password"/);
    assert.match(html, /Development identity provider/);
    assert.match(html, /alice-password/);

    const withoutCookie = await fetch(location);
    assert.equal(withoutCookie.status, 400);
    assert.match(await withoutCookie.text(), /expired or belongs to another browser/);
  });

  test('the CLI may use any loopback port, as RFC 8252 native apps do', async () => {
    const { verifier, challenge } = pkce();
    const redirectUri = 'http://127.0.0.1:49152/callback';
    const authorization = new URL(`${idp.issuer}/auth`);
    authorization.search = new URLSearchParams({
      client_id: CLI_CLIENT_ID,
      response_type: 'code',
      redirect_uri: redirectUri,
      scope: `openid ${GATEWAY_SCOPE}`,
      state: 'cli-state',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }).toString();
    const callback = await idp.completeAuthorization(authorization, 'bob');
    assert.equal(`${callback.origin}${callback.pathname}`, redirectUri);
    assert.equal(callback.searchParams.get('state'), 'cli-state');
    const code = callback.searchParams.get('code');
    assert.ok(code);

    const { status, body } = await postForm(`${idp.issuer}/token`, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
      client_id: CLI_CLIENT_ID,
      code_verifier: verifier,
    });
    assert.equal(status, 200);
    const payload = await verifyAccessToken(idp, body.access_token as string);
    assert.equal(payload.sub, 'bob');
    assert.deepEqual(payload.groups, ['contractors']);
  });

  test('the CLI must use PKCE', async () => {
    const authorization = new URL(`${idp.issuer}/auth`);
    authorization.search = new URLSearchParams({
      client_id: CLI_CLIENT_ID,
      response_type: 'code',
      redirect_uri: 'http://127.0.0.1/callback',
      scope: 'openid',
    }).toString();
    const callback = await idp.completeAuthorization(authorization, 'alice');
    assert.equal(callback.searchParams.get('error'), 'invalid_request');
    assert.match(callback.searchParams.get('error_description') ?? '', /PKCE/);
  });

  test('the web console signs in as a confidential client', async () => {
    const authorization = new URL(`${idp.issuer}/auth`);
    authorization.search = new URLSearchParams({
      client_id: CONSOLE_CLIENT_ID,
      response_type: 'code',
      redirect_uri: DEFAULT_CONSOLE_REDIRECT_URI,
      scope: `openid email profile ${GATEWAY_SCOPE}`,
      state: 'console-state',
    }).toString();
    const callback = await idp.completeAuthorization(authorization, 'carol');
    assert.equal(`${callback.origin}${callback.pathname}`, DEFAULT_CONSOLE_REDIRECT_URI);
    const code = callback.searchParams.get('code');
    assert.ok(code);

    const { status, body } = await postForm(
      `${idp.issuer}/token`,
      { grant_type: 'authorization_code', code, redirect_uri: DEFAULT_CONSOLE_REDIRECT_URI },
      basic(CONSOLE_CLIENT_ID, CONSOLE_CLIENT_SECRET),
    );
    assert.equal(status, 200);
    assert.equal(decodeJwt(body.id_token as string).email, 'carol@example.com');
    const payload = await verifyAccessToken(idp, body.access_token as string);
    assert.equal(payload.sub, 'carol');
    assert.equal(payload.client_id, CONSOLE_CLIENT_ID);
  });

  test('device flow: the CLI polls while the user approves in the browser', async () => {
    const started = await postForm(`${idp.issuer}/device/auth`, {
      client_id: CLI_CLIENT_ID,
      scope: `openid email profile offline_access ${GATEWAY_SCOPE}`,
    });
    assert.equal(started.status, 200);
    const deviceCode = started.body.device_code as string;
    const userCode = started.body.user_code as string;
    assert.match(userCode, /^[A-Z]{4}-[A-Z]{4}$/);
    assert.equal(started.body.verification_uri, `${idp.issuer}/device`);

    const poll = () =>
      postForm(`${idp.issuer}/token`, {
        grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
        device_code: deviceCode,
        client_id: CLI_CLIENT_ID,
      });
    assert.equal((await poll()).body.error, 'authorization_pending');

    await assert.rejects(idp.approveDevice('BCDF-GHJK', 'carol'), /HTTP 400/);
    await idp.approveDevice(userCode, 'carol');

    const { status, body } = await poll();
    assert.equal(status, 200);
    const payload = await verifyAccessToken(idp, body.access_token as string);
    assert.equal(payload.sub, 'carol');
    assert.deepEqual(payload.groups, ['auditors', 'approvers']);
    assert.equal(typeof body.refresh_token, 'string');
  });

  test('RP-initiated logout ends on the dev IdP page', async () => {
    const browser = new ScriptedBrowser(new URL(idp.issuer).origin, { username: 'alice', password: 'alice-password' });
    const outcome = await browser.browse(new URL(`${idp.issuer}/session/end`));
    assert.equal(outcome.kind, 'page');
    assert.match(outcome.kind === 'page' ? outcome.html : '', /You have been signed out/);
  });
});

describe('dev IdP key rotation', () => {
  test('new tokens use the new key; removed keys stop verifying; sessions survive', async () => {
    const original = await generateSigningKey('RS256');
    const idp = await startDevIdp({ audience: AUDIENCE, signingKeys: [original], accessTokenTtlSeconds: 300 });
    try {
      const oldToken = await idp.clientCredentialsToken();
      const { refreshToken } = await idp.loginAs('alice');
      assert.ok(refreshToken);
      assert.equal(decodeProtectedHeader(oldToken).kid, original.kid);
      const { exp = 0, iat = 0 } = await verifyAccessToken(idp, oldToken);
      assert.equal(exp - iat, 300);

      const next = await generateSigningKey('ES256');
      await idp.rotateSigningKeys([next, original]);
      const issuerAfterRotation = idp.issuer;
      const newToken = await idp.clientCredentialsToken();
      assert.deepEqual(decodeProtectedHeader(newToken), { alg: 'ES256', typ: 'at+jwt', kid: next.kid });
      assert.equal((await verifyAccessToken(idp, newToken)).sub, 'batch-summariser');
      assert.equal((await verifyAccessToken(idp, oldToken)).sub, 'batch-summariser', 'old key still published');

      // The refresh token issued before rotation still works: storage outlives the provider instance.
      const refreshed = await idp.refresh(refreshToken);
      assert.equal(decodeProtectedHeader(refreshed.accessToken).kid, next.kid);

      await idp.rotateSigningKeys([next]);
      assert.equal(idp.issuer, issuerAfterRotation);
      assert.deepEqual(idp.signingKeys.map((key) => key.kid), [next.kid]);
      await assert.rejects(verifyAccessToken(idp, oldToken), { code: 'ERR_JWKS_NO_MATCHING_KEY' });
      assert.equal((await verifyAccessToken(idp, newToken)).sub, 'batch-summariser');

      const { accessToken, idToken } = await idp.loginAs('bob');
      assert.equal(decodeProtectedHeader(accessToken).kid, next.kid);
      assert.equal(decodeProtectedHeader(idToken).alg, 'ES256', 'id_tokens follow the signing key too');
    } finally {
      await idp.close();
    }
  });

  test('rejects unusable keys and keeps the current ones', async () => {
    const idp = await startDevIdp({ audience: AUDIENCE });
    try {
      const before = idp.signingKeys;
      await assert.rejects(idp.rotateSigningKeys([]), /at least one signing key/);
      const { d: _private, ...publicOnly } = await generateSigningKey();
      await assert.rejects(idp.rotateSigningKeys([publicOnly]), /not a private key/);
      assert.deepEqual(idp.signingKeys, before);
      await verifyAccessToken(idp, await idp.clientCredentialsToken());
    } finally {
      await idp.close();
    }
  });

  test('generateSigningKey makes private JWKs for every supported algorithm', async () => {
    for (const alg of ['RS256', 'PS256', 'ES256', 'EdDSA'] as const) {
      const key = await generateSigningKey(alg);
      assert.equal(key.alg, alg);
      assert.equal(key.use, 'sig');
      assert.ok(key.kid && key.d, alg);
    }
    const idp = await startDevIdp({ audience: 'https://gateway.example/', signingKeys: [await generateSigningKey('EdDSA')] });
    try {
      assert.equal(idp.resource, 'https://gateway.example/', 'a URI audience is its own resource indicator');
      const token = await idp.clientCredentialsToken();
      assert.equal(decodeProtectedHeader(token).alg, 'EdDSA');
      assert.equal(decodeJwt(token).aud, 'https://gateway.example/');
    } finally {
      await idp.close();
    }
  });
});

describe('dev IdP options', () => {
  test('custom users, service clients and console redirect URIs', async () => {
    const consoleRedirect = 'http://127.0.0.1:8080/auth/callback';
    const idp = await startDevIdp({
      audience: AUDIENCE,
      users: [{ id: 'erin', password: 'open-sesame', email: 'erin@example.com', name: 'Erin Ek', groups: ['research'] }],
      serviceClients: [{ clientId: 'nightly-eval', clientSecret: 's3cret', groups: [] }],
      consoleRedirectUris: [consoleRedirect],
    });
    try {
      const service = decodeJwt(await idp.clientCredentialsToken());
      assert.equal(service.sub, 'nightly-eval');
      assert.deepEqual(service.groups, [], 'no groups: an empty claim');
      await assert.rejects(idp.clientCredentialsToken('batch-summariser'), /no service client/);

      await assert.rejects(idp.loginAs('alice'), /Wrong username or password/);
      assert.deepEqual(decodeJwt((await idp.loginAs('erin', 'open-sesame')).accessToken).groups, ['research']);

      const authorization = new URL(`${idp.issuer}/auth`);
      authorization.search = new URLSearchParams({
        client_id: CONSOLE_CLIENT_ID,
        response_type: 'code',
        redirect_uri: consoleRedirect,
        scope: 'openid',
      }).toString();
      const callback = await idp.completeAuthorization(authorization, 'erin', 'open-sesame');
      assert.equal(`${callback.origin}${callback.pathname}`, consoleRedirect);
      assert.ok(callback.searchParams.get('code'));
    } finally {
      await idp.close();
    }
  });
});
