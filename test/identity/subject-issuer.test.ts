// `access[].subjects` and `limits.rules[].subjects` name people (or service
// accounts) of one issuer: the same `sub` from a second trusted issuer is
// somebody else and must not get the first one's access, nor be held to
// (or escape through) its limits. Two real IdPs, one gateway.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { configSchema, type ConfigInput } from '../../src/config/schema.js';
import { DEV_AUDIENCE } from '../../src/dev/dev-config.js';
import { startDevIdp, type DevIdp } from '../../src/dev/idp.js';
import { postJson, startHarness, type Harness } from '../helpers/harness.js';

/**
 * A gateway trusting the harness's IdP and a second one (`other`), for the
 * describe it is called in; `rule` gets the first IdP's issuer to bind to.
 */
function twoIdps(rule: (input: ConfigInput, firstIssuer: string) => void): { h: Harness; other: DevIdp } {
  const both = {} as { h: Harness; other: DevIdp };
  before(async () => {
    both.other = await startDevIdp({ audience: DEV_AUDIENCE });
    both.h = await startHarness({
      configure(input) {
        input.identity!.issuers.push({ issuer: both.other.issuer, audience: DEV_AUDIENCE });
        rule(input, input.identity!.issuers[0]!.issuer);
      },
    });
  });
  after(async () => {
    await both.h?.close();
    await both.other?.close();
  });
  return both;
}

describe('subject rules are bound to their issuer', () => {
  // Only alice of the first IdP may use the model; no group rule lets anyone else in.
  const idps = twoIdps((input, issuer) => (input.access = [{ subjects: ['alice'], issuer, connections: ['*'], models: ['demo-chat'] }]));

  const chat = (token: string) => postJson(`${idps.h.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] });

  test("the rule's own issuer: allowed", async () => {
    const response = await chat(await idps.h.userToken('alice'));
    assert.equal(response.status, 200);
    await response.body?.cancel();
  });

  test('the same sub from the second issuer is refused', async () => {
    const token = (await idps.other.loginAs('alice')).accessToken;
    const response = await chat(token);
    assert.ok(response.status === 403 || response.status === 404, `status ${response.status}`);
    await response.body?.cancel();
  });
});

describe('limit rules on subjects are bound to their issuer', () => {
  // One request a minute for alice of the first IdP; nobody else is limited.
  const idps = twoIdps((input, issuer) => (input.limits = { rules: [{ name: 'first-alice', subjects: ['alice'], issuer, requests_per_minute: 1 }] }));

  const chat = async (token: string): Promise<number> => {
    const response = await postJson(`${idps.h.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] });
    await response.body?.cancel();
    return response.status;
  };

  test("the rule's own issuer: limited", async () => {
    const token = await idps.h.userToken('alice');
    assert.deepEqual([await chat(token), await chat(token)], [200, 429]);
  });

  test('the same sub from the second issuer is somebody else: the rule does not apply', async () => {
    const token = (await idps.other.loginAs('alice')).accessToken;
    assert.deepEqual([await chat(token), await chat(token)], [200, 200]);
  });
});

describe('start-up refuses ambiguous subject rules', () => {
  const base = (issuers: string[], rule: Record<string, unknown>): ConfigInput => ({
    identity: { issuers: issuers.map((issuer) => ({ issuer, audience: 'modelgate' })) },
    connections: [{ name: 'vllm', url: 'http://127.0.0.1:9', models: [{ name: 'llama' }] }],
    access: [{ connections: ['vllm'], ...rule }],
  });

  test('several issuers and bare subjects: refused, the message names the fix', () => {
    const result = configSchema.safeParse(base(['https://a.example.com', 'https://b.example.com'], { subjects: ['svc-x'] }));
    assert.equal(result.success, false);
    const issue = result.error!.issues.find((i) => i.path.join('.') === 'access.0.subjects');
    assert.ok(issue, JSON.stringify(result.error!.issues));
    assert.match(issue.message, /add `issuer:` to this rule.*https:\/\/a\.example\.com, https:\/\/b\.example\.com/);
  });

  test('one issuer with bare subjects, or several with the issuer named: accepted', () => {
    assert.ok(configSchema.safeParse(base(['https://a.example.com'], { subjects: ['svc-x'] })).success);
    assert.ok(configSchema.safeParse(base(['https://a.example.com', 'https://b.example.com'], { subjects: ['svc-x'], issuer: 'https://b.example.com' })).success);
  });

  test('an issuer that is not trusted is refused', () => {
    const result = configSchema.safeParse(base(['https://a.example.com'], { subjects: ['svc-x'], issuer: 'https://c.example.com' }));
    assert.equal(result.success, false);
    assert.ok(result.error!.issues.some((i) => i.path.join('.') === 'access.0.issuer'));
  });

  const limited = (issuers: string[], rule: Record<string, unknown>): ConfigInput => ({
    ...base(issuers, { groups: ['everyone'] }),
    limits: { rules: [{ name: 'cap', requests_per_minute: 10, ...rule }] },
  });

  test('limit rules: several issuers and bare subjects refused, the message names the fix; one issuer or a named issuer accepted', () => {
    const result = configSchema.safeParse(limited(['https://a.example.com', 'https://b.example.com'], { subjects: ['svc-x'] }));
    assert.equal(result.success, false);
    const issue = result.error!.issues.find((i) => i.path.join('.') === 'limits.rules.0.subjects');
    assert.ok(issue, JSON.stringify(result.error!.issues));
    assert.match(issue.message, /add `issuer:` to this rule.*https:\/\/a\.example\.com, https:\/\/b\.example\.com/);
    assert.ok(configSchema.safeParse(limited(['https://a.example.com'], { subjects: ['svc-x'] })).success);
    assert.ok(configSchema.safeParse(limited(['https://a.example.com', 'https://b.example.com'], { subjects: ['svc-x'], issuer: 'https://a.example.com' })).success);
    const untrusted = configSchema.safeParse(limited(['https://a.example.com'], { subjects: ['svc-x'], issuer: 'https://c.example.com' }));
    assert.ok(!untrusted.success && untrusted.error.issues.some((i) => i.path.join('.') === 'limits.rules.0.issuer'));
  });
});
