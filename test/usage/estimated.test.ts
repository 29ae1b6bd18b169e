// Estimated token counts in the session store, on SQLite and PostgreSQL:
// a session whose model server reported no usage is marked `estimated` in
// its row (migration v3), the mark reaches the usage report, and a trail
// recorded before the column existed is filled in from its events on
// upgrade, so `verify` still finds every row equal to its events.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { Recorder } from '../../src/audit/recorder.js';
import { sessionsCommand } from '../../src/cli/sessions.js';
import { usageCommand } from '../../src/cli/usage.js';
import { verify } from '../../src/audit/verify.js';
import { CostTable } from '../../src/usage/costs.js';
import { usageSchema } from '../../src/usage/config.js';
import { usageReport } from '../../src/usage/report.js';
import { runCli } from '../helpers/cli.js';
import { recordSession, recording, STORE_FIXTURES, type StoreFixture } from '../audit/fixtures.js';

const ESTIMATED = { prompt_tokens: 14, completion_tokens: 18, total_tokens: 32, estimated: true };

for (const factory of STORE_FIXTURES) {
  describe(`estimated usage on ${factory.driver}`, () => {
    let fx: StoreFixture;
    before(async () => {
      fx = await factory.create();
    });
    after(() => fx.cleanup());

    async function recordBoth(): Promise<{ counted: string; estimated: string }> {
      const store = await fx.open();
      const recorder = await Recorder.open(store, recording());
      const counted = await recordSession(recorder, { subject: 'counted' });
      const estimated = await recordSession(recorder, { subject: 'estimated', usage: ESTIMATED });
      await recorder.close();
      return { counted, estimated };
    }

    test('the row says which sessions were estimated, and the usage report counts them', async () => {
      const { counted, estimated } = await recordBoth();
      const store = await fx.open();
      try {
        assert.equal((await store.getSession(estimated))!.estimated, true);
        assert.equal((await store.getSession(counted))!.estimated, false);
        const report = await usageReport(store, { since: 0, until: Date.now() + 1, by: ['subject'] }, new CostTable(usageSchema.parse({})), 'USD');
        const row = (subject: string) => report.rows.find((r) => r.subject === `${subject}@example.com`)!;
        assert.equal(row('estimated').estimated_requests, 1);
        assert.equal(row('estimated').total_tokens, 32);
        assert.equal(row('counted').estimated_requests, 0);
        assert.ok((await verify(store)).ok);
      } finally {
        await store.close();
      }
    });

    test('modelgate usage marks estimated tokens in the table, and counts them in CSV and JSON; sessions show says so', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'modelgate-usage-estimated-'));
      try {
        const configFile = join(dir, 'modelgate.yaml');
        const storage = fx.driver === 'sqlite' ? { driver: 'sqlite', sqlite: { path: fx.storage.sqlite.path } } : { driver: 'postgres', postgres: { url: fx.storage.postgres!.url, schema: fx.storage.postgres!.schema } };
        await writeFile(configFile, stringify({ storage }));
        const { estimated } = await recordBoth();
        const table = await runCli(usageCommand, ['--config', configFile, '--by', 'subject', '--subject', 'estimated']);
        assert.equal(table.code, 0, table.err);
        assert.match(table.out, /estimated@example\.com\s+\d+\s+0\s+~\d+\s+~\d+\s+~\d+/, table.out);
        assert.match(table.out, /^~ includes tokens estimated from text: the model server reported no usage for \d+ requests?\.$/m);
        const counted = await runCli(usageCommand, ['--config', configFile, '--by', 'subject', '--subject', 'counted']);
        assert.doesNotMatch(counted.out, /~/, 'counted tokens carry no mark');
        const csv = (await runCli(usageCommand, ['--config', configFile, '--by', 'subject', '--csv'])).out.trim().split('\n');
        assert.equal(csv[0], 'subject,requests,limited,prompt_tokens,completion_tokens,total_tokens,estimated_requests,cost');
        const row = csv.find((l) => l.startsWith('estimated@example.com,'))!.split(',');
        assert.equal(row[6], row[1], 'every request of this subject was estimated');
        const show = await runCli(sessionsCommand, ['show', estimated, '--config', configFile]);
        assert.match(show.out, /tokens\s+14 in, 18 out \(estimated: the model server reported none\)/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    test('a trail from before the column is filled in from its events on upgrade, and still verifies', async () => {
      const { counted, estimated } = await recordBoth();
      // Back to schema v2: no column, no record of migration 3.
      await fx.raw.query('ALTER TABLE sessions DROP COLUMN estimated');
      await fx.raw.query('DELETE FROM audit_migrations WHERE version = 3');
      const store = await fx.open();
      try {
        assert.equal((await store.getSession(estimated))!.estimated, true, 'filled in from the session.end event');
        assert.equal((await store.getSession(counted))!.estimated, false);
        const result = await verify(store);
        assert.deepEqual(result.problems, []);
        assert.ok(result.ok);
      } finally {
        await store.close();
      }
      const [migration] = await fx.raw.query<{ name: string }>('SELECT name FROM audit_migrations WHERE version = 3');
      assert.equal(migration?.name, 'estimated usage');
    });
  });
}
