// Gateway-issued tokens: verified like any issuer's, with keys that rotate
// on schedule (published before they sign, kept until their tokens expire),
// revocable per subject or all at once, shared by instances through the
// identity state; and identity assertions that reach the model server but
// cannot be replayed to the gateway.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, SignJWT, importJWK, type JWK } from 'jose';
import { revokeTokensCommand } from '../../src/cli/revoke-tokens.js';
import { gatewayTokens as gatewayTokensSchema } from '../../src/config/identity-schema.js';
import { generateSigningKey } from '../../src/dev/idp.js';
import { GatewaySigningKeys } from '../../src/identity/signing-keys.js';
import { MemoryIdentityState } from '../../src/identity/state/memory-state.js';
import { errorOf, postJson, startHarness, type Harness, type HarnessOptions } from '../helpers/harness.js';

const chat = { model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] };
const MINUTE = 60_000;
const alice = { subject: 'alice@corp', email: 'alice@corp.example', groups: ['engineering'], origin: 'https://idp.corp.example/saml' };

describe('gateway signing keys rotate on schedule', () => {
  const config = { lifetime: 60 * MINUTE, ...gatewayTokensSchema.parse({ key_rotation: '60m', key_prepublish: '10m', sync_interval: '1s' }) };
  const retention = 65 * MINUTE;

  test('first key at once; next key published 10 minutes early; old key kept until its tokens expire', async () => {
    let now = 1_000_000_000_000;
    const keys = new GatewaySigningKeys(new MemoryIdentityState(), config, retention, () => now);
    const published = async () => (await keys.publicJwks()).keys.map((k) => k.kid);

    const first = await keys.current();
    assert.deepEqual(await published(), [first.kid]);

    now += 49 * MINUTE;
    assert.equal((await keys.current()).kid, first.kid);
    assert.equal((await published()).length, 1, 'nothing new before the pre-publication window');

    now += 1 * MINUTE; // 50 minutes: 10 minutes before rotation
    assert.equal((await keys.current()).kid, first.kid, 'the first key still signs');
    const [, next] = await published();
    assert.ok(next, 'the next key is published ahead');

    now += 10 * MINUTE; // rotation time
    assert.equal((await keys.current()).kid, next);
    assert.deepEqual(await published(), [first.kid, next], 'the old key stays for tokens it signed');

    now += retention; // every token the first key signed has expired
    await keys.current();
    assert.ok(!(await published()).includes(first.kid), 'the old key is gone');
  });

  test('two instances rotating at the same moment agree on one signing key', async () => {
    let now = 2_000_000_000_000;
    const shared = new MemoryIdentityState();
    const a = new GatewaySigningKeys(shared, config, retention, () => now);
    const b = new GatewaySigningKeys(shared, config, retention, () => now);
    const [ka, kb] = await Promise.all([a.current(), b.current()]);
    assert.equal(ka.kid, kb.kid);
    now += 50 * MINUTE;
    await Promise.all([a.current(), b.current()]);
    assert.equal((await shared.signingKeys()).length, 2, 'one next key, however many instances publish it');
    now += 10 * MINUTE;
    const [ra, rb] = await Promise.all([a.current(), b.current()]);
    assert.equal(ra.kid, rb.kid);
    assert.notEqual(ra.kid, ka.kid);
  });

  test('a forged kid reloads the store at a bounded rate', async () => {
    let now = 3_000_000_000_000;
    let reads = 0;
    const state = new MemoryIdentityState();
    const counting = Object.assign(Object.create(state) as MemoryIdentityState, {
      signingKeys: async () => {
        reads += 1;
        return state.signingKeys();
      },
    });
    const keys = new GatewaySigningKeys(counting, config, retention, () => now);
    await keys.current();
    const resolve = keys.resolver();
    const before = reads;
    for (let i = 0; i < 20; i++) {
      await assert.rejects(async () => resolve({ alg: 'ES256', kid: `forged-${i}` }, {} as never), {
        code: 'ERR_JWKS_NO_MATCHING_KEY',
      });
    }
    assert.ok(reads - before <= 1, `twenty forged kids caused ${reads - before} store reads`);
    now += 1_000;
    for (let i = 0; i < 20; i++) await assert.rejects(async () => resolve({ alg: 'ES256', kid: `forged-late-${i}` }, {} as never));
    assert.ok(reads - before <= 3, 'a second later: one more forced reload, plus the regular sync');
  });
});

