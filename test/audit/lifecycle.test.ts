// Retention, legal hold, redaction, encryption, search and export on both
// stores, checked both through the archive and in the raw database.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Recorder } from '../../src/audit/recorder.js';
import { RetentionJob } from '../../src/audit/retention.js';
import { SearchUnavailableError, SessionArchive } from '../../src/audit/sessions.js';
import { SessionStateError, type AuditStore } from '../../src/audit/store.js';
import { verify } from '../../src/audit/verify.js';
import { KEY_A, KEY_B, recordSession, recording, sseChunk, STORE_FIXTURES, type StoreFixture } from './fixtures.js';

const DAY = 86_400_000;

for (const factory of STORE_FIXTURES) {
  describe(`session lifecycle on ${factory.driver}`, () => {
    let fx: StoreFixture;
    let store: AuditStore;
    before(async () => {
      fx = await factory.create();
      store = await fx.open();
    });
    after(async () => {
      await store.close();
      await fx.cleanup();
    });

    /** Every stored content byte of the database, as text: what an operator with SQL access can read. */
    const rawContent = async (): Promise<string> => {
      const rows = [
        ...(await fx.raw.query<{ data: Uint8Array }>('SELECT content AS data FROM events WHERE content IS NOT NULL')),
        ...(await fx.raw.query<{ data: Uint8Array }>('SELECT data FROM contents')),
      ];
      return rows.map((r) => Buffer.from(r.data).toString('utf8')).join('\n');
    };

    test('retention deletes exactly the expired sessions, per connection, and keeps legal holds and open sessions', async () => {
      const connections = new Map([
        ['short', { retention: 2 * DAY }],
        ['forever', { retention: null }],
      ]);
      const config = recording({ retention: { default: '30d', batch_size: 2 } });
      const recorder = await Recorder.open(store, config, { connections });
      const now = Date.now();
      const at = (days: number): number => now - days * DAY;
      const expired = [
        await recordSession(recorder, { subject: 'ret', receivedAt: at(40) }),
        await recordSession(recorder, { subject: 'ret', receivedAt: at(31) }),
        await recordSession(recorder, { subject: 'ret', receivedAt: at(3), connection: 'short' }),
        await recordSession(recorder, { subject: 'ret', receivedAt: at(100), connection: 'short' }),
        await recordSession(recorder, { subject: 'ret', receivedAt: at(50), end: 'upstream_failed' }),
      ];
      const kept = [
        await recordSession(recorder, { subject: 'ret', receivedAt: at(29) }),
        await recordSession(recorder, { subject: 'ret', receivedAt: at(1), connection: 'short' }),
        await recordSession(recorder, { subject: 'ret', receivedAt: at(400), connection: 'forever' }),
        await recordSession(recorder, { subject: 'ret', receivedAt: at(45), end: false }),
      ];
      const held = await recordSession(recorder, { subject: 'ret', receivedAt: at(60) });
      const archive = new SessionArchive(store, config, connections);
      await archive.setLegalHold(held, true, 'legal', 'case 42');
      kept.push(held);

      const result = await archive.sweepRetention();
      assert.equal(result.deleted, expired.length);
      assert.ok(result.batches >= 3, `batches of 2: ${result.batches}`);
      for (const id of expired) assert.equal(await store.getSession(id), undefined, `${id} expired`);
      for (const id of kept) assert.ok(await store.getSession(id), `${id} kept`);
      assert.equal((await fx.raw.query('SELECT seq FROM events WHERE session_id IN (?, ?)', expired[0], expired[3])).length, 0, 'their events are gone');
      assert.equal((await archive.sweepRetention()).deleted, 0, 'a second sweep finds nothing');

      await assert.rejects(archive.redactSession(held, 'someone'), (err: unknown) => err instanceof SessionStateError && err.reason === 'legal_hold');
      assert.deepEqual((await archive.delete([held], 'someone')).held, [held]);
      await archive.setLegalHold(held, false, 'legal', 'case closed');
      assert.equal((await archive.sweepRetention()).deleted, 1, 'released: now it expires');
      await recorder.close({ closeStore: false });
      assert.deepEqual((await verify(store)).problems, []);
    });

    test('the retention job sweeps on its interval', async () => {
      const config = recording({ retention: { default: '1d', sweep_interval: '30ms', batch_size: 1 } });
      const recorder = await Recorder.open(store, config);
      const old = await recordSession(recorder, { subject: 'job', receivedAt: Date.now() - 2 * DAY });
      await recorder.close({ closeStore: false });
      const job = new RetentionJob(new SessionArchive(store, config)).start();
      try {
        for (let i = 0; i < 100 && (await store.getSession(old)); i++) await new Promise((r) => setTimeout(r, 20));
        assert.equal(await store.getSession(old), undefined);
      } finally {
        await job.stop();
      }
    });

    test('redaction by subject removes that subject\'s content everywhere and keeps metadata', async () => {
      const secret = 'ZEBRA-7731-SECRET';
      const recorder = await Recorder.open(store, recording());
      const victim = [
        await recordSession(recorder, {
          subject: 'erasure-me',
          prompt: `my code is ${secret}`,
          forwardedPrompt: 'my code is [MASKED]',
          reply: ['You said ', secret, '.'],
          decisions: [{ direction: 'input', action: 'mask', rule: 'custom.code', excerpt: secret }],
          approval: { outcome: 'approved', review_id: 'rev_test', approver: 'boss', comment: `ok to send ${secret}` },
        }),
        await recordSession(recorder, { subject: 'erasure-me', prompt: `again ${secret}` }),
      ];
      const bystander = await recordSession(recorder, { subject: 'bystander', prompt: `unrelated ${secret}` });
      await recorder.close({ closeStore: false });
      const archive = new SessionArchive(store, recording());

      const outcome = await archive.redactSubject('erasure-me', 'https://idp.example', 'dpo', 'GDPR art. 17 request #9');
      assert.deepEqual(outcome.redacted.sort(), [...victim].sort());
      for (const id of victim) {
        const detail = (await archive.show(id))!;
        const text = JSON.stringify(detail);
        assert.ok(!text.includes(secret), 'no trace through the archive');
        assert.equal(detail.session.subject, 'erasure-me', 'metadata stays');
        assert.equal(detail.session.redacted, true);
        assert.equal(detail.request.body, '[redacted]');
      }
      const first = (await archive.show(victim[0]!))!;
      assert.deepEqual(first.response.chunks.map((c) => c.offset_ms), [10, 20, 30], 'chunk timing survives redaction');
      // Each chunk's text is emptied, wherever its batch is stored (here, with the end): still a batch of chunks.
      assert.deepEqual(first.response.chunks.map((c) => c.raw), [null, null, null]);
      assert.equal(first.response.error, undefined);
      assert.equal(first.decisions[0]!.excerpt_text, '[redacted]');
      assert.equal(first.approvals[0]!.comment_text, '[redacted]');
      assert.ok(first.events.some((e) => e.kind === 'redaction' && JSON.stringify(e.meta).includes('GDPR')));

      const raw = await rawContent();
      assert.equal(raw.split(secret).length - 1, 1, 'only the bystander\'s copy remains in the database');
      assert.ok(JSON.stringify((await archive.show(bystander))!.request.body).includes(secret));
      if (fx.driver === 'sqlite') {
        // secure_delete and a WAL checkpoint: no copy left in free pages or the WAL either.
        const dir = dirname(fx.storage.sqlite.path);
        let copies = 0;
        for (const file of await readdir(dir)) copies += (await readFile(join(dir, file))).toString('latin1').split(secret).length - 1;
        assert.equal(copies, 1, 'the database files hold only the bystander\'s copy');
      }
      assert.deepEqual((await verify(store)).problems, []);
    });

    test('redaction by pattern keeps JSON and SSE framing valid', async () => {
      const recorder = await Recorder.open(store, recording());
      const id = await recordSession(recorder, { subject: 'pattern', prompt: 'SSN 123-45-6789 and "quotes"', reply: ['Your SSN is ', '123-45-6789', ', right?'] });
      await recorder.close({ closeStore: false });
      const archive = new SessionArchive(store, recording());
      const outcome = await archive.redactPattern('\\d{3}-\\d{2}-\\d{4}', { filter: { subject: 'pattern' } }, 'dpo');
      assert.deepEqual(outcome.redacted, [id]);
      const detail = (await archive.show(id))!;
      assert.deepEqual(detail.request.body, { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'SSN [redacted] and "quotes"' }] });
      assert.equal(detail.response.text, 'Your SSN is [redacted], right?');
      assert.ok(detail.response.chunks.every((c) => c.raw!.startsWith('data: {') && c.raw!.endsWith('\n\n')));
      await assert.rejects(archive.redactPattern('(unclosed', { ids: [id] }, 'dpo'), SyntaxError);
      assert.deepEqual((await verify(store)).problems, []);
    });

    test('encrypted bodies are unreadable in the database, readable through the archive, and survive key rotation', async () => {
      const marker = 'PLAINTEXT-CANARY-4411';
      const before = await Recorder.open(store, recording({ encryption: { keys: [KEY_A] } }));
      const old = await recordSession(before, { subject: 'crypto', prompt: `old ${marker}`, reply: [marker], decisions: [{ direction: 'output', action: 'flag', rule: 'x', excerpt: marker }] });
      await before.close({ closeStore: false });
      const rotated = recording({ encryption: { keys: [KEY_B, KEY_A] } });
      const after = await Recorder.open(store, rotated);
      const fresh = await recordSession(after, { subject: 'crypto', prompt: `new ${marker}` });
      await after.close({ closeStore: false });

      assert.ok(!(await rawContent()).includes(marker), 'no plaintext anywhere in the database');
      const keys = await fx.raw.query<{ session_id: string; key_id: string }>('SELECT DISTINCT session_id, key_id FROM events WHERE key_id IS NOT NULL AND session_id IN (?, ?)', old, fresh);
      assert.deepEqual(keys.filter((k) => k.session_id === old).map((k) => k.key_id), [KEY_A.id]);
      assert.deepEqual(keys.filter((k) => k.session_id === fresh).map((k) => k.key_id), [KEY_B.id]);

      const archive = new SessionArchive(store, rotated);
      assert.match(JSON.stringify((await archive.show(old))!.request.body), new RegExp(`old ${marker}`));
      assert.equal((await archive.show(old))!.response.text, marker);
      assert.match(JSON.stringify((await archive.show(fresh))!.request.body), new RegExp(`new ${marker}`));
      await assert.rejects(archive.list({ subject: 'crypto', text: marker.toLowerCase() }), SearchUnavailableError, 'encrypted content is never searched');

      const withoutOldKey = new SessionArchive(store, recording({ encryption: { keys: [KEY_B] } }));
      assert.match((await withoutOldKey.show(old))!.request.error ?? '', /key "k2025"/);
      const withoutKeys = new SessionArchive(store, recording());
      assert.match((await withoutKeys.show(fresh))!.request.error ?? '', /not configured/);

      // Ciphertext moved into another session fails authentication, not just the hash.
      // The edit is undone afterwards: the other tests verify this store's chain.
      type Sealed = { key_id: string; nonce: Uint8Array; content: Uint8Array };
      const [moved] = await fx.raw.query<Sealed>('SELECT key_id, nonce, content FROM events WHERE session_id = ? AND n = 0', old);
      const [original] = await fx.raw.query<Sealed>('SELECT key_id, nonce, content FROM events WHERE session_id = ? AND n = 0', fresh);
      const seal = (row: Sealed) => fx.raw.query('UPDATE events SET key_id = ?, nonce = ?, content = ? WHERE session_id = ? AND n = 0', row.key_id, Buffer.from(row.nonce), Buffer.from(row.content), fresh);
      await seal(moved!);
      try {
        assert.match((await archive.show(fresh))!.request.error ?? '', /failed authentication/);
      } finally {
        await seal(original!);
      }
      assert.deepEqual((await verify(store)).problems, []);
    });

    test('list filters by user, group, connection, model, time, decision and text, with pagination', async () => {
      const recorder = await Recorder.open(store, recording());
      const t0 = Date.now() - 10 * 60_000;
      const ids = {
        blocked: await recordSession(recorder, { subject: 'flt-ann', groups: ['sales'], receivedAt: t0, decisions: [{ direction: 'input', action: 'block', rule: 'secret.aws' }], end: 'refused' }),
        masked: await recordSession(recorder, { subject: 'flt-ann', groups: ['sales', 'emea'], receivedAt: t0 + 1000, connection: 'gpu', decisions: [{ direction: 'output', action: 'mask', rule: 'pii.email' }] }),
        approved: await recordSession(recorder, { subject: 'flt-ben', groups: ['emea'], receivedAt: t0 + 2000, model: 'big-model', approval: { outcome: 'approved', review_id: 'rev_test2', approver: 'lead' } }),
        plain: await recordSession(recorder, { subject: 'flt-ben', groups: ['ops'], receivedAt: t0 + 3000, prompt: 'the quick brown fox', reply: ['jumps ', 'over'] }),
      };
      await recorder.close({ closeStore: false });
      const archive = new SessionArchive(store, recording());
      const ids_ = async (filter: Parameters<SessionArchive['list']>[0]): Promise<string[]> => (await archive.list({ since: t0, until: t0 + 60_000, ...filter })).sessions.map((s) => s.id);

      assert.deepEqual(await ids_({ user: 'flt-ann' }), [ids.masked, ids.blocked], 'newest first');
      assert.deepEqual(await ids_({ user: 'flt-ben@example.com' }), [ids.plain, ids.approved], 'by email too');
      assert.deepEqual(await ids_({ group: 'emea' }), [ids.approved, ids.masked]);
      assert.deepEqual(await ids_({ connection: 'gpu' }), [ids.masked]);
      assert.deepEqual(await ids_({ model: 'big-model' }), [ids.approved]);
      assert.deepEqual(await ids_({ decision: 'blocked' }), [ids.blocked]);
      assert.deepEqual(await ids_({ decision: 'masked' }), [ids.masked]);
      assert.deepEqual(await ids_({ decision: 'approved' }), [ids.approved]);
      assert.deepEqual(await ids_({ since: t0 + 1000, until: t0 + 3000 }), [ids.approved, ids.masked]);
      assert.deepEqual(await ids_({ text: 'QUICK BROWN' }), [ids.plain], 'in the prompt, case-insensitively');
      assert.deepEqual(await ids_({ text: 'jumps over' }), [ids.plain], 'in the response, across chunks');
      assert.deepEqual(await ids_({ state: 'refused' }), [ids.blocked]);

      const first = await archive.list({ since: t0, user: 'flt-ann', limit: 1 });
      assert.deepEqual(first.sessions.map((s) => s.id), [ids.masked]);
      const second = await archive.list({ since: t0, user: 'flt-ann', limit: 1, cursor: first.next });
      assert.deepEqual(second.sessions.map((s) => s.id), [ids.blocked]);
      assert.equal(second.next, undefined);
    });

    test('export streams every event since a time as SIEM records', async () => {
      const recorder = await Recorder.open(store, recording());
      const since = Date.now();
      const id = await recordSession(recorder, { subject: 'siem', prompt: 'export me' });
      await recorder.close({ closeStore: false });
      const archive = new SessionArchive(store, recording());
      const records = [];
      for await (const r of archive.export({ since })) records.push(r);
      const mine = records.filter((r) => r.session_id === id);
      // The answer's last (here only) batch of chunks is stored with the end: one event fewer per session.
      assert.deepEqual(mine.map((r) => r.kind), ['session.start', 'session.forwarded', 'session.end']);
      assert.deepEqual((mine[2]!.meta as { chunks?: { offsets: number[] } }).chunks?.offsets, [10, 20, 30]);
      assert.deepEqual(mine[2]!.content, ['Hello', ' there', '!'].map(sseChunk), 'its content is the chunks, as a batch gives them');
      assert.equal(mine[0]!.user?.subject, 'siem');
      assert.deepEqual((mine[0]!.content as { messages: unknown[] }).messages, [{ role: 'user', content: 'export me' }]);
      assert.match(mine[0]!.hash, /^[0-9a-f]{64}$/);
      const metadataOnly = [];
      for await (const r of archive.export({ since, content: false })) metadataOnly.push(r);
      assert.ok(metadataOnly.every((r) => r.content === undefined));
      const later = [];
      for await (const r of archive.export({ since: Date.now() + 60_000 })) later.push(r);
      assert.equal(later.length, 0);
    });
  });
}
