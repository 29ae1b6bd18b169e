// `audit verify` against a database operator: every edit, deletion,
// insertion and reordering made with raw SQL is named; every legitimate
// redaction, deletion and retention sweep is not.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Recorder } from '../../src/audit/recorder.js';
import { eventHash, GENESIS_HASH, serializeMeta } from '../../src/audit/chain.js';
import { SessionArchive } from '../../src/audit/sessions.js';
import type { AuditStore } from '../../src/audit/store.js';
import { verify, verifySession, type Problem } from '../../src/audit/verify.js';
import { recordSession, recording, STORE_FIXTURES, type StoreFixture } from './fixtures.js';

for (const factory of STORE_FIXTURES) {
  describe(`audit verify on ${factory.driver}`, () => {
    let fx: StoreFixture;
    let store: AuditStore;
    let sessions: string[];

    const seqOf = async (sessionId: string, kind: string): Promise<number> =>
      Number((await fx.raw.query<{ seq: number }>('SELECT seq FROM events WHERE session_id = ? AND kind = ? ORDER BY seq LIMIT 1', sessionId, kind))[0]!.seq);
    const problems = async (): Promise<Problem[]> => {
      const result = await verify(store);
      assert.equal(result.ok, result.problems.length === 0);
      return result.problems;
    };

    before(async () => {
      fx = await factory.create();
      store = await fx.open();
    });
    after(async () => {
      await store.close();
      await fx.cleanup();
    });
    beforeEach(async () => {
      // A fresh trail for every test: the tampering of one must not leak into the next.
      for (const table of ['session_search', 'contents', 'events', 'sessions', 'session_groups']) await fx.raw.query(`DELETE FROM ${table}`);
      await fx.raw.query("UPDATE chain_head SET seq = 0, hash = '0000000000000000000000000000000000000000000000000000000000000000'");
      const recorder = await Recorder.open(store, recording());
      sessions = [];
      for (const subject of ['alice', 'bob', 'carol']) {
        sessions.push(await recordSession(recorder, { subject, prompt: `prompt of ${subject}`, decisions: [{ direction: 'input', action: 'flag', rule: 'custom.ticket', excerpt: 'TICKET-1' }] }));
      }
      await recorder.close({ closeStore: false });
      assert.deepEqual(await problems(), []);
    });

    test('per-session status: verified, broken at the tampered event, or unverifiable while open', async () => {
      for (const id of sessions) assert.equal((await verifySession(store, id)).status, 'verified', id);
      // A legitimate redaction keeps it verified.
      await new SessionArchive(store, recording()).redactSession(sessions[0]!, 'dpo');
      assert.equal((await verifySession(store, sessions[0]!)).status, 'verified');

      const edited = await seqOf(sessions[1]!, 'session.start');
      await fx.raw.query('UPDATE events SET content = ? WHERE session_id = ? AND n = 0', Buffer.from('{"messages":[{"role":"user","content":"innocent"}]}'), sessions[1]);
      const broken = await verifySession(store, sessions[1]!);
      assert.equal(broken.status, 'broken');
      assert.equal(broken.status === 'broken' && broken.seq, edited);
      assert.match(JSON.stringify(broken), /request as received/);

      const decision = await seqOf(sessions[2]!, 'decision');
      await fx.raw.query('DELETE FROM events WHERE seq = ?', decision);
      const gap = await verifySession(store, sessions[2]!);
      assert.equal(gap.status, 'broken');
      assert.equal(gap.status === 'broken' && gap.seq, decision, 'the missing event is named');

      const recorder = await Recorder.open(store, recording());
      const open = await recordSession(recorder, { subject: 'dave', end: false });
      assert.equal((await verifySession(store, open)).status, 'unverifiable');
      await recorder.close({ closeStore: false });
      assert.equal((await verifySession(store, 'no-such-session')).status, 'unverifiable');
    });

    test('per-session status catches a metadata edit and a forged row', async () => {
      const seq = await seqOf(sessions[0]!, 'session.end');
      await fx.raw.query("UPDATE events SET meta = replace(meta, '\"completed\"', '\"aborted\"') WHERE seq = ?", seq);
      const edited = await verifySession(store, sessions[0]!);
      assert.equal(edited.status === 'broken' && edited.seq, seq, JSON.stringify(edited));
      await fx.raw.query('UPDATE sessions SET legal_hold = 1 WHERE id = ?', sessions[1]);
      const forged = await verifySession(store, sessions[1]!);
      assert.equal(forged.status, 'broken');
      assert.match(JSON.stringify(forged), /legal_hold/);
      assert.equal((await verifySession(store, sessions[2]!)).status, 'verified', 'the others are untouched');
    });

    test('an edited prompt is named by event and session', async () => {
      const seq = await seqOf(sessions[1]!, 'session.start');
      await fx.raw.query('UPDATE events SET content = ? WHERE session_id = ? AND n = 0', Buffer.from(JSON.stringify({ messages: [{ role: 'user', content: 'something innocent' }] })), sessions[1]);
      const found = await problems();
      assert.equal(found.length, 1, JSON.stringify(found));
      assert.deepEqual({ ...found[0], detail: undefined }, { kind: 'modified', seq, sessionId: sessions[1], detail: undefined });
      assert.match(found[0]!.detail, /request as received/);
    });

    test('an edited prompt with its content hash "fixed up" is still caught', async () => {
      const seq = await seqOf(sessions[0]!, 'session.forwarded');
      await fx.raw.query("UPDATE events SET content_hash = 'f00d' WHERE seq = ?", seq);
      const found = await problems();
      assert.ok(found.some((p) => p.kind === 'modified' && p.seq === seq), JSON.stringify(found));
    });

    test('edited metadata (who sent it) is caught', async () => {
      const seq = await seqOf(sessions[0]!, 'session.start');
      await fx.raw.query("UPDATE events SET meta = replace(meta, '\"alice\"', '\"mallory\"') WHERE seq = ?", seq);
      const found = await problems();
      assert.ok(found.some((p) => p.kind === 'modified' && p.seq === seq && p.sessionId === sessions[0]), JSON.stringify(found));
    });

    test('a forged legal hold in the sessions table is caught', async () => {
      await fx.raw.query('UPDATE sessions SET legal_hold = 1 WHERE id = ?', sessions[2]);
      const found = await problems();
      assert.deepEqual(found.map((p) => [p.kind, p.sessionId]), [['modified', sessions[2]]]);
      assert.match(found[0]!.detail, /legal_hold/);
    });

    test('a deleted row is named', async () => {
      const seq = await seqOf(sessions[1]!, 'decision');
      await fx.raw.query('DELETE FROM events WHERE seq = ?', seq);
      const found = await problems();
      assert.ok(found.some((p) => p.kind === 'deleted' && p.seq === seq), JSON.stringify(found));
    });

    test('a deleted session (events, content and row) is caught', async () => {
      const [{ sid }] = (await fx.raw.query<{ sid: number }>('SELECT sid FROM sessions WHERE id = ?', sessions[1])) as [{ sid: number }];
      for (const table of ['events', 'contents', 'session_groups', 'sessions']) await fx.raw.query(`DELETE FROM ${table} WHERE sid = ?`, sid);
      const found = await problems();
      assert.ok(found.length > 0 && found.every((p) => p.kind === 'deleted'), JSON.stringify(found));
    });

    test('deleting the newest events is caught by the chain head', async () => {
      const last = await seqOf(sessions[2]!, 'session.end');
      await fx.raw.query('DELETE FROM events WHERE seq = ?', last);
      const found = await problems();
      assert.ok(found.some((p) => p.kind === 'deleted' && p.seq === last), JSON.stringify(found));
    });

    test('a reordered row is named', async () => {
      const a = await seqOf(sessions[1]!, 'decision');
      const b = a + 1;
      await fx.raw.query('UPDATE events SET seq = -1 WHERE seq = ?', a);
      await fx.raw.query('UPDATE events SET seq = ? WHERE seq = ?', a, b);
      await fx.raw.query('UPDATE events SET seq = ? WHERE seq = -1', b);
      const found = await problems();
      assert.ok(found.length > 0 && found.every((p) => p.kind === 'reordered'), JSON.stringify(found));
      assert.deepEqual(found.map((p) => p.seq).sort(), [a, b].sort());
    });

    test('an inserted row is caught', async () => {
      const [row] = await fx.raw.query<Record<string, unknown>>('SELECT * FROM events WHERE session_id = ? ORDER BY seq LIMIT 1', sessions[0]);
      const head = Number((await fx.raw.query<{ seq: number }>('SELECT max(seq) AS seq FROM events'))[0]!.seq);
      await fx.raw.query(
        'INSERT INTO events (seq, session_id, n, kind, at_ms, meta, content_hash, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
        head + 1, row!.session_id, 99, 'decision', row!.at_ms, '{"action":"allow"}', null, row!.hash, 'ab'.repeat(32),
      );
      const found = await problems();
      assert.ok(found.length > 0 && found.every((p) => p.kind === 'inserted' && p.seq === head + 1), JSON.stringify(found));
    });

    test('prompts swapped between two sessions are caught in both', async () => {
      const [a, b] = [sessions[0]!, sessions[1]!];
      const [contentA] = await fx.raw.query<{ content: Uint8Array }>('SELECT content FROM events WHERE session_id = ? AND n = 0', a);
      const [contentB] = await fx.raw.query<{ content: Uint8Array }>('SELECT content FROM events WHERE session_id = ? AND n = 0', b);
      await fx.raw.query('UPDATE events SET content = ? WHERE session_id = ? AND n = 0', Buffer.from(contentB!.content), a);
      await fx.raw.query('UPDATE events SET content = ? WHERE session_id = ? AND n = 0', Buffer.from(contentA!.content), b);
      const found = await problems();
      assert.deepEqual(found.map((p) => [p.kind, p.sessionId]).sort(), [['modified', a], ['modified', b]].sort());
    });

    test('passes after legitimate redactions, deletions, holds and retention; fails after an edit that follows them', async () => {
      const archive = new SessionArchive(store, recording({ retention: { default: '1d' } }));
      await archive.redactSession(sessions[0]!, 'test');
      await archive.redactPattern('TICKET-\\d+', { filter: {} }, 'test');
      await archive.setLegalHold(sessions[2]!, true, 'test', 'litigation');
      await archive.redactSubject('carol', undefined, 'test');
      assert.deepEqual(await problems(), []);

      const recorder = await Recorder.open(store, recording());
      const old = await recordSession(recorder, { subject: 'dave', receivedAt: Date.now() - 3 * 86_400_000 });
      const doomed = await recordSession(recorder, { subject: 'erin' });
      await recorder.close({ closeStore: false });
      assert.equal((await archive.sweepRetention()).deleted, 1);
      assert.equal(await store.getSession(old), undefined);
      assert.deepEqual((await archive.delete([doomed], 'test')).deleted, [doomed]);
      const result = await verify(store);
      assert.deepEqual(result.problems, []);

      const seq = await seqOf(sessions[0]!, 'session.start');
      await fx.raw.query('UPDATE events SET content = ? WHERE session_id = ? AND n = 0', Buffer.from('"[redacted] but edited"'), sessions[0]);
      const found = await problems();
      assert.deepEqual(found.map((p) => [p.kind, p.seq]), [['modified', seq]]);
    });

    test('a re-inserted deleted event is caught', async () => {
      const archive = new SessionArchive(store, recording());
      const [row] = await fx.raw.query<Record<string, unknown>>('SELECT * FROM events WHERE session_id = ? ORDER BY seq LIMIT 1', sessions[1]);
      await archive.delete([sessions[1]!], 'test');
      await fx.raw.query(
        'INSERT INTO events (seq, session_id, n, kind, at_ms, meta, content_hash, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
        row!.seq, row!.session_id, row!.n, row!.kind, row!.at_ms, row!.meta, row!.content_hash, row!.prev_hash, row!.hash,
      );
      const found = await problems();
      assert.ok(found.some((p) => p.kind === 'inserted' && p.seq === Number(row!.seq)), JSON.stringify(found));
    });

    test('--expect-head catches a chain rewritten from some point to the end', async () => {
      const { head } = await verify(store);
      assert.equal((await verify(store, { expectHead: head })).ok, true);

      // An operator with write access edits one event's meta and re-hashes every event after it, and the head.
      type Row = { seq: number; session_id: string; n: number; kind: string; at_ms: number; meta: string; content_hash: string | null; hash: string };
      const rows = await fx.raw.query<Row>('SELECT seq, session_id, n, kind, at_ms, meta, content_hash, hash FROM events ORDER BY seq');
      const from = Math.floor(rows.length / 2);
      let prev = from === 0 ? GENESIS_HASH : rows[from - 1]!.hash;
      for (const [i, row] of rows.entries()) {
        if (i < from) continue;
        const meta = i === from ? serializeMeta({ ...(JSON.parse(row.meta) as object), rewritten: true }) : row.meta;
        const rehashed = eventHash(prev, { seq: Number(row.seq), sessionId: row.session_id, n: Number(row.n), kind: row.kind, atMs: Number(row.at_ms), metaText: meta, contentHash: row.content_hash });
        await fx.raw.query('UPDATE events SET meta = ?, prev_hash = ?, hash = ? WHERE seq = ?', meta, prev, rehashed, row.seq);
        prev = rehashed;
      }
      await fx.raw.query('UPDATE chain_head SET hash = ?', prev);

      assert.deepEqual(await problems(), [], 'the rewrite is self-consistent: without an outside anchor nothing is wrong');
      const anchored = await verify(store, { expectHead: head });
      assert.equal(anchored.ok, false, 'the head recorded before the rewrite no longer matches');
    });
  });
}