describe('gateway-issued tokens through the gateway', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      configure(input) {
        input.identity!.gateway_tokens = { lifetime: '10m', sync_interval: '100ms' };
        input.connections[0]!.identity_assertion = { header: 'x-caller-identity', lifetime: '2m' };
      },
    });
  });
  after(() => h.close());

  const tokens = () => h.gateway.services.identity.gatewayTokens;
  const call = (token: string) => postJson(`${h.url}/v1/chat/completions`, token, chat);
  async function expectStatus(token: string, status: number, code?: string): Promise<void> {
    const response = await call(token);
    assert.equal(response.status, status, await response.clone().text());
    if (code) assert.equal((await errorOf(response)).code, code);
    else await response.body?.cancel();
  }
  const nextSecond = () => new Promise((r) => setTimeout(r, 1_050 - (Date.now() % 1000)));

  test('a gateway token is accepted, and verifies against /.well-known/jwks.json like any JWT', async () => {
    const { token, expiresAt } = await tokens().mint(alice);
    await expectStatus(token, 200);
    const published = await fetch(`${h.url}/.well-known/jwks.json`);
    assert.equal(published.headers.get('cache-control'), 'max-age=60', 'verifiers may cache the key set briefly');
    const jwks = (await published.json()) as { keys: JWK[] };
    assert.ok(jwks.keys.length >= 1 && jwks.keys.every((k) => k.d === undefined), 'public keys only');
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: h.url, audience: h.url, typ: 'at+jwt' });
    assert.equal(payload.sub, 'alice@corp');
    assert.deepEqual(payload.groups, ['engineering']);
    assert.equal(payload.idp, alice.origin);
    assert.equal(protectedHeader.alg, 'ES256');
    assert.equal(expiresAt - payload.iat!, 600, 'lifetime from gateway_tokens.lifetime');

    const whoami = await fetch(`${h.url}/auth/whoami`, { headers: { authorization: `Bearer ${token}` } });
    const me = (await whoami.json()) as { subject: string; method: string; models: Array<{ model: string }> };
    assert.equal(me.subject, 'alice@corp');
    assert.equal(me.method, 'gateway');
    assert.deepEqual(me.models.map((m) => m.model).sort(), ['demo-chat', 'demo-embed']);
  });

  test('a token claiming the gateway as issuer but signed with another key is refused', async () => {
    const stranger = await generateSigningKey('ES256');
    const now = Math.floor(Date.now() / 1000);
    const forged = await new SignJWT({ groups: ['engineering'] })
      .setProtectedHeader({ alg: 'ES256', kid: stranger.kid!, typ: 'at+jwt' })
      .setIssuer(h.url).setAudience(h.url).setSubject('mallory').setIssuedAt(now).setExpirationTime(now + 60)
      .sign(await importJWK(stranger, 'ES256'));
    await expectStatus(forged, 401, 'token_key_unknown');
    const realKid = decodeProtectedHeader((await tokens().mint(alice)).token).kid!;
    const wrongKey = await new SignJWT({ groups: ['engineering'] })
      .setProtectedHeader({ alg: 'ES256', kid: realKid, typ: 'at+jwt' })
      .setIssuer(h.url).setAudience(h.url).setSubject('mallory').setIssuedAt(now).setExpirationTime(now + 60)
      .sign(await importJWK(stranger, 'ES256'));
    await expectStatus(wrongKey, 401, 'token_signature_invalid');
  });

  test('rotation: new tokens use the new key, tokens signed before it stay valid', async () => {
    const old = await tokens().mint(alice);
    const oldKid = decodeProtectedHeader(old.token).kid;
    await h.gateway.services.identity.gatewayTokens.rotateKeysNow();
    const fresh = await tokens().mint(alice);
    assert.notEqual(decodeProtectedHeader(fresh.token).kid, oldKid);
    await expectStatus(old.token, 200);
    await expectStatus(fresh.token, 200);
    const published = ((await (await fetch(`${h.url}/.well-known/jwks.json`)).json()) as { keys: JWK[] }).keys.map((k) => k.kid);
    assert.ok(published.includes(oldKid) && published.includes(decodeProtectedHeader(fresh.token).kid));
  });

  test('revoking a subject refuses its tokens and no one else’s; new tokens work again', async () => {
    const aliceToken = (await tokens().mint(alice)).token;
    const bobToken = (await tokens().mint({ ...alice, subject: 'bob@corp' })).token;
    await tokens().revokeSubject('alice@corp');
    await expectStatus(aliceToken, 401, 'token_revoked');
    await expectStatus(bobToken, 200);
    await nextSecond();
    await expectStatus((await tokens().mint(alice)).token, 200);
  });

  test('revoking all refuses every token issued so far', async () => {
    const a = (await tokens().mint(alice)).token;
    const b = (await tokens().mint({ ...alice, subject: 'bob@corp' })).token;
    await tokens().revokeAll();
    await expectStatus(a, 401, 'token_revoked');
    await expectStatus(b, 401, 'token_revoked');
    await nextSecond();
    await expectStatus((await tokens().mint(alice)).token, 200);
  });

  test('the model server gets a signed identity assertion it can verify, and it is useless as a bearer token', async () => {
    const userToken = await h.userToken('alice');
    const response = await call(userToken);
    assert.equal(response.status, 200);
    const requestId = response.headers.get('x-request-id');
    await response.body?.cancel();
    const received = h.model.received.at(-1)!;
    const assertion = received.headers['x-caller-identity'];
    assert.equal(typeof assertion, 'string');
    const jwks = createLocalJWKSet((await (await fetch(`${h.url}/.well-known/jwks.json`)).json()) as { keys: JWK[] });
    const { payload, protectedHeader } = await jwtVerify(assertion as string, jwks, { issuer: h.url, audience: 'demo' });
    assert.equal(protectedHeader.typ, 'modelgate-identity+jwt');
    assert.equal(payload.sub, 'alice');
    assert.deepEqual(payload.groups, ['engineering', 'ml-platform']);
    assert.equal(payload.request_id, requestId);
    assert.equal(payload.auth_iss, h.idp.issuer);
    assert.ok(payload.exp! - payload.iat! <= 120);
    assert.equal(received.headers.authorization, 'Bearer demo-upstream-key', 'the connection credential is still what authenticates the gateway');

    // A model server (or anyone who reads its logs) replays the assertion to the gateway.
    const replay = await call(assertion as string);
    assert.equal(replay.status, 401);
    assert.match((await errorOf(replay)).code, /^token_(type|audience)_invalid$/);
  });
});

