// Token verification against a real OpenID provider, attacked the way an
// attacker would: every forged or out-of-policy token is refused with 401,
// a WWW-Authenticate challenge and its own stable code.
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { SignJWT, importJWK, type JWK } from 'jose';
import { generateSigningKey } from '../../src/dev/idp.js';
import { errorOf, postJson, startHarness, type Harness } from '../helpers/harness.js';

const chat = { model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] };

describe('bearer token verification', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  /** Signs claims with one of the IdP's own keys (or another key), defaulting to a valid token for alice. */
  async function forge(
    claims: Record<string, unknown> = {},
    { key = h.idp.signingKeys[0]!, alg = 'RS256', kid }: { key?: JWK; alg?: string; kid?: string } = {},
  ): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const payload = { iss: h.idp.issuer, aud: 'modelgate', sub: 'alice', groups: ['engineering'], iat: now, exp: now + 300, ...claims };
    for (const [k, v] of Object.entries(payload)) if (v === undefined) delete (payload as Record<string, unknown>)[k];
    return new SignJWT(payload).setProtectedHeader({ alg, kid: kid ?? key.kid }).sign(await importJWK(key, alg));
  }

  async function expectRefusal(token: string | undefined, code: string, authorization?: string): Promise<string> {
    const response = await postJson(`${h.url}/v1/chat/completions`, undefined, chat, {
      ...(authorization ? { authorization } : token ? { authorization: `Bearer ${token}` } : {}),
    });
    assert.equal(response.status, 401, `expected 401 for ${code}`);
    const challenge = response.headers.get('www-authenticate') ?? '';
    assert.match(challenge, /^Bearer realm="modelgate"/);
    const error = await errorOf(response);
    assert.equal(error.code, code);
    assert.equal(error.type, 'authentication_error');
    if (code !== 'token_missing') assert.match(challenge, /error="invalid_token"/);
    return error.message;
  }

  async function expectAccepted(token: string): Promise<void> {
    const response = await postJson(`${h.url}/v1/chat/completions`, token, chat);
    assert.equal(response.status, 200, await response.clone().text());
    await response.body?.cancel();
  }

  test('a token from a real user login is accepted', async () => {
    await expectAccepted(await h.userToken('alice'));
  });

  test('a client-credentials token for a service account is accepted', async () => {
    await expectAccepted(await h.serviceToken('ci-bot'));
  });

  test('a token forged with the real key and valid claims is accepted (control)', async () => {
    await expectAccepted(await forge());
  });

  test('missing token', async () => {
    const message = await expectRefusal(undefined, 'token_missing');
    assert.match(message, /Authorization: Bearer/);
  });

  test('non-bearer scheme', async () => {
    await expectRefusal(undefined, 'token_malformed', 'Basic YWxpY2U6cGFzc3dvcmQ=');
  });

  test('garbage token', async () => {
    await expectRefusal('not-a-jwt', 'token_malformed');
  });

  test('expired token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const message = await expectRefusal(await forge({ iat: now - 900, exp: now - 300 }), 'token_expired');
    assert.match(message, /expired/);
  });

  test('not-yet-valid token (nbf in the future)', async () => {
    await expectRefusal(await forge({ nbf: Math.floor(Date.now() / 1000) + 600 }), 'token_not_yet_valid');
  });

  test('token issued in the future', async () => {
    const now = Math.floor(Date.now() / 1000);
    await expectRefusal(await forge({ iat: now + 600, exp: now + 900 }), 'token_issued_in_future');
  });

  test('wrong issuer', async () => {
    const evil = await generateSigningKey('RS256');
    const message = await expectRefusal(await forge({ iss: 'https://evil.example.com' }, { key: evil }), 'token_issuer_untrusted');
    assert.match(message, /evil\.example\.com/);
  });

  test('trusted issuer claimed, but signed by an attacker key with the real kid', async () => {
    const evil = await generateSigningKey('RS256');
    await expectRefusal(await forge({}, { key: evil, kid: h.idp.signingKeys[0]!.kid }), 'token_signature_invalid');
  });

  test('wrong audience', async () => {
    const message = await expectRefusal(await forge({ aud: 'some-other-api' }), 'token_audience_invalid');
    assert.match(message, /"modelgate"/);
  });

  test('unsigned token (alg: none)', async () => {
    const encode = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const token = `${encode({ alg: 'none', typ: 'JWT' })}.${encode({ iss: h.idp.issuer, aud: 'modelgate', sub: 'alice', groups: ['engineering'], iat: now, exp: now + 300 })}.`;
    const message = await expectRefusal(token, 'token_algorithm_forbidden');
    assert.match(message, /"none"/);
  });

  test('key confusion: HS256 signed with the public key as the HMAC secret', async () => {
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicJwk } = h.idp.signingKeys[0]!;
    const publicPem = createPublicKey({ key: publicJwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ iss: h.idp.issuer, aud: 'modelgate', sub: 'alice', groups: ['engineering'], iat: now, exp: now + 300 })
      .setProtectedHeader({ alg: 'HS256', kid: publicJwk.kid! })
      .sign(new TextEncoder().encode(String(publicPem)));
    await expectRefusal(token, 'token_algorithm_forbidden');
  });

  test('unknown kid', async () => {
    const stranger = await generateSigningKey('RS256');
    const message = await expectRefusal(await forge({}, { key: stranger }), 'token_key_unknown');
    assert.match(message, /kid/);
  });

  test('tampered payload', async () => {
    const [header, , signature] = (await h.userToken('bob')).split('.');
    const now = Math.floor(Date.now() / 1000);
    const payload = Buffer.from(JSON.stringify({ iss: h.idp.issuer, aud: 'modelgate', sub: 'bob', groups: ['engineering'], iat: now, exp: now + 300 })).toString('base64url');
    await expectRefusal(`${header}.${payload}.${signature}`, 'token_signature_invalid');
  });

  test('lifetime longer than the maximum', async () => {
    const now = Math.floor(Date.now() / 1000);
    const message = await expectRefusal(await forge({ iat: now, exp: now + 24 * 3600 }), 'token_lifetime_too_long');
    assert.match(message, /short-lived/);
  });

  test('token without iat cannot prove it is short-lived', async () => {
    await expectRefusal(await forge({ iat: undefined }), 'token_claim_missing');
  });

  test('a person in no group (real login, empty groups claim) is a person: 403 naming what they lack, and whoami shows them', async () => {
    const dave = await h.userToken('dave');
    const response = await postJson(`${h.url}/v1/chat/completions`, dave, chat);
    assert.equal(response.status, 403);
    const error = await errorOf(response);
    assert.equal(error.code, 'model_forbidden');
    assert.match(error.message, /\(dave, groups: none\)/);
    assert.match(error.message, /granted to members of engineering or ci, and you are in none of them/);
    const whoami = await fetch(`${h.url}/auth/whoami`, { headers: { authorization: `Bearer ${dave}` } });
    assert.equal(whoami.status, 200);
    const me = (await whoami.json()) as { subject: string; groups: string[]; models: unknown[] };
    assert.equal(me.subject, 'dave');
    assert.deepEqual(me.groups, []);
    assert.deepEqual(me.models, []);
  });

  test('a token without the groups claim at all, from an issuer that requires it: 401 token_groups_missing', async () => {
    const message = await expectRefusal(await forge({ groups: undefined }), 'token_groups_missing');
    assert.match(message, /require_groups/);
  });

  test('groups from a nested claim path, as a single string', async () => {
    const nested = await startHarness({
      configure: (input) => {
        input.identity!.issuers[0]!.claims = { groups: 'realm_access.roles' };
      },
    });
    try {
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({ iss: nested.idp.issuer, aud: 'modelgate', sub: 'erin', realm_access: { roles: 'engineering' }, iat: now, exp: now + 300 })
        .setProtectedHeader({ alg: 'RS256', kid: nested.idp.signingKeys[0]!.kid! })
        .sign(await importJWK(nested.idp.signingKeys[0]!, 'RS256'));
      const response = await postJson(`${nested.url}/v1/chat/completions`, token, chat);
      assert.equal(response.status, 200);
      await response.body?.cancel();
    } finally {
      await nested.close();
    }
  });

  test('unknown kids refetch the JWKS at a bounded rate', async () => {
    const fetches = async () => {
      const line = /modelgate_jwks_fetches_total\{[^}]*\} (\d+)/.exec(await (await fetch(`${h.url}/metrics`)).text());
      assert.ok(line, 'modelgate_jwks_fetches_total is exported');
      return Number(line[1]);
    };
    const before = await fetches();
    assert.ok(before >= 1, 'the JWKS fetch that verified the earlier tokens was counted');
    for (let i = 0; i < 20; i++) await expectRefusal(await forge({}, { key: await generateSigningKey('ES256'), alg: 'ES256' }), 'token_key_unknown');
    assert.ok((await fetches()) - before <= 1, 'twenty unknown kids caused at most one refetch within the cooldown');
  });
});

