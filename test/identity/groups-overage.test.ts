// Microsoft Entra ID's groups overage: a user in too many groups gets a
// pointer to Microsoft Graph instead of a groups claim. The gateway must not
// read that as "no groups"; it refuses with a code that names the problem.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { importJWK, SignJWT } from 'jose';
import { errorOf, postJson, startHarness, type Harness } from '../helpers/harness.js';

describe('groups overage', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      configure(input) {
        input.identity!.issuers[0]!.require_groups = false;
      },
    });
  });
  after(() => h.close());

  async function tokenWith(claims: Record<string, unknown>): Promise<string> {
    const key = h.idp.signingKeys[0]!;
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: key.kid! })
      .setIssuer(h.idp.issuer).setAudience('modelgate').setSubject('erin').setIssuedAt(now).setExpirationTime(now + 300)
      .sign(await importJWK(key, 'RS256'));
  }

  for (const [name, claims] of [
    ['_claim_names pointing at Graph', { _claim_names: { groups: 'src1' }, _claim_sources: { src1: { endpoint: 'https://graph.microsoft.com/v1.0/users/x/getMemberObjects' } } }],
    ['hasgroups: true', { hasgroups: true }],
  ] as const) {
    test(`${name} is refused even though groups are not required`, async () => {
      const response = await postJson(`${h.url}/v1/chat/completions`, await tokenWith(claims), { model: 'demo-chat', messages: [] });
      assert.equal(response.status, 401);
      const error = await errorOf(response);
      assert.equal(error.code, 'token_groups_overage');
      assert.match(error.message, /app roles/);
    });
  }

  test('a token with its groups present is read as usual', async () => {
    const response = await fetch(`${h.url}/auth/whoami`, { headers: { authorization: `Bearer ${await tokenWith({ groups: ['engineering'], hasgroups: false })}` } });
    assert.equal(response.status, 200);
    assert.deepEqual(((await response.json()) as { groups: string[] }).groups, ['engineering']);
  });
});