describe('gateway tokens shared by two instances (SQLite)', () => {
  test('a token minted by one instance works on the other; a revocation on one reaches the other', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'modelgate-fleet-'));
    const path = join(dir, 'identity.db');
    const publicUrl = 'https://llm.example.com';
    const configure: NonNullable<HarnessOptions['configure']> = (input) => {
      input.server = { ...input.server, public_url: publicUrl };
      input.identity!.state = { store: 'sqlite', path };
      input.identity!.gateway_tokens = { sync_interval: '100ms' };
    };
    const a = await startHarness({ configure });
    const b = await startHarness({ configure });
    try {
      const minted = await a.gateway.services.identity.gatewayTokens.mint(alice);
      const onB = await postJson(`${b.url}/v1/chat/completions`, minted.token, chat);
      assert.equal(onB.status, 200, await onB.clone().text());
      await onB.body?.cancel();
      await a.gateway.services.identity.gatewayTokens.revokeSubject('alice@corp');
      await new Promise((r) => setTimeout(r, 150));
      const refused = await postJson(`${b.url}/v1/chat/completions`, minted.token, chat);
      assert.equal(refused.status, 401);
      assert.equal((await errorOf(refused)).code, 'token_revoked');
    } finally {
      await Promise.all([a.close(), b.close()]);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('modelgate revoke-tokens', () => {
  test('an operator revokes every gateway token, then replaces the signing keys, through the shared state', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'modelgate-revoke-'));
    const path = join(dir, 'identity.db');
    const h = await startHarness({
      configure(input) {
        input.identity!.state = { store: 'sqlite', path };
        input.identity!.gateway_tokens = { sync_interval: '100ms' };
      },
    });
    try {
      const minted = await h.gateway.services.identity.gatewayTokens.mint(alice);
      const configFile = join(dir, 'modelgate.yaml');
      await writeFile(
        configFile,
        [
          'identity:',
          `  issuers: [{ issuer: "${h.idp.issuer}", audience: modelgate }]`,
          `  state: { store: sqlite, path: "${path}" }`,
          'connections: [{ name: demo, url: "http://127.0.0.1:1", models: [{ name: demo-chat }] }]',
        ].join('\n'),
      );
      assert.equal(await revokeTokensCommand.run({ config: configFile, all: true }, []), 0);
      await new Promise((r) => setTimeout(r, 150));
      const refused = await postJson(`${h.url}/v1/chat/completions`, minted.token, chat);
      assert.equal((await errorOf(refused)).code, 'token_revoked');
      const userToken = await postJson(`${h.url}/v1/chat/completions`, await h.userToken('alice'), chat);
      assert.equal(userToken.status, 200, 'IdP tokens are not gateway tokens');
      await userToken.body?.cancel();

      // A leaked key mints tokens with a current `iat`, which revocation cannot catch: replace the keys.
      await new Promise((r) => setTimeout(r, 1_050 - (Date.now() % 1000)));
      const signedByOldKey = (await h.gateway.services.identity.gatewayTokens.mint(alice)).token;
      assert.equal((await postJson(`${h.url}/v1/chat/completions`, signedByOldKey, chat)).status, 200);
      assert.equal(await revokeTokensCommand.run({ config: configFile, 'replace-keys': true }, []), 0);
      await new Promise((r) => setTimeout(r, 150));
      const afterReplace = await postJson(`${h.url}/v1/chat/completions`, signedByOldKey, chat);
      assert.equal((await errorOf(afterReplace)).code, 'token_key_unknown');
      const fresh = await postJson(`${h.url}/v1/chat/completions`, (await h.gateway.services.identity.gatewayTokens.mint(alice)).token, chat);
      assert.equal(fresh.status, 200, 'the new key signs and verifies');
      await fresh.body?.cancel();
    } finally {
      await h.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
