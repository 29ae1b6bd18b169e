// An ID token is proof of a sign-in for a client, not a credential for an
// API. When the IdP gives ID tokens an audience the gateway accepts (the CLI
// client's ID here), replaying one as a bearer token must still fail.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CLI_CLIENT_ID } from '../../src/dev/idp.js';
import { startHarness, type Harness } from '../helpers/harness.js';

type TokenType = 'auto' | 'at+jwt' | 'any';

for (const tokenType of [undefined, 'at+jwt', 'any'] as Array<TokenType | undefined>) {
  describe(`ID tokens as access tokens, token_type: ${tokenType ?? 'auto (default)'}`, () => {
    let h: Harness;
    let tokens: { accessToken: string; idToken: string };
    before(async () => {
      h = await startHarness({
        configure(input) {
          const issuer = input.identity!.issuers[0]!;
          // The audience matches the ID token's too: only its type can tell them apart.
          issuer.audience = [...[issuer.audience].flat(), CLI_CLIENT_ID];
          issuer.require_groups = false;
          if (tokenType) issuer.token_type = tokenType;
        },
      });
      tokens = await h.idp.loginAs('alice');
    });
    after(() => h.close());

    const models = (token: string) => fetch(`${h.url}/v1/models`, { headers: { authorization: `Bearer ${token}` } });

    test('the access token (typ at+jwt) is accepted', async () => {
      const response = await models(tokens.accessToken);
      assert.equal(response.status, 200);
      await response.body?.cancel();
    });

    if (tokenType === 'any') {
      test('with the check off, the ID token passes (the documented setting for IdPs whose ID token is the bearer)', async () => {
        const response = await models(tokens.idToken);
        assert.equal(response.status, 200);
        await response.body?.cancel();
      });
    } else {
      test('the ID token, signed by the same IdP with an accepted audience, is refused', async () => {
        const response = await models(tokens.idToken);
        assert.equal(response.status, 401);
        const error = ((await response.json()) as { error: { code: string } }).error;
        assert.equal(error.code, 'token_type_invalid');
      });
    }
  });
}
