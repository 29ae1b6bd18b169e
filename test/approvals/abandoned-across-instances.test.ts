// One client leaving cancels a review only when no held request on ANY
// instance waits on it. Two gateway instances share one PostgreSQL: the same
// held prompt waits on instance A and on instance B (one review, found by
// fingerprint); A's client leaves, and A must not cancel the review under B's
// request, which B registered in the shared store. When B's client leaves
// too, the review is cancelled.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { configSchema, type ConfigInput } from '../../src/config/schema.js';
import { startDemoModel, type DemoModel } from '../../src/dev/demo-model.js';
import { DEV_AUDIENCE, devConfigInput } from '../../src/dev/dev-config.js';
import { startDevIdp, type DevIdp } from '../../src/dev/idp.js';
import { Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/ops/logger.js';
import { PG_URL } from '../helpers/postgres.js';

const KEPT = 'abandoned review still has a held request waiting on it; not cancelled';
const CANCELLED = 'abandoned review cancelled: no request waits on it';
const OUTCOMES = [KEPT, CANCELLED, 'could not judge or cancel an abandoned review; it expires instead'];

/** A gateway instance whose log lines a test can wait for. */
interface Instance {
  gateway: Gateway;
  url: string;
  lines: Array<Record<string, unknown>>;
  /** Which of the abandoned-review outcomes this instance logs first for the review. */
  abandonOutcome(review: string): Promise<string>;
}

async function startInstance(input: ConfigInput): Promise<Instance> {
  const lines: Array<Record<string, unknown>> = [];
  const seen = new Set<() => void>();
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      for (const check of [...seen]) check();
      done();
    },
  });
  const gateway = new Gateway(configSchema.parse(input), { logger: createLogger('info', sink) });
  const url = await gateway.listen();
  await gateway.services.verifier.warmUp();
  return {
    gateway,
    url,
    lines,
    abandonOutcome: (review) =>
      new Promise<string>((resolve) => {
        const check = () => {
          const line = lines.find((l) => OUTCOMES.includes(String(l.msg)) && l.review === review);
          if (!line) return;
          seen.delete(check);
          resolve(String(line.msg));
        };
        seen.add(check);
        check();
      }),
  };
}

describe('an abandoned review, with held requests on two instances sharing PostgreSQL', () => {
  let idp: DevIdp;
  let model: DemoModel;
  let dir: string;
  let a: Instance;
  let b: Instance;
  const schema = `mgtest_abandon_${randomBytes(5).toString('hex')}`;

  before(async () => {
    model = await startDemoModel({ apiKey: 'demo-upstream-key' });
    idp = await startDevIdp({ audience: DEV_AUDIENCE });
    dir = await mkdtemp(join(tmpdir(), 'modelgate-abandon-'));
    const input = devConfigInput({ host: '127.0.0.1', port: 0, issuer: idp.issuer, modelUrl: model.url, dataDir: dir });
    input.storage = { driver: 'postgres', postgres: { url: PG_URL, schema, pool_size: 4 } };
    input.recording = { enabled: false };
    input.approvals = { wait: '60s', keepalive_interval: '200ms', poll_interval: '200ms', cancel_abandoned_after: '300ms' };
    [a, b] = await Promise.all([startInstance(input), startInstance(input)]);
  });

  after(async () => {
    await Promise.all([a?.gateway.close(1_000), b?.gateway.close(1_000)]);
    await Promise.all([idp?.close(), model?.close()]);
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
    await rm(dir, { recursive: true, force: true });
  });

  test("A's client leaving does not cancel the review B's request waits on; B's leaving then does", async () => {
    const alice = (await idp.loginAs('alice')).accessToken;
    const body = JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: `nightingale ${schema}` }] });
    const send = (url: string, signal: AbortSignal) =>
      fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' }, body, signal }).catch(() => undefined);

    const leavingA = new AbortController();
    const onA = send(a.url, leavingA.signal);
    let reviewId: string | undefined;
    const store = a.gateway.services.approvals!.store;
    for (let i = 0; i < 400 && !reviewId; i++) {
      reviewId = (await store.list({ state: 'pending' }))[0]?.id;
      if (!reviewId) await sleep(25);
    }
    assert.ok(reviewId, 'instance A opened a review');

    const leavingB = new AbortController();
    const onB = send(b.url, leavingB.signal);
    for (let i = 0; i < 400 && b.gateway.services.approvals!.waitingOn(reviewId) === 0; i++) await sleep(25);
    assert.equal(b.gateway.services.approvals!.waitingOn(reviewId), 1, 'the identical request on B waits on the same review');
    for (let i = 0; i < 400 && (await store.liveWaiters(reviewId, Date.now())) < 2; i++) await sleep(25);
    assert.equal(await store.liveWaiters(reviewId, Date.now()), 2, 'both held requests are registered in the shared store');

    leavingA.abort();
    await onA;
    assert.equal(await a.abandonOutcome(reviewId), KEPT);
    assert.equal((await store.get(reviewId))?.state, 'pending', "A did not cancel the review under B's request");
    assert.equal(await store.liveWaiters(reviewId, Date.now()), 1, "A dropped its own request's registration");

    leavingB.abort();
    await onB;
    assert.equal(await b.abandonOutcome(reviewId), CANCELLED);
    assert.equal((await store.get(reviewId))?.state, 'cancelled');
    assert.equal(await store.liveWaiters(reviewId, Date.now()), 0);
  });
});