describe('signing key rotation at the IdP', () => {
  test('a new kid is fetched, and the old key keeps working until it is removed', async () => {
    const h = await startHarness({
      configure: (input) => {
        input.identity!.issuers[0]!.jwks = { refetch_cooldown: '100ms' };
      },
    });
    const cooldown = () => new Promise((r) => setTimeout(r, 150));
    try {
      const oldKey = h.idp.signingKeys[0]!;
      const oldToken = await h.idp.clientCredentialsToken('ci-bot');
      const newKey = await generateSigningKey('RS256');
      await h.idp.rotateSigningKeys([newKey, oldKey]);
      await cooldown();

      const rotatedToken = await h.idp.clientCredentialsToken('ci-bot');
      const header = JSON.parse(Buffer.from(rotatedToken.split('.')[0]!, 'base64url').toString()) as { kid: string };
      assert.equal(header.kid, newKey.kid);
      const call = (token: string) => postJson(`${h.url}/v1/chat/completions`, token, chat);
      assert.equal((await call(rotatedToken)).status, 200, 'unknown kid → JWKS refetched → accepted');
      assert.equal((await call(oldToken)).status, 200, 'the old key is still published');

      // Retire the old key. An unknown kid (here a stranger's) triggers the next refetch, after which old tokens fail.
      await h.idp.rotateSigningKeys([newKey]);
      await cooldown();
      const stranger = await generateSigningKey('RS256');
      const now = Math.floor(Date.now() / 1000);
      const strangerToken = await new SignJWT({ iss: h.idp.issuer, aud: 'modelgate', sub: 'x', groups: ['engineering'], iat: now, exp: now + 60 })
        .setProtectedHeader({ alg: 'RS256', kid: stranger.kid! })
        .sign(await importJWK(stranger, 'RS256'));
      assert.equal((await call(strangerToken)).status, 401);
      const refused = await call(oldToken);
      assert.equal(refused.status, 401);
      assert.equal((await errorOf(refused)).code, 'token_key_unknown');
    } finally {
      await h.close();
    }
  });
});

describe('identity provider outage', () => {
  test('fails closed with 503 when the IdP cannot be reached for keys', async () => {
    const first = await startHarness();
    const token = await first.userToken('alice');
    const deadIssuer = first.idp.issuer;
    await first.close();

    // A fresh gateway that trusts only the now-dead issuer has no cached keys.
    const cold = await startHarness({
      configure: (input) => {
        input.identity!.issuers[0]!.issuer = deadIssuer;
      },
    });
    try {
      const response = await postJson(`${cold.url}/v1/chat/completions`, token, chat);
      assert.equal(response.status, 503);
      assert.equal((await errorOf(response)).code, 'idp_unavailable');
      assert.equal(cold.model.received.length, 0, 'nothing reached the model');
      const ready = await fetch(`${cold.url}/readyz`);
      assert.equal(ready.status, 503);
    } finally {
      await cold.close();
    }
  });
});
