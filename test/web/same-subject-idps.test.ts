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
import { devConsoleOidc, errorOf, postJson, startHarness, type Harness, type HarnessOptions } from '../helpers/harness.js';
import { TestBrowser } from './browser.js';
import { TestSamlIdp } from './saml-idp.js';

interface SessionItem {
  id: string;
  issuer: string;
  subject: string;
}

type Alice = 'oidc-browser' | 'saml-browser' | 'other-idp';

interface ThreeAlices {
  h: Harness;
  /** Each alice's token, the IdP that vouches for her, and (once she has called) her session id. */
  alices: Map<Alice, { token: string; issuer: string; session?: string }>;
  close(): Promise<void>;
}

/** A gateway trusting three IdPs, each with its own "alice", signed in as described at the top. */
async function threeAlices(configure?: HarnessOptions['configure']): Promise<ThreeAlices> {
  const saml = new TestSamlIdp();
  const other = await startDevIdp({ audience: DEV_AUDIENCE });
  const h = await startHarness({
    configure(input) {
      input.identity!.issuers.push({ issuer: other.issuer, audience: DEV_AUDIENCE });
      input.identity!.web = {
        session_lifetime: '15m',
        oidc: devConsoleOidc(input.identity!.issuers[0]!.issuer),
        saml: { idp_sso_url: saml.ssoUrl, idp_certificate: saml.certificate, idp_entity_id: saml.entityId, attributes: { groups: 'memberOf' } },
      };
      configure?.(input);
    },
  });
  h.idp.setConsoleRedirectUris([`${h.url}/auth/oidc/callback`]);
  const alices: ThreeAlices['alices'] = new Map();

  // Alice of the first IdP signs in through the browser with OIDC.
  const oidcBrowser = new TestBrowser();
  const start = await oidcBrowser.get(`${h.url}/auth/oidc/login?return_to=/ui`);
  assert.equal((await oidcBrowser.get(await h.idp.completeAuthorization(new URL(start.headers.get('location')!), 'alice'))).status, 303);
  alices.set('oidc-browser', { token: await gatewayToken(h, oidcBrowser), issuer: h.idp.issuer });

  // Another person, also "alice", signs in through the browser with SAML.
  const samlBrowser = new TestBrowser();
  const request = saml.parseRequest((await samlBrowser.get(`${h.url}/auth/saml/login?return_to=/ui`)).headers.get('location')!);
  const acs = await samlBrowser.post(
    `${h.url}/auth/saml/acs`,
    new URLSearchParams({ SAMLResponse: saml.respond(request, { nameId: 'alice', groups: ['engineering'] }, { groupsAttribute: 'memberOf' }), RelayState: request.relayState }),
  );
  assert.equal(acs.status, 303, await acs.clone().text());
  alices.set('saml-browser', { token: await gatewayToken(h, samlBrowser), issuer: saml.entityId });

  // A third "alice" calls with her own IdP's token.
  alices.set('other-idp', { token: (await other.loginAs('alice')).accessToken, issuer: other.issuer });
  return {
    h,
    alices,
    async close() {
      await h.close();
      await other.close();
    },
  };
}

async function gatewayToken(h: Harness, browser: TestBrowser): Promise<string> {
  const { csrf_token } = (await (await browser.get(`${h.url}/auth/session`)).json()) as { csrf_token: string };
  const issued = await browser.post(`${h.url}/auth/token`, undefined, { 'x-csrf-token': csrf_token });
  assert.equal(issued.status, 200, await issued.clone().text());
  return ((await issued.json()) as { access_token: string }).access_token;
}

function chat(h: Harness, token: string, content: string): Promise<Response> {
  return postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content }] });
}

describe('three IdPs, one subject value: each person sees only their own sessions and usage', () => {
  let h: Harness;
  let setup: ThreeAlices;
  let alices: ThreeAlices['alices'];

  before(async () => {
    setup = await threeAlices();
    ({ h, alices } = setup);
    for (const [who, alice] of alices) {
      const response = await chat(h, alice.token, `hello from ${who}`);
      assert.equal(response.status, 200, await response.clone().text());
      await response.body?.cancel();
    }
    await h.gateway.services.audit!.recorder.flush();
    // Which session is whose, as an auditor sees it.
    const all = (await (await get('/v1/sessions?subject=alice', await h.userToken('carol'))).json()) as { data: SessionItem[] };
    for (const alice of alices.values()) alice.session = all.data.find((s) => s.issuer === alice.issuer)?.id;
  });
  after(async () => {
    await setup?.close();
  });

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

// The same three people and a connection none of them may use without a
// just-in-time grant. A grant belongs to the person who asked for it, by the
// same rule as sessions: the browser alice keeps hers when she calls with her
// IdP's own token, and the other two alices, whose browser tokens carry the
// same issuer and subject, do not get it.
describe('three IdPs, one subject value: an access grant opens the connection to its requester only', () => {
  let h: Harness;
  let setup: ThreeAlices;
  let alices: ThreeAlices['alices'];

  before(async () => {
    setup = await threeAlices((input) => {
      input.access = [{ groups: ['approvers'], connections: ['demo'] }];
    });
    ({ h, alices } = setup);
  });
  after(async () => {
    await setup?.close();
  });

  test('granted through her browser token, the OIDC alice uses it with her IdP token too; the SAML and other-IdP alices stay refused', async () => {
    for (const [who, alice] of alices) assert.equal((await chat(h, alice.token, 'before')).status, 403, `${who} has no access yet`);

    const requested = await postJson(`${h.url}/v1/access/requests`, alices.get('oidc-browser')!.token, { connection: 'demo', duration: '1h', reason: 'incident 7' });
    assert.equal(requested.status, 201, await requested.clone().text());
    const grant = (await requested.json()) as { id: string };
    const approved = await postJson(`${h.url}/v1/reviews/${grant.id}/approve`, await h.userToken('carol'), {});
    assert.equal(approved.status, 200, await approved.clone().text());

    assert.equal((await chat(h, alices.get('oidc-browser')!.token, 'with the grant')).status, 200, 'the requester uses her grant');
    assert.equal((await chat(h, await h.userToken('alice'), 'same alice, IdP token')).status, 200, 'the same person with her IdP token');
    for (const who of ['saml-browser', 'other-idp'] as const) {
      const refused = await chat(h, alices.get(who)!.token, 'not mine');
      assert.equal(refused.status, 403, `${who} is another person: the grant is not hers`);
      assert.equal((await errorOf(refused)).code, 'model_forbidden');
      const listed = (await (await fetch(`${h.url}/v1/access/grants`, { headers: { authorization: `Bearer ${alices.get(who)!.token}` } })).json()) as { data: unknown[] };
      assert.deepEqual(listed.data, [], `${who} lists no grant`);
    }
    const mine = (await (await fetch(`${h.url}/v1/access/grants`, { headers: { authorization: `Bearer ${await h.userToken('alice')}` } })).json()) as { data: Array<{ id: string }> };
    assert.deepEqual(mine.data.map((g) => g.id), [grant.id], 'her grant is listed for her IdP token');
  });
});
