// Federated workload identity: a CI system's own OIDC issuer (here a second,
// real oidc-provider standing in for GitHub Actions, its tokens carrying
// GitHub's claims) is trusted only through bindings whose claim conditions
// a token must meet; it then acts as the bound service identity.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { importJWK, SignJWT } from 'jose';
import { configSchema } from '../../src/config/schema.js';
import { startDevIdp, type DevIdp } from '../../src/dev/idp.js';
import { errorOf, postJson, startHarness, type Harness } from '../helpers/harness.js';

const chat = { model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] };
const CI_AUDIENCE = 'https://llm.example.com';

describe('workload identity with claim conditions', () => {
  let ci: DevIdp;
  let h: Harness;

  before(async () => {
    ci = await startDevIdp({ audience: CI_AUDIENCE });
    h = await startHarness({
      configure(input) {
        input.identity!.issuers.push({
          issuer: ci.issuer,
          audience: CI_AUDIENCE,
          group_prefix: 'ci:',
          workload: [
            {
              description: 'the summariser deploys from main or release',
              conditions: { repository: 'acme/summariser', ref: ['refs/heads/main', 'refs/heads/release'] },
              subject: 'svc:summariser',
              groups: ['engineering'],
            },
            {
              conditions: { repository_id: '4242', environment: 'production' },
              subject: 'svc:nightly-eval',
              groups: ['eval'],
            },
          ],
        });
        input.access!.push({ groups: ['ci:engineering'], connections: ['demo'] });
      },
    });
  });
  after(async () => {
    await h.close();
    await ci.close();
  });

  /** A token as GitHub Actions mints it for a job, signed by the CI issuer's real key. */
  async function ciToken(claims: Record<string, unknown>): Promise<string> {
    const key = ci.signingKeys[0]!;
    const now = Math.floor(Date.now() / 1000);
    const repository = String(claims.repository ?? 'acme/summariser');
    const ref = String(claims.ref ?? 'refs/heads/main');
    return new SignJWT({
      repository,
      repository_owner: repository.split('/')[0],
      repository_id: '1001',
      ref,
      workflow: 'deploy',
      run_id: '123456',
      ...claims,
    })
      .setProtectedHeader({ alg: key.alg!, kid: key.kid!, typ: 'JWT' })
      .setIssuer(ci.issuer)
      .setAudience(CI_AUDIENCE)
      .setSubject(`repo:${repository}:ref:${ref}`)
      .setIssuedAt(now)
      .setNotBefore(now - 5)
      .setExpirationTime(now + 300)
      .setJti(crypto.randomUUID())
      .sign(await importJWK(key, key.alg!));
  }

  async function refused(token: string): Promise<string> {
    const response = await postJson(`${h.url}/v1/chat/completions`, token, chat);
    assert.equal(response.status, 401);
    const error = await errorOf(response);
    assert.equal(error.code, 'token_workload_not_bound');
    return error.message;
  }

  test('the bound repository on main calls the model as its service identity', async () => {
    const token = await ciToken({});
    const response = await postJson(`${h.url}/v1/chat/completions`, token, chat);
    assert.equal(response.status, 200, await response.clone().text());
    await response.body?.cancel();

    const me = (await (await fetch(`${h.url}/auth/whoami`, { headers: { authorization: `Bearer ${token}` } })).json()) as Record<string, unknown>;
    assert.equal(me.subject, 'svc:summariser');
    assert.deepEqual(me.groups, ['ci:engineering']);
    assert.equal(me.method, 'workload');
    assert.equal(me.workload_subject, 'repo:acme/summariser:ref:refs/heads/main');
  });

  test('any one of several allowed values matches', async () => {
    const response = await postJson(`${h.url}/v1/chat/completions`, await ciToken({ ref: 'refs/heads/release' }), chat);
    assert.equal(response.status, 200);
    await response.body?.cancel();
  });

  test('another repository is refused, and the message shows what the token claimed', async () => {
    const message = await refused(await ciToken({ repository: 'mallory/fork' }));
    assert.match(message, /repository="mallory\/fork"/);
    assert.match(message, /ref="refs\/heads\/main"/);
  });

  test('the bound repository on another branch is refused', async () => {
    await refused(await ciToken({ ref: 'refs/heads/feature-x' }));
  });

  test('a fork whose name merely starts with the bound repository is refused (exact match only)', async () => {
    await refused(await ciToken({ repository: 'acme/summariser-evil' }));
  });

  test('a token missing a condition claim is refused', async () => {
    // The second binding needs environment=production, which this job does not claim.
    await refused(await ciToken({ repository: 'acme/evals', repository_id: '4242' }));
  });

  test('non-string claim values never match', async () => {
    await refused(await ciToken({ repository: ['acme/summariser'] }));
  });

  test('groups claimed by the token itself are ignored: only the binding grants groups', async () => {
    const token = await ciToken({ repository_id: '4242', environment: 'production', repository: 'acme/evals', groups: ['engineering'] });
    const me = (await (await fetch(`${h.url}/auth/whoami`, { headers: { authorization: `Bearer ${token}` } })).json()) as Record<string, unknown>;
    assert.equal(me.subject, 'svc:nightly-eval');
    assert.deepEqual(me.groups, ['ci:eval']);
    const response = await postJson(`${h.url}/v1/chat/completions`, token, chat);
    assert.equal(response.status, 403, 'eval is not allowed to chat');
    assert.equal((await errorOf(response)).code, 'model_forbidden');
  });

  test('a token for another audience is refused before any binding is looked at', async () => {
    const key = ci.signingKeys[0]!;
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ repository: 'acme/summariser', ref: 'refs/heads/main' })
      .setProtectedHeader({ alg: key.alg!, kid: key.kid! })
      .setIssuer(ci.issuer).setAudience('https://other.example.com').setSubject('repo:acme/summariser:ref:refs/heads/main')
      .setIssuedAt(now).setExpirationTime(now + 300)
      .sign(await importJWK(key, key.alg!));
    const response = await postJson(`${h.url}/v1/chat/completions`, token, chat);
    assert.equal((await errorOf(response)).code, 'token_audience_invalid');
  });

  test('service accounts: an OAuth client-credentials token from the IdP is a machine identity', async () => {
    const token = await h.idp.clientCredentialsToken('batch-summariser');
    const me = (await (await fetch(`${h.url}/auth/whoami`, { headers: { authorization: `Bearer ${token}` } })).json()) as Record<string, unknown>;
    assert.equal(me.subject, 'batch-summariser');
    assert.equal(me.client_id, 'batch-summariser');
    assert.equal(me.method, 'oidc');
    const response = await postJson(`${h.url}/v1/chat/completions`, token, chat);
    assert.equal(response.status, 200);
    await response.body?.cancel();
  });
});

describe('workload binding configuration', () => {
  const base = {
    identity: { issuers: [{ issuer: 'https://token.actions.githubusercontent.com', audience: 'x', workload: [] as unknown[] }] },
    connections: [{ name: 'c', url: 'http://127.0.0.1:1', models: [{ name: 'm' }] }],
  };
  test('a binding without conditions is a configuration error', () => {
    base.identity.issuers[0]!.workload = [{ conditions: {}, subject: 'svc' }];
    const result = configSchema.safeParse(base);
    assert.equal(result.success, false);
    assert.match(JSON.stringify(result.error?.issues), /at least one claim condition/);
  });
  test('wildcard-looking values are literal strings, not patterns', () => {
    base.identity.issuers[0]!.workload = [{ conditions: { repository: 'acme/*' }, subject: 'svc' }];
    const parsed = configSchema.parse(base);
    assert.deepEqual(parsed.identity.issuers[0]!.workload[0]!.conditions, { repository: ['acme/*'] });
  });
});
