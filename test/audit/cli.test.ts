// `modelgate sessions` and `modelgate audit verify` against both stores,
// configured the way an operator would: a YAML file with ${ENV} references.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { Recorder } from '../../src/audit/recorder.js';
import { auditCommand } from '../../src/cli/audit.js';
import { sessionsCommand } from '../../src/cli/sessions.js';
import { runCli } from '../helpers/cli.js';
import { KEY_A, recordSession, recording, STORE_FIXTURES, type StoreFixture } from './fixtures.js';

for (const factory of STORE_FIXTURES) {
  describe(`audit CLI on ${factory.driver}`, () => {
    let fx: StoreFixture;
    let dir: string;
    let configFile: string;
    let id: string;

    before(async () => {
      fx = await factory.create();
      dir = await mkdtemp(join(tmpdir(), 'modelgate-cli-'));
      configFile = join(dir, 'modelgate.yaml');
      process.env.TEST_RECORDING_KEY = KEY_A.key;
      const storage = fx.driver === 'sqlite' ? { driver: 'sqlite', sqlite: { path: fx.storage.sqlite.path } } : { driver: 'postgres', postgres: { url: fx.storage.postgres!.url, schema: fx.storage.postgres!.schema } };
      // The gateway's own sections (identity, upstream keys) are not needed, nor their env vars.
      await writeFile(
        configFile,
        stringify({
          identity: { issuers: [{ issuer: 'https://idp.example', audience: 'x' }] },
          connections: [{ name: 'local', url: 'http://127.0.0.1:1', api_key: '${UNSET_UPSTREAM_KEY}', models: [{ name: 'demo-chat' }] }],
          storage,
          recording: { encryption: { keys: [{ id: KEY_A.id, key: '${TEST_RECORDING_KEY}' }] } },
        }),
      );
      const store = await fx.open();
      const recorder = await Recorder.open(store, recording({ encryption: { keys: [KEY_A] } }));
      id = await recordSession(recorder, { subject: 'cli-user', prompt: 'What is 2+2?', reply: ['It', ' is', ' 4.'], decisions: [{ direction: 'input', action: 'mask', rule: 'pii.email', excerpt: 'x@y.z' }] });
      await recordSession(recorder, { subject: 'other-user' });
      await recorder.close();
    });
    after(async () => {
      await fx.cleanup();
      await rm(dir, { recursive: true, force: true });
    });

    test('list, show and show --json', async () => {
      const list = await runCli(sessionsCommand, ['list', '--config', configFile, '--user', 'cli-user']);
      assert.equal(list.code, 0, list.err);
      assert.match(list.out, new RegExp(id));
      assert.doesNotMatch(list.out, /other-user/);
      const masked = await runCli(sessionsCommand, ['list', '-c', configFile, '--decision', 'masked', '--json']);
      assert.deepEqual(JSON.parse(masked.out).sessions.map((s: { id: string }) => s.id), [id]);
      const show = await runCli(sessionsCommand, ['show', id, '--config', configFile]);
      assert.match(show.out, /What is 2\+2\?/);
      assert.match(show.out, /It is 4\./);
      assert.match(show.out, /decision input mask pii\.email/);
      const json = JSON.parse((await runCli(sessionsCommand, ['show', id, '-c', configFile, '--json'])).out);
      assert.equal(json.session.id, id);
      assert.equal((await runCli(sessionsCommand, ['show', 'req_nope', '-c', configFile])).code, 1);
    });

    test('replay renders at the original timing, scaled by --speed', async () => {
      const started = performance.now();
      const normal = await runCli(sessionsCommand, ['replay', id, '-c', configFile, '--speed', '1']);
      const elapsed = performance.now() - started;
      assert.equal(normal.code, 0);
      assert.match(normal.out, /user: What is 2\+2\?/);
      assert.match(normal.out, /assistant: It is 4\./);
      assert.ok(elapsed >= 28, `chunks at 10, 20, 30 ms: took ${elapsed.toFixed(0)} ms`);
      assert.doesNotMatch(normal.out, /\x1b\[/, 'no colour when stdout is not a TTY');
      const slowStart = performance.now();
      await runCli(sessionsCommand, ['replay', id, '-c', configFile, '--speed', '0.25']);
      assert.ok(performance.now() - slowStart >= 118, 'a quarter of the speed takes four times as long');
    });

    test('export --since writes JSONL', async () => {
      const exported = await runCli(sessionsCommand, ['export', '--since', '1h', '-c', configFile, '--format', 'jsonl']);
      const records = exported.out.trim().split('\n').map((l) => JSON.parse(l) as { session_id: string; kind: string });
      assert.ok(records.filter((r) => r.session_id === id).length >= 4);
      await assert.rejects(runCli(sessionsCommand, ['export', '-c', configFile]), /export needs --since/);
    });

    test('hold, redact, delete, and audit verify before and after tampering', async () => {
      // A session of its own, so the other tests' session is left as recorded.
      const store = await fx.open();
      const recorder = await Recorder.open(store, recording({ encryption: { keys: [KEY_A] } }));
      const id = await recordSession(recorder, { subject: 'erased-user', prompt: 'What is 3+3?' });
      await recorder.close();

      assert.equal((await runCli(sessionsCommand, ['hold', id, '-c', configFile, '--reason', 'case 1'])).code, 0);
      const kept = await runCli(sessionsCommand, ['delete', id, '-c', configFile]);
      assert.equal(kept.code, 1);
      assert.match(kept.out, /kept 1 on legal hold/);
      assert.equal((await runCli(sessionsCommand, ['hold', id, '--release', '-c', configFile])).code, 0);
      const redacted = await runCli(sessionsCommand, ['redact', '--subject', 'erased-user', '-c', configFile, '--reason', 'erasure']);
      assert.match(redacted.out, /redacted 1 session/);
      assert.doesNotMatch((await runCli(sessionsCommand, ['show', id, '-c', configFile])).out, /3\+3/);

      const ok = await runCli(auditCommand, ['verify', '-c', configFile]);
      assert.equal(ok.code, 0, ok.out);
      assert.match(ok.out, /audit trail verified/);
      const head = /head (\d+:[0-9a-f]{64})/.exec(ok.out)![1]!;
      assert.equal((await runCli(auditCommand, ['verify', '-c', configFile, '--expect-head', head])).code, 0);

      await fx.raw.query("UPDATE events SET meta = replace(meta, 'erased-user', 'someone-else') WHERE session_id = ? AND kind = 'session.start'", id);
      const failed = await runCli(auditCommand, ['verify', '-c', configFile]);
      assert.equal(failed.code, 1);
      assert.match(failed.out, new RegExp(`modified\\s+event \\d+ session ${id}`));
    });

    test('a bad config exits 78 and names the problem', async () => {
      const bad = join(dir, 'bad.yaml');
      await writeFile(bad, 'storage:\n  driver: postgres\n');
      const result = await runCli(sessionsCommand, ['list', '-c', bad]);
      assert.equal(result.code, 78);
      assert.match(result.err, /postgres/);
      await assert.rejects(runCli(auditCommand, ['check', '-c', configFile]), /only subcommand is "verify"/);
    });
  });
}
