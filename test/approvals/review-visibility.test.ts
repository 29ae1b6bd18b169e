// Who may see a review: its requester as a person is (issuer, subject). An
// email merges two identities only when both issuers verified it and are
// trusted to (`trust_email`). Here a second trusted IdP has a user who
// claims alice's email, unverified: she must not see alice's prompt.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { samePerson } from '../../src/approvals/review.js';
import { DEV_AUDIENCE } from '../../src/dev/dev-config.js';
import { startDevIdp, type DevIdp } from '../../src/dev/idp.js';
import { postJson, startHarness, type Harness } from '../helpers/harness.js';

describe('reviews are visible by issuer and subject, not by a claimed email', () => {
  let h: Harness;
  let other: DevIdp;
  let reviewId: string;
  let mallory: string;
  before(async () => {
    other = await startDevIdp({
      audience: DEV_AUDIENCE,
      users: [{ id: 'mallory', password: 'mallory-password', email: 'alice@example.com', name: 'Mallory', groups: ['engineering'] }],
    });
    h = await startHarness({
      configure(input) {
        input.identity!.issuers.push({ issuer: other.issuer, audience: DEV_AUDIENCE });
        input.approvals = { wait: '300ms', keepalive_interval: '100ms', poll_interval: '100ms' };
      },
    });
    const held = await postJson(`${h.url}/v1/chat/completions`, await h.userToken('alice'), {
      model: 'demo-chat',
      messages: [{ role: 'user', content: 'nightingale launch numbers, for my eyes only' }],
    });
    const error = ((await held.json()) as { error: { code: string; review_id?: string } }).error;
    assert.ok(error.review_id, JSON.stringify(error));
    reviewId = error.review_id;
    mallory = (await other.loginAs('mallory')).accessToken;
  });
  after(async () => {
    await h.close();
    await other.close();
  });

  const get = (path: string, token: string) => fetch(`${h.url}${path}`, { headers: { authorization: `Bearer ${token}` } });

  test('the requester sees her review', async () => {
    const response = await get(`/v1/reviews/${reviewId}`, await h.userToken('alice'));
    assert.equal(response.status, 200);
    await response.body?.cancel();
  });

  test("another issuer's user with the same (unverified) email gets 404, and no list entry", async () => {
    const one = await get(`/v1/reviews/${reviewId}`, mallory);
    assert.equal(one.status, 404);
    await one.body?.cancel();
    const list = (await (await get('/v1/reviews', mallory)).json()) as { data: Array<{ id: string }> };
    assert.ok(!list.data.some((r) => r.id === reviewId));
  });
});

describe('samePerson: email merges only verified, trusted identities', () => {
  const a = { issuer: 'https://a.example.com', subject: 'u1', email: 'Alice@example.com' };
  const b = { issuer: 'https://b.example.com', subject: 'x9', email: 'alice@example.com' };
  test('(issuer, subject) is one person; a gateway token counts as its origin IdP', () => {
    assert.ok(samePerson(a, { ...a, email: undefined }));
    assert.ok(samePerson(a, { issuer: 'https://gateway', origin: a.issuer, subject: 'u1' }));
  });
  test('the same email joins two issuers only when both are verified and trusted', () => {
    assert.ok(!samePerson(a, b));
    assert.ok(!samePerson({ ...a, emailTrusted: true }, b));
    assert.ok(samePerson({ ...a, emailTrusted: true }, { ...b, emailTrusted: true }));
  });
});
