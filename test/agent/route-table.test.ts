// The route table's answer to "who holds an agent for this connection?",
// with the clock passed in: live claims first; a claim whose lease lapsed
// less than one lease ago is still worth a try when no live claim is left,
// because its holder may only have been unable to renew it (the database
// was away for it too: seen in the fault harness right after a PostgreSQL
// restart, as 503 agent_unavailable while the agent was connected). A
// holder without the agent answers "not started", so a wrong guess costs a
// hop, never a request.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { RouteTable } from '../../src/agent/route-table.js';
import { storageSchema } from '../../src/audit/config.js';

const LEASE = 3_000;
const T0 = 1_000_000;

describe('route table', () => {
  let dir: string;
  const tables: RouteTable[] = [];
  const open = async (instance: string) => {
    const storage = storageSchema.parse({ driver: 'sqlite', sqlite: { path: join(dir, 'routes.db') } });
    const table = await RouteTable.open(storage, instance, `http://127.0.0.1:1/${instance}`, LEASE);
    tables.push(table);
    return table;
  };
  const names = (holders: Array<{ instance: string }>) => holders.map((h) => h.instance);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'modelgate-route-table-'));
  });
  after(async () => {
    for (const t of tables) await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('a claim that lapsed less than a lease ago is tried when no live claim is left, after every live one, and never once a lease has passed', async () => {
    const [reader, stale, live] = await Promise.all([open('reader'), open('stale'), open('live')]);
    await stale.publish(new Map([['demo', 1]]), T0);
    // Its lease lapsed just now (the database was away, say): still a candidate.
    assert.deepEqual(names(await reader.holders('demo', T0 + LEASE + 500)), ['stale']);
    // A live holder comes first; the lapsed one stays behind it.
    await live.publish(new Map([['demo', 1]]), T0 + LEASE + 600);
    const both = await reader.holders('demo', T0 + LEASE + 1_200);
    assert.deepEqual(both.map((h) => [h.instance, h.lapsed]), [['live', false], ['stale', true]]);
    // One lease after its expiry a claim is a dead instance's: gone from the answer.
    assert.deepEqual(names(await reader.holders('demo', T0 + 2 * LEASE + 1)), ['live']);
    assert.deepEqual(names(await reader.holders('demo', T0 + 3 * LEASE + 700)), []);
  });

  test('a holder that withdrew (its agent left, or it stopped cleanly) is not a candidate at all', async () => {
    const [reader, gone] = await Promise.all([open('reader-2'), open('gone')]);
    await gone.publish(new Map([['other', 1]]), T0);
    await gone.publish(new Map(), T0 + 100);
    assert.deepEqual(names(await reader.holders('other', T0 + 200)), []);
  });
});
