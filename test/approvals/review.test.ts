// The review state machine, on its own: who may vote, when a review is
// decided, and what each terminal state allows.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { applyVote, cancel, execute, expire, grantActive, newReviewId, REVIEW_ID_PATTERN, type Review, type Vote } from '../../src/approvals/review.js';

const ISS = 'https://idp.example';
const T0 = 1_000_000;

function review(overrides: Partial<Review> = {}): Review {
  return {
    id: newReviewId(),
    kind: 'prompt',
    state: 'pending',
    created_at: T0,
    updated_at: T0,
    expires_at: T0 + 60_000,
    requester: { issuer: ISS, subject: 'alice', groups: ['engineering', 'approvers'] },
    connection: 'demo',
    reason: 'test',
    approvers: { groups: ['approvers'], required: 1 },
    votes: [],
    ...overrides,
  };
}

const vote = (subject: string, decision: Vote['decision'] = 'approve', issuer = ISS): Vote => ({ decision, by: { issuer, subject }, at: T0 + 1 });

describe('review state machine', () => {
  test('IDs are unguessable and well-formed', () => {
    const ids = new Set(Array.from({ length: 1000 }, newReviewId));
    assert.equal(ids.size, 1000, 'no collisions');
    for (const id of ids) assert.match(id, REVIEW_ID_PATTERN);
  });

  test('the requester cannot vote on their own review, even in an approver group', () => {
    const r = applyVote(review(), vote('alice'), ['approvers'], T0 + 1, 1000);
    assert.equal(r.ok, false);
    assert.deepEqual(!r.ok && r.refusal, { code: 'self_approval_forbidden' });
    const rejectOwn = applyVote(review(), vote('alice', 'reject'), ['approvers'], T0 + 1, 1000);
    assert.deepEqual(!rejectOwn.ok && rejectOwn.refusal, { code: 'self_approval_forbidden' });
  });

  test('the requester signed in through the browser (a gateway-issued token) is still the requester', () => {
    const viaGateway: Vote = { decision: 'approve', by: { issuer: 'https://gateway.example', origin: ISS, subject: 'alice' }, at: T0 + 1 };
    const r = applyVote(review(), viaGateway, ['approvers'], T0 + 1, 1000);
    assert.deepEqual(!r.ok && r.refusal, { code: 'self_approval_forbidden' });
  });

  test('the same verified email at another identity provider is the same person', () => {
    const requested = review({ requester: { issuer: ISS, subject: 'alice', email: 'Alice@Example.com', groups: ['approvers'] } });
    const elsewhere: Vote = { decision: 'approve', by: { issuer: 'https://saml-idp.example', subject: 'a.anders', email: 'alice@example.com' }, at: T0 + 1 };
    const r = applyVote(requested, elsewhere, ['approvers'], T0 + 1, 1000);
    assert.deepEqual(!r.ok && r.refusal, { code: 'self_approval_forbidden' });
  });

  test("a service identity's owner cannot approve what their service key asked for", () => {
    const byService = review({ requester: { issuer: 'modelgate:service-keys', subject: 'notebook', groups: ['notebooks'], owner: { issuer: ISS, subject: 'erin' } } });
    const r = applyVote(byService, vote('erin'), ['approvers'], T0 + 1, 1000);
    assert.deepEqual(!r.ok && r.refusal, { code: 'self_approval_forbidden' });
    assert.equal(applyVote(byService, vote('carol'), ['approvers'], T0 + 1, 1000).ok, true, 'anyone else in the approver group may');
  });

  test('the same subject at another issuer is another person', () => {
    const r = applyVote(review(), vote('alice', 'approve', 'https://other-idp.example'), ['approvers'], T0 + 1, 1000);
    assert.equal(r.ok && r.transition, 'approved');
  });

  test('only approver-group members vote, and each only once', () => {
    const outsider = applyVote(review(), vote('bob'), ['engineering'], T0 + 1, 1000);
    assert.deepEqual(!outsider.ok && outsider.refusal, { code: 'not_an_approver', groups: ['approvers'] });
    const two = review({ approvers: { groups: ['approvers'], required: 2 } });
    const first = applyVote(two, vote('carol'), ['approvers'], T0 + 1, 1000);
    assert.ok(first.ok && first.transition === undefined && first.review.state === 'pending', 'one of two');
    const again = applyVote(first.review, vote('carol'), ['approvers'], T0 + 2, 1000);
    assert.deepEqual(!again.ok && again.refusal, { code: 'already_voted' });
    const second = applyVote(first.review, vote('erin'), ['approvers'], T0 + 3, 1000);
    assert.ok(second.ok && second.transition === 'approved', 'two of two');
    assert.equal(second.review.expires_at, T0 + 3 + 1000, 'an approval is usable for approval_valid_for');
  });

  test('one rejection is final, even after approvals', () => {
    const two = review({ approvers: { groups: ['approvers'], required: 2 } });
    const first = applyVote(two, vote('carol'), ['approvers'], T0 + 1, 1000);
    assert.ok(first.ok, 'first vote');
    const rejected = applyVote(first.review, vote('erin', 'reject'), ['approvers'], T0 + 2, 1000);
    assert.ok(rejected.ok && rejected.review.state === 'rejected', 'rejected');
    const late = applyVote(rejected.review, vote('frank'), ['approvers'], T0 + 3, 1000);
    assert.deepEqual(!late.ok && late.refusal, { code: 'review_not_pending', state: 'rejected' });
  });

  test('an expired review takes no votes, even before the sweep marks it', () => {
    const r = applyVote(review(), vote('carol'), ['approvers'], T0 + 60_000, 1000);
    assert.deepEqual(!r.ok && r.refusal, { code: 'review_not_pending', state: 'expired' });
    assert.equal(expire(review(), T0 + 59_999), undefined, 'not before its time');
    assert.equal(expire(review(), T0 + 60_000)?.state, 'expired');
  });

  test('an approval is executed once, and not after it runs out', () => {
    const approved = applyVote(review(), vote('carol'), ['approvers'], T0 + 1, 1000);
    assert.ok(approved.ok, 'approved');
    const executed = execute(approved.review, 'req_1', T0 + 2);
    assert.equal(executed?.state, 'executed');
    assert.equal(executed?.executed_session_id, 'req_1');
    assert.equal(execute(executed!, 'req_2', T0 + 3), undefined, 'only once');
    assert.equal(execute(approved.review, 'req_3', T0 + 1 + 1000), undefined, 'not after approval_valid_for');
    assert.equal(execute(review(), 'req_4', T0 + 2), undefined, 'not while pending');
  });

  test('only pending reviews are cancelled', () => {
    assert.equal(cancel(review(), T0 + 1)?.state, 'cancelled');
    assert.equal(cancel(review({ state: 'approved' }), T0 + 1), undefined);
  });

  test('an access grant runs from its approval for its duration', () => {
    const access = review({ kind: 'access', grant: { duration_ms: 5_000 } });
    const approved = applyVote(access, vote('carol'), ['approvers'], T0 + 10, 1000);
    assert.ok(approved.ok, 'approved');
    assert.equal(approved.review.grant?.expires_at, T0 + 10 + 5_000);
    assert.equal(grantActive(approved.review, T0 + 5_009), true);
    assert.equal(grantActive(approved.review, T0 + 5_010), false);
    assert.equal(execute(approved.review, 'req', T0 + 11), undefined, 'a grant is not a one-shot approval');
  });
});
