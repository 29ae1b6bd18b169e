// The review stores, on SQLite and PostgreSQL, through two handles as two
// instances would hold them: concurrent votes and executions serialise on
// the row, and PostgreSQL pushes every change to the other handle, also
// after its listening connection is cut.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { applyVote, execute, newReviewId, type Review } from '../../src/approvals/review.js';
import { openReviewStore, type ReviewStore } from '../../src/approvals/review-store.js';
import { PG_URL, STORE_FIXTURES, type StoreFixture } from '../audit/fixtures.js';

const ISS = 'https://idp.example';

function pending(overrides: Partial<Review> = {}): Review {
  const now = Date.now();
  return {
    id: newReviewId(),
    kind: 'prompt',
    state: 'pending',
    created_at: now,
    updated_at: now,
    expires_at: now + 60_000,
    requester: { issuer: ISS, subject: 'alice', groups: [] },
    connection: 'demo',
    fingerprint: `fp-${Math.random()}`,
    reason: 'test',
    approvers: { groups: ['approvers'], required: 2 },
    votes: [],
    ...overrides,
  };
}

for (const factory of STORE_FIXTURES) {
  describe(`review store on ${factory.driver}`, () => {
    let fx: StoreFixture;
    let one: ReviewStore;
    let two: ReviewStore;

    before(async () => {
      fx = await factory.create();
      one = await openReviewStore(fx.storage);
      two = await openReviewStore(fx.storage);
    });
    after(async () => {
      await one?.close();
      await two?.close();
      await fx?.cleanup();
    });

    test('held-request leases: each instance sees the other\'s, renewals extend them, drops and expiry end them', async () => {
      const review = pending();
      await one.insert(review);
      const now = Date.now();
      await one.holdWaiter(review.id, 'waiter-on-one', now + 1_000);
      await two.holdWaiter(review.id, 'waiter-on-two', now + 1_000);
      await two.holdWaiter('another-review', 'waiter-elsewhere', now + 1_000);
      assert.equal(await two.liveWaiters(review.id, now), 2);
      // A renewal moves the lease on; a lease that ran out no longer counts.
      await one.holdWaiter(review.id, 'waiter-on-one', now + 5_000);
      assert.equal(await one.liveWaiters(review.id, now + 2_000), 1);
      await one.dropWaiter('waiter-on-one');
      assert.equal(await two.liveWaiters(review.id, now), 1);
      await two.dropExpiredWaiters(now + 2_000);
      assert.equal(await one.liveWaiters(review.id, now), 0, 'the expired lease was purged');
      assert.equal(await one.liveWaiters('another-review', now), 0);
    });

    test('concurrent votes from two instances: both count, the review is approved once', async () => {
      const review = pending();
      await one.insert(review);
      const voteBy = (store: ReviewStore, subject: string) =>
        store.update(review.id, (current) => {
          const r = applyVote(current, { decision: 'approve', by: { issuer: ISS, subject }, at: Date.now() }, ['approvers'], Date.now(), 60_000);
          return { ...(r.ok && { next: r.review }), result: r.ok ? (r.transition ?? 'voted') : r.refusal.code };
        });
      const results = await Promise.all([voteBy(one, 'carol'), voteBy(two, 'erin')]);
      assert.deepEqual(results.sort(), ['approved', 'voted']);
      const stored = await two.get(review.id);
      assert.equal(stored?.state, 'approved');
      assert.equal(stored?.votes.length, 2);
    });

    test('concurrent executions of one approval: exactly one wins', async () => {
      const review = pending({ state: 'approved', approvers: { groups: ['approvers'], required: 1 } });
      await one.insert(review);
      const executeOn = (store: ReviewStore, session: string) =>
        store.update(review.id, (current) => {
          const next = execute(current, session, Date.now());
          return { ...(next && { next }), result: next !== undefined };
        });
      const wins = await Promise.all([executeOn(one, 'a'), executeOn(two, 'b'), executeOn(one, 'c'), executeOn(two, 'd')]);
      assert.equal(wins.filter(Boolean).length, 1, `one winner: ${JSON.stringify(wins)}`);
    });

    test('lookups: by fingerprint, due for expiry, running grants', async () => {
      const now = Date.now();
      const old = pending({ expires_at: now - 1 });
      const grant = pending({ kind: 'access', state: 'approved', grant: { duration_ms: 60_000, expires_at: now + 60_000 }, requester: { issuer: ISS, subject: 'bob', groups: [] } });
      const ranOut = pending({ kind: 'access', state: 'approved', grant: { duration_ms: 1, expires_at: now - 1 }, requester: { issuer: ISS, subject: 'bob', groups: [] } });
      for (const r of [old, grant, ranOut]) await one.insert(r);
      assert.deepEqual((await two.byFingerprint(old.fingerprint!)).map((r) => r.id), [old.id]);
      assert.ok((await two.duePending(now, 100)).includes(old.id), 'the expired pending review is due');
      assert.deepEqual((await two.activeGrants('bob', 'demo', now)).map((r) => r.id), [grant.id]);
      assert.equal(await two.update('rev_missing', () => ({ result: 1 })), undefined);
    });

    test('the prompt is read only for one review, never in lists', async () => {
      const review = pending({ prompt: { messages: [{ role: 'user', content: 'x'.repeat(100_000) }] } });
      await one.insert(review);
      assert.deepEqual((await two.get(review.id))?.prompt, review.prompt, 'get has it');
      const listed = (await two.list({ requester: { subject: 'alice' }, limit: 1000 })).find((r) => r.id === review.id);
      assert.ok(listed, 'listed');
      assert.equal(listed.prompt, undefined, 'a list leaves it out');
      assert.equal((await two.byFingerprint(review.fingerprint!))[0]?.prompt, undefined);
      await two.update(review.id, (current) => ({ next: { ...current, state: 'cancelled' }, result: true }));
      assert.deepEqual((await one.get(review.id))?.prompt, review.prompt, 'an update keeps it');
    });

    test('retention deletes decided reviews past their time, never pending ones', async () => {
      const now = Date.now();
      const oldDecided = pending({ state: 'rejected', updated_at: now - 10_000 });
      const oldPending = pending({ updated_at: now - 10_000 });
      const recentDecided = pending({ state: 'executed', updated_at: now });
      for (const r of [oldDecided, oldPending, recentDecided]) await one.insert(r);
      await two.deleteDecidedBefore(now - 5_000, 500);
      assert.equal(await one.get(oldDecided.id), undefined, 'the old decided review is gone');
      assert.ok(await one.get(oldPending.id), 'a pending review is kept whatever its age');
      assert.ok(await one.get(recentDecided.id), 'a recent decided review is kept');
    });

    if (factory.driver === 'postgres') {
      test('changes are pushed to the other instance, and again after the listening connection is cut', async () => {
        const heard: string[] = [];
        assert.equal(await two.subscribe((id) => heard.push(id)), true);
        assert.equal(two.pushing, true, 'listening');
        const first = pending();
        await one.insert(first);
        for (let i = 0; i < 200 && !heard.includes(first.id); i++) await sleep(10);
        assert.ok(heard.includes(first.id), 'the insert was pushed');

        const admin = new pg.Client({ connectionString: PG_URL });
        await admin.connect();
        await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'modelgate-approvals-listen:${process.pid}'`);
        await admin.end();
        for (let i = 0; i < 100 && two.pushing; i++) await sleep(10);
        assert.equal(two.pushing, false, 'the cut is noticed, so held requests poll');
        for (let i = 0; i < 300 && !two.pushing; i++) await sleep(10);
        assert.equal(two.pushing, true, 'it listens again');

        const second = pending();
        await one.insert(second);
        await one.update(second.id, (current) => ({ next: { ...current, state: 'cancelled' }, result: true }));
        for (let i = 0; i < 200 && heard.filter((id) => id === second.id).length < 2; i++) await sleep(10);
        assert.equal(heard.filter((id) => id === second.id).length, 2, 'insert and update pushed after reconnecting');
      });
    }
  });
}
