// A value the database cannot store, in one session of a group commit. The
// commit fails whole (all or none), and retrying it fails again: before, every
// session sharing it was refused with 503, and the outage was reported. Now
// the recorder stores each session alone and only the one holding the value
// fails, with an error that says retrying will not help.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Recorder } from '../../src/audit/recorder.js';
import { verify } from '../../src/audit/verify.js';
import { GatewayError } from '../../src/http/errors.js';
import { recordSession, recording, STORE_FIXTURES } from './fixtures.js';

const postgres = STORE_FIXTURES.find((f) => f.driver === 'postgres')!;

test('PostgreSQL: a session holding a value the database refuses fails alone; the sessions sharing its group commit are stored', async () => {
  const fx = await postgres.create();
  const store = await fx.open('worker');
  const outages: unknown[] = [];
  // A wide commit window, so all of them share one group commit.
  const recorder = await Recorder.open(store, recording({ commit_interval: '50ms' }), { health: { failed: (err) => outages.push(err), recovered: () => {} } });
  try {
    const results = await Promise.allSettled([
      recordSession(recorder, { subject: 'alice' }),
      // The identity layer refuses such claims (test/identity/unusable-claims.test.ts); here the store meets one.
      recordSession(recorder, { subject: 'mal\u0000lory' }),
      recordSession(recorder, { subject: 'bob' }),
      recordSession(recorder, { subject: 'carol' }),
    ]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    const refused = (results[1] as PromiseRejectedResult).reason as GatewayError;
    assert.ok(refused instanceof GatewayError, String(refused));
    assert.equal(refused.status, 500);
    assert.equal(refused.code, 'recording_refused');
    assert.equal(refused.headers['x-should-retry'], 'false');
    assert.deepEqual(outages, [], 'a refused value is no storage outage');
    const stored = await fx.raw.query<{ subject: string }>('SELECT subject FROM sessions ORDER BY subject');
    assert.deepEqual(stored.map((r) => r.subject), ['alice', 'bob', 'carol']);
    assert.equal((await verify(store)).ok, true);
  } finally {
    await recorder.close();
    await fx.cleanup();
  }
});
