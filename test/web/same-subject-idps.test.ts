// Attack: three identity providers hand out the same subject, "alice", to
// three different people. Two sign in through the browser (OIDC at one real
// oidc-provider, SAML at another IdP) and call models with the gateway
// token that sign-in gives them; the third calls with her own IdP's token
// (a second real oidc-provider). Both gateway tokens are signed by the
// gateway, so if sessions were recorded under the token's issuer, the two
// browser users would share one identity (gateway, "alice") and see each
// other's sessions and usage. Sessions are recorded under the IdP that
// vouched for the person; each alice sees only her own.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DEV_AUDIENCE } from '../../src/dev/dev-config.js';
import { startDevIdp, type DevIdp } from '../../src/dev/idp.js';
import type { UsageReport } from '../../src/usage/report.js';
import { devConsoleOidc, postJson, startHarness, type Harness } from '../helpers/harness.js';
import { TestBrowser } from './browser.js';
import { TestSamlIdp } from './saml-idp.js';

interface SessionItem {
  id: string;
  issuer: string;
  subject: string;
}

describe('three IdPs, one subject value: each person sees only their own sessions and usage', () => {
  let h: Harness;
  let saml: TestSamlIdp;
  let other: DevIdp;
  /** Each alice's token and the session id of her one call. */
  const alices = new Map<'oidc-browser' | 'saml-browser' | 'other-idp', { token: string; issuer: string; session?: string }>();

  before(async () => {
    saml = new TestSamlIdp();
    other = await startDevIdp({ audience: DEV_AUDIENCE });
    h = await startHarness({
      configure(input) {
        input.identity!.issuers.push({ issuer: other.issuer, audience: DEV_AUDIENCE });
        input.identity!.web = {
          session_lifetime: '15m',
          oidc: devConsoleOidc(input.identity!.issuers[0]!.issuer),
          saml: { idp_sso_url: saml.ssoUrl, idp_certificate: saml.certificate, idp_entity_id: saml.entityId, attributes: { groups: 'memberOf' } },
        };
      },
    });
    h.idp.setConsoleRedirectUris([`${h.url}/auth/oidc/callback`]);

    // Alice of the first IdP signs in through the browser with OIDC.
    const oidcBrowser = new TestBrowser();
    const start = await oidcBrowser.get(`${h.url}/auth/oidc/login?return_to=/ui`);
    assert.equal((await oidcBrowser.get(await h.idp.completeAuthorization(new URL(start.headers.get('location')!), 'alice'))).status, 303);
    alices.set('oidc-browser', { token: await gatewayToken(oidcBrowser), issuer: h.idp.issuer });

    // Another person, also "alice", signs in through the browser with SAML.
    const samlBrowser = new TestBrowser();
    const request = saml.parseRequest((await samlBrowser.get(`${h.url}/auth/saml/login?return_to=/ui`)).headers.get('location')!);
    const acs = await samlBrowser.post(
      `${h.url}/auth/saml/acs`,
      new URLSearchParams({ SAMLResponse: saml.respond(request, { nameId: 'alice', groups: ['engineering'] }, { groupsAttribute: 'memberOf' }), RelayState: request.relayState }),
    );
    assert.equal(acs.status, 303, await acs.clone().text());
    alices.set('saml-browser', { token: await gatewayToken(samlBrowser), issuer: saml.entityId });

    // A third "alice" calls with her own IdP's token.
    alices.set('other-idp', { token: (await other.loginAs('alice')).accessToken, issuer: other.issuer });

    for (const [who, alice] of alices) {
      const response = await postJson(`${h.url}/v1/chat/completions`, alice.token, { model: 'demo-chat', messages: [{ role: 'user', content: `hello from ${who}` }] });
      assert.equal(response.status, 200, await response.clone().text());
      await response.body?.cancel();
    }
    await h.gateway.services.audit!.recorder.flush();
    // Which session is whose, as an auditor sees it.
    const all = (await (await get('/v1/sessions?subject=alice', await h.userToken('carol'))).json()) as { data: SessionItem[] };
    for (const alice of alices.values()) alice.session = all.data.find((s) => s.issuer === alice.issuer)?.id;
  });
  after(async () => {
    await h.close();
    await other.close();
  });

  async function gatewayToken(browser: TestBrowser): Promise<string> {
    const { csrf_token } = (await (await browser.get(`${h.url}/auth/session`)).json()) as { csrf_token: string };
    const issued = await browser.post(`${h.url}/auth/token`, undefined, { 'x-csrf-token': csrf_token });
    assert.equal(issued.status, 200, await issued.clone().text());
    return ((await issued.json()) as { access_token: string }).access_token;
  }

  const get = (path: string, token: string): Promise<Response> => fetch(`${h.url}${path}`, { headers: { authorization: `Bearer ${token}` } });

  for (const who of ['oidc-browser', 'saml-browser', 'other-idp'] as const) {
    test(`${who}: the session list, each session, and usage show her own call only`, async () => {
      const me = alices.get(who)!;
      const list = (await (await get('/v1/sessions', me.token)).json()) as { scope: string; data: SessionItem[] };
      assert.equal(list.scope, 'own');
      assert.deepEqual(
        list.data.map((s) => [s.issuer, s.subject]),
        [[me.issuer, 'alice']],
        'one session, recorded under the IdP that vouched for her (not the gateway that signed a browser token)',
      );
      assert.equal((await get(`/v1/sessions/${me.session}`, me.token)).status, 200);
      for (const [otherWho, them] of alices) {
        if (otherWho === who) continue;
        assert.equal((await get(`/v1/sessions/${them.session}`, me.token)).status, 404, `${otherWho}'s session is not hers`);
      }

      const usage = (await (await get('/v1/usage?since=1h&by=subject', me.token)).json()) as UsageReport;
      assert.equal(usage.total.requests, 1, JSON.stringify(usage.rows));
    });
  }

  test('an auditor sees all three, told apart by issuer', () => {
    for (const [who, alice] of alices) assert.ok(alice.session, `${who}'s session is recorded under ${alice.issuer}`);
  });
});
