// SAML 2.0 browser sign-in through @node-saml/node-saml, against an
// in-process IdP that produces real signed XML. The gateway runs as if
// behind TLS (https public URL), so its cookies are Secure and __Host-.
// Every attack the issue names is a test: an unsigned assertion, a
// signature over another element (XML signature wrapping), an expired
// assertion, the wrong audience, a replayed assertion; and a few more.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { errorOf, postJson, startHarness, type Harness } from '../helpers/harness.js';
import { TestBrowser } from './browser.js';
import { newSigningKey, TestSamlIdp, type AuthnRequest, type SamlUser } from './saml-idp.js';

const PUBLIC_URL = 'https://gateway.test.example';
const ACS = `${PUBLIC_URL}/auth/saml/acs`;
const SP_ENTITY_ID = `${PUBLIC_URL}/auth/saml/metadata`;
const SESSION_COOKIE = '__Host-modelgate_session';
const chat = { model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] };
const bob: SamlUser = { nameId: 'bob@corp.example', email: 'bob@corp.example', name: 'Bob B', groups: ['engineering', 'saml-users'] };

describe('SAML web login', () => {
  let idp: TestSamlIdp;
  let h: Harness;

  before(async () => {
    idp = new TestSamlIdp();
    h = await startHarness({
      configure(input) {
        input.server = { ...input.server, public_url: PUBLIC_URL };
        input.identity!.web = {
          saml: {
            idp_sso_url: idp.ssoUrl,
            idp_certificate: idp.certificate,
            idp_entity_id: idp.entityId,
            attributes: { groups: 'memberOf' },
          },
        };
      },
    });
  });
  after(() => h.close());

  async function begin(browser = new TestBrowser()): Promise<{ browser: TestBrowser; request: AuthnRequest }> {
    const start = await browser.get(`${h.url}/auth/saml/login?return_to=/console`);
    assert.equal(start.status, 302);
    const request = idp.parseRequest(start.headers.get('location')!);
    return { browser, request };
  }

  function post(browser: TestBrowser, samlResponse: string, relayState: string): Promise<Response> {
    return browser.post(`${h.url}/auth/saml/acs`, new URLSearchParams({ SAMLResponse: samlResponse, RelayState: relayState }));
  }

  async function expectRefused(response: Response, code: string | RegExp, browser: TestBrowser): Promise<void> {
    assert.equal(response.status, 400, await response.clone().text());
    const error = await errorOf(response);
    if (typeof code === 'string') assert.equal(error.code, code, error.message);
    else assert.match(error.code, code, error.message);
    assert.equal(browser.cookies.has(SESSION_COOKIE), false, 'no session');
  }

  test('the AuthnRequest names this SP and its ACS', async () => {
    const { request } = await begin();
    assert.equal(request.acsUrl, ACS);
    assert.equal(request.issuer, SP_ENTITY_ID);
    assert.match(request.id, /^_[0-9a-f]+$/);
  });

  test('a signed assertion signs the person in: Secure __Host- cookie, groups from the configured attribute', async () => {
    const { browser, request } = await begin();
    const response = await post(browser, idp.respond(request, bob, { groupsAttribute: 'memberOf' }), request.relayState);
    assert.equal(response.status, 303, await response.clone().text());
    assert.equal(response.headers.get('location'), '/console');
    const cookie = browser.setCookies.find((c) => c.startsWith(`${SESSION_COOKIE}=`))!;
    assert.match(cookie, /; Secure/);
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Lax/);
    assert.match(cookie, /Path=\//);
    const binding = browser.setCookies.find((c) => c.startsWith('__Host-modelgate_saml_login='))!;
    assert.match(binding, /SameSite=None; Secure/, 'the login binding must survive the IdP’s cross-site POST');

    const session = (await (await browser.get(`${h.url}/auth/session`)).json()) as Record<string, any>;
    assert.deepEqual(session.identity, {
      subject: 'bob@corp.example',
      groups: ['engineering', 'saml-users'],
      origin: idp.entityId,
      method: 'saml',
      email: 'bob@corp.example',
      name: 'Bob B',
    });

    // SAML users have no OIDC token: the gateway issues one, and it calls models.
    const issued = await browser.post(`${h.url}/auth/token`, undefined, { 'x-csrf-token': session.csrf_token });
    assert.equal(issued.status, 200);
    const { access_token } = (await issued.json()) as { access_token: string };
    const call = await postJson(`${h.url}/v1/chat/completions`, access_token, chat);
    assert.equal(call.status, 200);
    await call.body?.cancel();
    const me = (await (await fetch(`${h.url}/auth/whoami`, { headers: { authorization: `Bearer ${access_token}` } })).json()) as Record<string, unknown>;
    assert.equal(me.issuer, PUBLIC_URL);
    assert.equal(me.method, 'gateway');
  });

  test('a response signed as a whole (assertion inside unsigned) is refused: assertions must be signed', async () => {
    const { browser, request } = await begin();
    await expectRefused(await post(browser, idp.respond(request, bob, { sign: 'response' }), request.relayState), 'saml_signature_invalid', browser);
  });

  test('attack: unsigned assertion', async () => {
    const { browser, request } = await begin();
    await expectRefused(await post(browser, idp.respond(request, bob, { sign: 'none' }), request.relayState), 'saml_signature_invalid', browser);
  });

  test('attack: assertion signed by another key', async () => {
    const { browser, request } = await begin();
    const forged = idp.respond(request, bob, { signingKey: newSigningKey().privateKey });
    await expectRefused(await post(browser, forged, request.relayState), 'saml_signature_invalid', browser);
  });

  test('attack: tampered attribute after signing', async () => {
    const { browser, request } = await begin();
    const xml = idp.responseXml(request, bob, { groupsAttribute: 'memberOf' }).replace('>saml-users<', '>admins<');
    await expectRefused(await post(browser, Buffer.from(xml).toString('base64'), request.relayState), 'saml_signature_invalid', browser);
  });

  describe('attack: XML signature wrapping (a valid signature over a different element)', () => {
    const mallory: SamlUser = { nameId: 'admin@corp.example', groups: ['engineering', 'admins'] };

    /** A genuinely signed response for bob, and an unsigned assertion for mallory to smuggle in. */
    function pieces(request: AuthnRequest) {
      const genuine = idp.responseXml(request, bob, { groupsAttribute: 'memberOf' });
      const signedAssertion = /<saml:Assertion\b[\s\S]*<\/saml:Assertion>/.exec(genuine)![0];
      const unsigned = /<saml:Assertion\b[\s\S]*<\/saml:Assertion>/.exec(idp.responseXml(request, mallory, { sign: 'none', groupsAttribute: 'memberOf' }))![0];
      return { genuine, signedAssertion, unsigned };
    }
    const send = async (xml: string, browser: TestBrowser, request: AuthnRequest) =>
      expectRefused(await post(browser, Buffer.from(xml).toString('base64'), request.relayState), /^saml_(signature|assertion)_invalid$/, browser);

    test('the signed assertion hidden in the evil assertion’s Advice', async () => {
      const { browser, request } = await begin();
      const { genuine, signedAssertion, unsigned } = pieces(request);
      const evil = unsigned.replace('</saml:Conditions>', `</saml:Conditions><saml:Advice>${signedAssertion}</saml:Advice>`);
      await send(genuine.replace(signedAssertion, evil), browser, request);
    });

    test('the signed assertion moved into the Response’s Extensions', async () => {
      const { browser, request } = await begin();
      const { genuine, signedAssertion, unsigned } = pieces(request);
      const wrapped = genuine.replace(signedAssertion, `<samlp:Extensions>${signedAssertion}</samlp:Extensions>${unsigned}`);
      await send(wrapped, browser, request);
    });

    test('the evil assertion takes the signed one’s ID and Signature; the original hides in ds:Object', async () => {
      const { browser, request } = await begin();
      const { genuine, signedAssertion, unsigned } = pieces(request);
      const signedId = /ID="([^"]+)"/.exec(signedAssertion)![1]!;
      const signature = /<ds:Signature\b[\s\S]*<\/ds:Signature>|<Signature\b[\s\S]*<\/Signature>/.exec(signedAssertion)![0];
      const withObject = signature.replace(/<\/(ds:)?Signature>$/, (end, prefix: string | undefined) => `<${prefix ?? ''}Object>${signedAssertion}</${prefix ?? ''}Object>${end}`);
      const evil = unsigned.replace(/ID="[^"]+"/, `ID="${signedId}"`).replace('</saml:Issuer>', `</saml:Issuer>${withObject}`);
      await send(genuine.replace(signedAssertion, evil), browser, request);
    });

    test('two assertions, one signed', async () => {
      const { browser, request } = await begin();
      const { genuine, signedAssertion, unsigned } = pieces(request);
      await send(genuine.replace(signedAssertion, `${unsigned}${signedAssertion}`), browser, request);
    });
  });

  test('attack: expired assertion', async () => {
    const { browser, request } = await begin();
    const past = new Date(Date.now() - 10 * 60_000);
    const expired = idp.respond(request, bob, { issueInstant: new Date(past.getTime() - 5 * 60_000), notOnOrAfter: past });
    await expectRefused(await post(browser, expired, request.relayState), 'saml_assertion_expired', browser);
  });

  test('attack: assertion not yet valid', async () => {
    const { browser, request } = await begin();
    const response = idp.respond(request, bob, { notBefore: new Date(Date.now() + 10 * 60_000) });
    await expectRefused(await post(browser, response, request.relayState), 'saml_assertion_expired', browser);
  });

  test('attack: assertion for another audience (another service provider)', async () => {
    const { browser, request } = await begin();
    const response = idp.respond(request, bob, { audience: 'https://other-app.example.com/saml' });
    await expectRefused(await post(browser, response, request.relayState), 'saml_audience_invalid', browser);
  });

  test('attack: bearer confirmation for another recipient', async () => {
    const { browser, request } = await begin();
    const response = idp.respond(request, bob, { recipient: 'https://other-app.example.com/acs' });
    await expectRefused(await post(browser, response, request.relayState), 'saml_recipient_invalid', browser);
  });

  test('attack: assertion from another issuer signed with the trusted key', async () => {
    const { browser, request } = await begin();
    const response = idp.respond(request, bob, { issuer: 'https://evil-idp.example.com' });
    await expectRefused(await post(browser, response, request.relayState), 'saml_issuer_invalid', browser);
  });

  test('attack: unsolicited response (InResponseTo a request this gateway never made)', async () => {
    const { browser, request } = await begin();
    const response = idp.respond({ ...request, id: '_never-requested' }, bob);
    await expectRefused(await post(browser, response, request.relayState), 'saml_in_response_to_invalid', browser);
  });

  test('attack: replayed assertion (the same POST twice)', async () => {
    const { browser, request } = await begin();
    const response = idp.respond(request, bob, { groupsAttribute: 'memberOf' });
    assert.equal((await post(browser, response, request.relayState)).status, 303);
    const replayer = new TestBrowser();
    await expectRefused(await post(replayer, response, request.relayState), /^saml_(in_response_to_invalid|assertion_replayed)$/, replayer);
  });

  test('attack: replayed assertion re-pointed at a fresh request (IdP that omits InResponseTo in the confirmation)', async () => {
    const first = await begin();
    const captured = idp.responseXml(first.request, bob, { confirmInResponseTo: false, groupsAttribute: 'memberOf' });
    assert.equal((await post(first.browser, Buffer.from(captured).toString('base64'), first.request.relayState)).status, 303);

    // The attacker starts their own login and swaps the unsigned Response/@InResponseTo to it.
    const second = await begin();
    const replayed = captured.replace(`InResponseTo="${first.request.id}"`, `InResponseTo="${second.request.id}"`);
    assert.notEqual(replayed, captured);
    await expectRefused(await post(second.browser, Buffer.from(replayed).toString('base64'), second.request.relayState), 'saml_assertion_replayed', second.browser);
  });

  test('login CSRF: a valid response posted in a browser that did not start the login', async () => {
    const { request } = await begin();
    const victim = new TestBrowser();
    await expectRefused(await post(victim, idp.respond(request, bob), request.relayState), 'login_binding_mismatch', victim);
  });

  test('Entra ID groups overage (groups.link instead of groups) is refused with its own code, not read as "no groups"', async () => {
    const { browser, request } = await begin();
    const overage: SamlUser = {
      nameId: 'many@corp.example',
      attributes: { 'http://schemas.microsoft.com/claims/groups.link': ['https://graph.windows.net/tenant/users/many/getMemberObjects'] },
    };
    await expectRefused(await post(browser, idp.respond(request, overage, { groupsAttribute: 'memberOf' }), request.relayState), 'saml_groups_overage', browser);
  });

  test('an attribute longer than the audit trail can index (a 3 KB group) is refused naming it', async () => {
    const { browser, request } = await begin();
    const long: SamlUser = { nameId: 'long@corp.example', groups: ['engineering', 'g'.repeat(3000)] };
    await expectRefused(await post(browser, idp.respond(request, long, { groupsAttribute: 'memberOf' }), request.relayState), 'saml_attribute_invalid', browser);
  });

  test('SP metadata names the ACS and asks for signed assertions', async () => {
    const response = await fetch(`${h.url}/auth/saml/metadata`);
    assert.equal(response.status, 200);
    const xml = await response.text();
    assert.match(xml, new RegExp(`entityID="${SP_ENTITY_ID}"`));
    assert.match(xml, new RegExp(`Location="${ACS}"`));
    assert.match(xml, /WantAssertionsSigned="true"/);
  });
});
