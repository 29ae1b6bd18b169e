// Recorder semantics on both stores: what is recorded, when it is durable,
// that group commit batches, that it fails closed, and crash recovery.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { storageSchema } from '../../src/audit/config.js';
import { Recorder } from '../../src/audit/recorder.js';
import { SessionArchive } from '../../src/audit/sessions.js';
import { openStore, StorageUnavailableError } from '../../src/audit/store.js';
import { verify } from '../../src/audit/verify.js';
import type { NewEvent } from '../../src/audit/events.js';
import type { WorkerStore } from '../../src/audit/worker-store.js';
import { STORE_THREAD_NAME } from '../../src/audit/store-worker.js';
import { GatewayError } from '../../src/http/errors.js';
import type { Worker } from 'node:worker_threads';
import { chatBody, KEY_A, principal, recordSession, recording, requestId, sseChunk, STORE_FIXTURES, type StoreFixture } from './fixtures.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const promptOfBody = (body: Record<string, unknown>): Array<{ role: string; text: string }> =>
  (body.messages as Array<{ role: string; content: string }>).map((m) => ({ role: m.role, text: m.content }));

for (const factory of STORE_FIXTURES) {
  describe(`recording on ${factory.driver}`, () => {
    let fx: StoreFixture;
    before(async () => {
      fx = await factory.create();
    });
    after(async () => {
      await fx.cleanup();
    });

    test('a streamed session is recorded and replays with its chunk timing', async () => {
      const store = await fx.open();
      const recorder = await Recorder.open(store, recording());
      const id = requestId();
      const writer = await recorder.beginSession({
        id,
        receivedAt: Date.now(),
        principal: principal('alice', ['engineering', 'ml']),
        clientIp: '192.0.2.10',
        userAgent: 'openai-python/1.0',
        connection: 'local',
        model: 'demo-chat',
        operation: 'chat',
        stream: true,
        requestBody: chatBody('My email is alice@example.com'),
      });
      writer.decision({ direction: 'input', action: 'mask', rule: 'pii.email', entity: 'EMAIL', field: 'messages[0].content', span: { start: 12, end: 29 }, excerpt: 'alice@example.com' });
      await writer.forwarded(chatBody('My email is [EMAIL]'), 'demo-chat-v2');
      const offsets = [120, 180, 460];
      ['Hello', ' Alice', '!'].forEach((t, i) => writer.chunk(sseChunk(t), offsets[i]!));
      writer.chunk('data: [DONE]\n\n', 470);
      await writer.end({ state: 'completed', status: 200, latencyMs: 475, usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 } });
      await recorder.close({ closeStore: false });

      const archive = new SessionArchive(store, recording());
      const detail = (await archive.show(id))!;
      assert.equal(detail.session.state, 'completed');
      assert.equal(detail.session.subject, 'alice');
      assert.deepEqual(detail.session.groups, ['engineering', 'ml']);
      assert.equal(detail.session.client_ip, '192.0.2.10');
      assert.equal(detail.session.user_agent, 'openai-python/1.0');
      assert.equal(detail.session.masked, true);
      assert.equal(detail.session.ttft_ms, 120, 'time to first token defaults to the first chunk offset');
      assert.equal(detail.session.total_tokens, 10);
      assert.deepEqual(detail.request.body, chatBody('My email is alice@example.com'));
      assert.deepEqual(detail.forwarded?.body, chatBody('My email is [EMAIL]'));
      assert.equal(detail.forwarded?.upstream_model, 'demo-chat-v2');
      assert.equal(detail.decisions[0]?.excerpt_text, 'alice@example.com');
      assert.deepEqual(detail.decisions[0]?.span, { start: 12, end: 29 });
      assert.equal(detail.response.text, 'Hello Alice!');

      const replay = (await archive.replay(id))!;
      assert.deepEqual(replay.prompt, [{ role: 'user', text: 'My email is [EMAIL]' }]);
      assert.deepEqual(replay.chunks.map((c) => c.offset_ms), [120, 180, 460, 470]);
      assert.deepEqual(replay.chunks.map((c) => c.text), ['Hello', ' Alice', '!', '']);
      assert.equal(replay.chunks[3]!.raw, 'data: [DONE]\n\n', 'chunks are stored exactly as delivered');
      assert.equal((await verify(store)).ok, true);
      await store.close();
    });

    test('events cross to the store thread intact: content of several parts, non-ASCII text, encrypted or not', async () => {
      // The gateway's path: events packed into one message for the worker thread and unpacked there (store-worker.ts).
      const prompt = `Résumé 東京 ${'x'.repeat(70_000)} ✓`;
      const reply = ['Grüße', ' 👋', '!'];
      for (const config of [recording(), recording({ encryption: { keys: [KEY_A] } })]) {
        const store = await fx.open('worker');
        const recorder = await Recorder.open(store, config);
        const id = await recordSession(recorder, { prompt, forwardedPrompt: `${prompt} (masked)`, reply });
        await recorder.close({ closeStore: false });
        await store.close();
        const check = await fx.open();
        const detail = (await new SessionArchive(check, config).show(id))!;
        assert.deepEqual(detail.request.body, chatBody(prompt), 'the request, stored in two parts (chunk_bytes 64 KB), reads back byte for byte');
        assert.deepEqual(detail.forwarded?.body, chatBody(`${prompt} (masked)`));
        assert.equal(detail.response.text, reply.join(''));
        assert.deepEqual((await verify(check)).problems, [], 'content hashes computed on the store thread match the content stored');
        await check.close();
      }
    });

    test('a session\'s end changes no indexed column: PostgreSQL updates its row in place (HOT), with no index entry', { skip: factory.driver !== 'postgres' }, async () => {
      type Counts = { upd: string; hot: string };
      const counts = async (): Promise<{ upd: number; hot: number }> => {
        const [row] = await fx.raw.query<Counts>("SELECT n_tup_upd AS upd, n_tup_hot_upd AS hot FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = 'sessions'");
        return { upd: Number(row!.upd), hot: Number(row!.hot) };
      };
      const before = await counts();
      const store = await fx.open();
      const recorder = await Recorder.open(store, recording());
      // Each end commits apart from its start here, so it is an UPDATE of the row (not folded into its insert).
      for (let i = 0; i < 20; i++) await recordSession(recorder, { subject: `hot-${i}` });
      await recorder.close();
      // The pool's backends report their counts as they exit.
      let after = await counts();
      for (let i = 0; i < 100 && after.upd - before.upd < 20; i++) {
        await new Promise((r) => setTimeout(r, 50));
        after = await counts();
      }
      assert.ok(after.upd - before.upd >= 20, `the ends were counted (${after.upd - before.upd} updates)`);
      assert.equal(after.hot - before.hot, after.upd - before.upd, 'every update of a session row was HOT');
    });

    test('under load, session ends still stay on their page (HOT): each sessions page keeps room for its rows\' ends', { skip: factory.driver !== 'postgres' }, async () => {
      // A fresh trail of its own, so the pages counted are filled by this test alone.
      const own = await factory.create();
      try {
        const store = await own.open();
        const recorder = await Recorder.open(store, recording());
        // 50 at a time, as a busy gateway records them: a group commit inserts many rows, a later one ends them.
        for (let round = 0; round < 8; round++) await Promise.all(Array.from({ length: 50 }, (_, i) => recordSession(recorder, { subject: `load-${round}-${i}` })));
        await recorder.close();
        const counts = async (): Promise<{ upd: number; hot: number }> => {
          const [row] = await own.raw.query<{ upd: string; hot: string }>("SELECT n_tup_upd AS upd, n_tup_hot_upd AS hot FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = 'sessions'");
          return { upd: Number(row!.upd), hot: Number(row!.hot) };
        };
        let after = await counts();
        for (let i = 0; i < 100 && after.upd < 400; i++) {
          await new Promise((r) => setTimeout(r, 50));
          after = await counts();
        }
        assert.ok(after.upd >= 400, `the ends were counted (${after.upd} updates)`);
        // Not every one: a row longer than the room left on its page moves. With fillfactor 80 a third were HOT.
        assert.ok(after.hot >= 0.8 * after.upd, `${after.hot} of ${after.upd} ends were HOT`);
      } finally {
        await own.cleanup();
      }
    });

    test('while the trail is young, the store refreshes the planner\'s statistics of sessions as it grows', { skip: factory.driver !== 'postgres' }, async () => {
      // A prepared batch statement planned while `sessions` was small would scan the whole table at every commit.
      const own = await factory.create();
      try {
        const reltuples = async (): Promise<number> =>
          Number((await own.raw.query<{ n: string }>("SELECT reltuples AS n FROM pg_class WHERE oid = 'sessions'::regclass"))[0]!.n);
        assert.equal(await reltuples(), -1, 'a new table has never been analyzed');
        const store = await own.open();
        const recorder = await Recorder.open(store, recording());
        // 400 sessions of 3 events: past 1,024 events, the first refresh.
        for (let round = 0; round < 8; round++) await Promise.all(Array.from({ length: 50 }, () => recordSession(recorder)));
        let seen = await reltuples();
        for (let i = 0; i < 100 && seen < 0; i++) {
          await new Promise((r) => setTimeout(r, 50));
          seen = await reltuples();
        }
        await recorder.close();
        assert.ok(seen >= 200, `sessions was analyzed (reltuples ${seen})`);
      } finally {
        await own.cleanup();
      }
    });

    test('a forwarded body with members changed, added or dropped stores only those, and reads back as forwarded', async () => {
      const store = await fx.open();
      const recorder = await Recorder.open(store, recording());
      const forward = async (received: Record<string, unknown>, forwarded: Record<string, unknown>): Promise<string> => {
        const id = requestId();
        const writer = await recorder.beginSession({ id, receivedAt: Date.now(), principal: principal(), connection: 'local', model: 'demo-chat', operation: 'chat', stream: true, requestBody: received });
        await writer.forwarded(forwarded, 'demo-chat-v2');
        writer.chunk(sseChunk('Hi'), 5, 'Hi');
        await writer.end({ state: 'completed', status: 200, latencyMs: 9 });
        return id;
      };
      const received: Record<string, unknown> = { ...chatBody('Call 555-0100 about Kestrel'), temperature: 0.2, logprobs: true };
      // The gateway asks for usage: the received body's members plus stream_options (the pipeline spreads it).
      const withUsage = { ...received, stream_options: { include_usage: true } };
      // Masking clones the body; a bypass parameter dropped.
      const masked = structuredClone(received);
      (masked.messages as Array<{ content: string }>)[0]!.content = 'Call [PHONE] about Kestrel';
      const { logprobs: _dropped, ...withoutLogprobs } = masked;
      const ids = [await forward(received, withUsage), await forward(received, withoutLogprobs), await forward(received, { ...received })];
      await recorder.close({ closeStore: false });

      const stored = async (id: string): Promise<{ meta: Record<string, unknown>; content: string | null }> => {
        const [row] = await fx.raw.query<{ meta: string; content: Uint8Array | null }>("SELECT meta, content FROM events WHERE session_id = ? AND kind = 'session.forwarded'", id);
        return { meta: JSON.parse(row!.meta) as Record<string, unknown>, content: row!.content && Buffer.from(row!.content).toString('utf8') };
      };
      assert.equal((await stored(ids[0]!)).content, '{"stream_options":{"include_usage":true}}', 'only what the gateway added is stored again');
      assert.deepEqual((await stored(ids[1]!)).meta.removed, ['logprobs']);
      assert.deepEqual(await stored(ids[2]!), { meta: { upstream_model: 'demo-chat-v2', same_as_request: true }, content: null }, 'the same members: nothing stored');

      const archive = new SessionArchive(store, recording());
      for (const [id, forwarded] of [[ids[0]!, withUsage], [ids[1]!, withoutLogprobs], [ids[2]!, received]] as Array<[string, Record<string, unknown>]>) {
        const detail = (await archive.show(id))!;
        assert.deepEqual(detail.request.body, received, id);
        assert.deepEqual(detail.forwarded?.body, forwarded, id);
        assert.equal(detail.forwarded?.upstream_model, 'demo-chat-v2');
        assert.deepEqual((await archive.replay(id))!.prompt, promptOfBody(forwarded));
      }
      assert.deepEqual((await archive.list({ text: 'PHONE' })).sessions.map((s) => s.id), [ids[1]], 'the changed members are indexed as forwarded');
      await archive.redactPattern('Kestrel', { ids: [ids[1]!] }, 'dpo');
      const redacted = (await archive.show(ids[1]!))!;
      assert.match(JSON.stringify(redacted.forwarded?.body), /\[redacted\]/);
      assert.doesNotMatch(JSON.stringify(redacted), /Kestrel/);
      assert.deepEqual((await verify(store)).problems, []);
      await store.close();
    });

    test('beginSession resolves only once the start is committed, visible to another connection', async () => {
      const store = await fx.open('worker');
      const recorder = await Recorder.open(store, recording({ commit_interval: '40ms' }));
      const id = requestId();
      const started = performance.now();
      let resolved = false;
      const pending = recorder
        .beginSession({ id, receivedAt: Date.now(), principal: principal(), connection: 'local', model: 'demo-chat', operation: 'chat', stream: false, requestBody: chatBody('x', false), forwardedBody: chatBody('x', false) })
        .then((w) => ((resolved = true), w));
      await new Promise((r) => setTimeout(r, 15));
      assert.equal(resolved, false, 'not resolved inside the commit window');
      assert.equal((await fx.raw.query('SELECT id FROM sessions WHERE id = ?', id)).length, 0);
      const writer = await pending;
      assert.ok(performance.now() - started >= 35);
      const rows = await fx.raw.query<{ kind: string }>('SELECT kind FROM events WHERE session_id = ? ORDER BY seq', id);
      assert.deepEqual(rows.map((r) => r.kind), ['session.start', 'session.forwarded'], 'request as received and as forwarded are durable before forwarding');
      await writer.end({ state: 'completed', status: 200, latencyMs: 5 });
      await recorder.close();
    });

    test('group commit: 50 concurrent sessions share a handful of transactions', async (t) => {
      const store = await fx.open();
      const recorder = await Recorder.open(store, recording({ commit_interval: '2ms' }));
      const before = store.transactions;
      const started = performance.now();
      const writers = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          recorder.beginSession({ id: requestId(), receivedAt: Date.now(), principal: principal(`user${i}`), connection: 'local', model: 'demo-chat', operation: 'chat', stream: true, requestBody: chatBody(`q${i}`), forwardedBody: chatBody(`q${i}`) }),
        ),
      );
      const elapsed = performance.now() - started;
      const transactions = store.transactions - before;
      t.diagnostic(`${factory.driver}: 50 durable begins in ${elapsed.toFixed(1)} ms using ${transactions} transaction(s) (largest: ${recorder.stats.largestCommit} events)`);
      assert.ok(transactions >= 1 && transactions <= 5, `expected a few transactions, got ${transactions}`);
      await Promise.all(writers.map((w) => w.end({ state: 'completed', status: 200, latencyMs: 1 })));
      await recorder.close();
    });

    test('chunks are buffered per session and flushed when they pass chunk_bytes', async () => {
      const store = await fx.open();
      const recorder = await Recorder.open(store, recording({ chunk_bytes: 1024, chunk_flush_interval: '1h' }));
      const id = await recordSession(recorder, { reply: Array.from({ length: 100 }, (_, i) => `token${i} `) });
      const batches = await fx.raw.query<{ meta: string }>("SELECT meta FROM events WHERE session_id = ? AND kind = 'response.chunks' ORDER BY seq", id);
      assert.ok(batches.length >= 5, `100 chunks of ~100 bytes in 1 KiB batches: ${batches.length}`);
      const firsts = batches.map((b) => (JSON.parse(b.meta) as { first: number }).first);
      assert.deepEqual(firsts, [...firsts].sort((a, b) => a - b));
      const detail = await new SessionArchive(store, recording()).show(id);
      assert.equal(detail!.response.chunks.length, 100);
      assert.equal(detail!.response.text, Array.from({ length: 100 }, (_, i) => `token${i} `).join(''));
      await recorder.close();
    });

    test('bodies beyond max_body_bytes are truncated with a marker; bodies off keeps metadata only', async () => {
      const store = await fx.open();
      const recorder = await Recorder.open(store, recording({ max_body_bytes: 200, chunk_bytes: 64 }), { connections: new Map([['metadata-only', { bodies: false }]]) });
      const big = await recordSession(recorder, { prompt: 'é'.repeat(500), reply: Array.from({ length: 10 }, () => 'x'.repeat(40)) });
      const quiet = await recordSession(recorder, { connection: 'metadata-only', prompt: 'do not keep this', decisions: [{ direction: 'input', action: 'block', rule: 'secret.aws', excerpt: 'AKIA...' }] });
      await recorder.close({ closeStore: false });
      const archive = new SessionArchive(store, recording());
      const detail = (await archive.show(big))!;
      assert.equal(detail.request.info?.truncated, true);
      assert.ok(detail.request.info!.stored_bytes <= 200 && detail.request.info!.bytes > 1000);
      assert.equal(typeof detail.request.body, 'string', 'a truncated JSON body is shown as text');
      assert.ok(!(detail.request.body as string).includes('\ufffd'), 'truncation does not split a UTF-8 character');
      const parts = await fx.raw.query<{ part: number }>('SELECT part FROM contents WHERE sid = (SELECT sid FROM sessions WHERE id = ?) AND n = 0 ORDER BY part', big);
      assert.deepEqual(parts.map((p) => p.part), [1, 2, 3], 'a 200-byte body in 64-byte parts, the first inline');
      assert.deepEqual(detail.forwarded?.body, detail.request.body, 'an unchanged forwarded body is shown...');
      const [forwarded] = await fx.raw.query<{ content: unknown; meta: string }>("SELECT content, meta FROM events WHERE session_id = ? AND kind = 'session.forwarded'", big);
      assert.equal(forwarded!.content, null, '...but stored once');
      assert.match(forwarded!.meta, /same_as_request/);
      assert.equal(detail.response.truncated, true);
      assert.equal(detail.response.chunks.length, 10, 'every chunk keeps its timing');
      assert.ok(detail.response.chunks.some((c) => c.raw === null));

      const metadataOnly = (await archive.show(quiet))!;
      assert.equal(metadataOnly.session.bodies, false);
      assert.equal(metadataOnly.session.blocked, true);
      assert.equal(metadataOnly.request.body, undefined);
      assert.equal(metadataOnly.decisions[0]?.excerpt_text, undefined);
      assert.equal(metadataOnly.response.chunks.length, 3);
      assert.equal((await fx.raw.query('SELECT n FROM contents WHERE sid = (SELECT sid FROM sessions WHERE id = ?)', quiet)).length, 0, 'no content rows at all');
      assert.equal((await fx.raw.query('SELECT n FROM events WHERE session_id = ? AND content IS NOT NULL', quiet)).length, 0, 'no inline content either');
      assert.equal((await verify(store)).ok, true);
      await store.close();
    });

    test('storage down: begin fails with a clear 503 and nothing is forwarded; a failure mid-stream aborts the writer', async () => {
      const proxy = await startTcpProxy(fx);
      const storage = fx.driver === 'postgres' ? storageSchema.parse({ ...fx.storage, postgres: { ...fx.storage.postgres, url: proxy.url, connect_timeout: '1s' } }) : fx.storage;
      const store = await openStore(storage, { thread: 'worker' });
      const recorder = await Recorder.open(store, recording());
      const streaming = await recorder.beginSession({ id: requestId(), receivedAt: Date.now(), principal: principal(), connection: 'local', model: 'demo-chat', operation: 'chat', stream: true, requestBody: chatBody('a'), forwardedBody: chatBody('a') });
      const told: GatewayError[] = [];
      streaming.onFailure((failure) => told.push(failure));

      // "Stop the database": PostgreSQL goes away behind its proxy; SQLite's store is closed under the recorder.
      if (fx.driver === 'postgres') await proxy.stop();
      else await store.close();

      let forwarded = 0;
      const refusal = await recorder
        .beginSession({ id: requestId(), receivedAt: Date.now(), principal: principal(), connection: 'local', model: 'demo-chat', operation: 'chat', stream: false, requestBody: chatBody('b'), forwardedBody: chatBody('b') })
        .then(() => forwarded++)
        .catch((err: unknown) => err);
      assert.equal(forwarded, 0);
      assert.ok(refusal instanceof GatewayError);
      assert.equal(refusal.status, 503);
      assert.equal(refusal.code, 'recording_unavailable');
      assert.match(refusal.message, /not forwarded/);
      assert.deepEqual(refusal.toJSON().error.type, 'service_unavailable');

      streaming.chunk(sseChunk('unrecordable'), 5);
      await streaming.flush();
      assert.equal(streaming.signal.aborted, true, 'the pipeline can cut a stream it can no longer record');
      assert.equal(told.length, 1, 'the failure listener (what the pipeline uses) was told, once');
      assert.equal(told[0], streaming.failure);
      const late: GatewayError[] = [];
      streaming.onFailure((failure) => late.push(failure));
      assert.deepEqual(late, [streaming.failure], 'a listener added after the failure is told at once');
      await recorder.close({ closeStore: false }).catch(() => {});
      await store.close().catch(() => {});
      await proxy.stop();
    });

    test('several instances migrating a fresh database at once all succeed, once', async () => {
      const fresh =
        fx.driver === 'postgres'
          ? storageSchema.parse({ driver: 'postgres', postgres: { ...fx.storage.postgres, schema: `${fx.storage.postgres!.schema}_fresh` } })
          : storageSchema.parse({ sqlite: { ...fx.storage.sqlite, path: fx.storage.sqlite.path.replace(/\.db$/, '-fresh.db') } });
      const stores = await Promise.all([openStore(fresh), openStore(fresh), openStore(fresh, { thread: 'worker' })]);
      try {
        assert.deepEqual(await Promise.all(stores.map((s) => s.chainHead().then((h) => h.seq))), [0, 0, 0]);
        const recorders = await Promise.all(stores.map((s) => Recorder.open(s, recording())));
        await Promise.all(recorders.flatMap((r) => [recordSession(r), recordSession(r)]));
        for (const r of recorders) await r.close({ closeStore: false });
        assert.deepEqual((await verify(stores[0]!)).problems, []);
      } finally {
        await Promise.all(stores.map((s) => s.close()));
        if (fx.driver === 'postgres') await fx.raw.query(`DROP SCHEMA ${fresh.postgres!.schema} CASCADE`);
      }
    });

    test('opening an unreachable store fails with StorageUnavailableError', async () => {
      const storage =
        fx.driver === 'postgres'
          ? storageSchema.parse({ driver: 'postgres', postgres: { url: `postgres://postgres@127.0.0.1:${await closedPort()}/test`, connect_timeout: '1s' } })
          : storageSchema.parse({ sqlite: { path: '/dev/null/audit.db' } });
      await assert.rejects(openStore(storage, { thread: 'worker' }), StorageUnavailableError);
    });

    test('a process killed mid-stream leaves its session marked incomplete after restart', async () => {
      const sessionId = requestId();
      const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./crash-child.ts', import.meta.url)), JSON.stringify({ storage: fx.storage, sessionId })], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      while (!out.includes('recorded')) {
        await Promise.race([once(child.stdout, 'data'), once(child, 'exit').then(() => assert.fail(`child exited early: ${out}`))]);
      }
      child.kill('SIGKILL');
      await once(child, 'exit');

      const store = await fx.open();
      assert.equal((await store.getSession(sessionId))?.state, 'open', 'before restart the session is still open');
      const recorder = await Recorder.open(store, recording());
      const session = await store.getSession(sessionId);
      assert.equal(session?.state, 'incomplete');
      const detail = (await new SessionArchive(store, recording()).show(sessionId))!;
      assert.equal(detail.response.text, 'Once upon', 'chunks recorded before the crash are kept');
      assert.match(detail.end?.reason ?? '', /stopped before the session ended/);
      assert.equal((await verify(store)).ok, true, 'recovery is itself a chained event');
      await recorder.close();
    });

    test('recovery ends sessions of instances whose lease expired, and leaves live ones alone', async () => {
      const store = await fx.open();
      const remote = requestId();
      const now = Date.now();
      await store.registerInstance({ id: 'ins_remote', hostname: 'elsewhere.example', pid: 1, started_at: now - 120_000, heartbeat_at: now - 60_000, closed_at: null });
      await store.append([
        {
          kind: 'session.start',
          sessionId: remote,
          n: 0,
          atMs: now,
          meta: { received_at: now, identity: { issuer: 'https://idp.example', subject: 'remote', groups: [] }, model: 'demo-chat', operation: 'chat', stream: true, bodies: false, instance: 'ins_remote' },
        },
      ]);
      const a = await Recorder.open(store, recording({ recovery_lease: '10s' }));
      const stillStreaming = await recordSession(a, { end: false });
      const b = await Recorder.open(store, recording({ recovery_lease: '10s' }));
      assert.equal((await store.getSession(remote))?.state, 'incomplete', 'no heartbeat for 60s with a 10s lease');
      assert.equal((await store.getSession(stillStreaming))?.state, 'open', 'another recorder in this process is alive');
      await b.close({ closeStore: false });
      await a.close({ closeStore: false });
      assert.equal((await store.getSession(stillStreaming))?.state, 'incomplete', 'closing with a session still open marks it');
      assert.deepEqual((await verify(store)).problems, []);
      await store.close();
    });

    test('two recorders writing at once keep one linear chain', async () => {
      const [a, b] = [await fx.open('worker'), await fx.open()];
      const [ra, rb] = [await Recorder.open(a, recording()), await Recorder.open(b, recording())];
      await Promise.all([
        ...Array.from({ length: 20 }, () => recordSession(ra, { subject: 'via-a' })),
        ...Array.from({ length: 20 }, () => recordSession(rb, { subject: 'via-b' })),
      ]);
      await ra.close();
      await rb.close();
      const store = await fx.open();
      const result = await verify(store);
      assert.deepEqual(result.problems, []);
      assert.ok(result.checked >= 40 * 5);
      await store.close();
    });

    test('an identity with a lone UTF-16 surrogate is recorded as U+FFFD, not refused by the store, and verifies', async () => {
      // A trail of its own, so a failure here names this test rather than the verify of the shared one.
      const own = await factory.create();
      try {
        const store = await own.open();
        const recorder = await Recorder.open(store, recording());
        const id = await recordSession(recorder, { subject: 'odd\ud800subject' });
        await recorder.close({ closeStore: false });
        assert.equal(recorder.stats.failedCommits, 0);
        const row = await store.getSession(id);
        assert.equal(row?.state, 'completed');
        assert.equal(row?.subject, 'odd\ufffdsubject');
        assert.deepEqual((await verify(store)).problems, []);
        await store.close();
      } finally {
        await own.cleanup();
      }
    });

    test('a principal naming a group twice is recorded once in that group', async () => {
      const own = await factory.create();
      try {
        const store = await own.open();
        const recorder = await Recorder.open(store, recording());
        const id = await recordSession(recorder, { groups: ['ops', 'ops', 'eng'] });
        await recorder.close({ closeStore: false });
        assert.equal(recorder.stats.failedCommits, 0);
        assert.deepEqual((await store.listSessions({ group: 'ops', limit: 10 })).map((s) => s.id), [id]);
        assert.deepEqual((await store.listSessions({ group: 'eng', limit: 10 })).map((s) => s.id), [id]);
        assert.deepEqual((await verify(store)).problems, []);
        await store.close();
      } finally {
        await own.cleanup();
      }
    });

    test('a store whose last head another writer moved chains its next commit after that writer\'s', async () => {
      // PostgreSQL commits onto the head it wrote last in one statement; here that head is stale every time.
      const [a, b] = [await fx.open(), await fx.open()];
      const [ra, rb] = [await Recorder.open(a, recording()), await Recorder.open(b, recording())];
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) {
        ids.push(await recordSession(ra, { subject: `turn-a-${i}` }));
        ids.push(await recordSession(rb, { subject: `turn-b-${i}` }));
      }
      // Not by the recorder's retry after a failed commit: each commit found its place at once.
      assert.deepEqual([ra.stats.failedCommits, rb.stats.failedCommits], [0, 0]);
      await ra.close();
      await rb.close();
      const store = await fx.open();
      assert.deepEqual((await verify(store)).problems, []);
      for (const id of ids) assert.equal((await store.getSession(id))?.state, 'completed', id);
      await store.close();
    });

    test('a group commit retried after its answer was lost (connection dropped after COMMIT) stores each event once', async () => {
      const store = await fx.open();
      // The first commit holding the answer commits, then its answer is lost: what PostgreSQL dropping the connection
      // after COMMIT, or the store thread dying before replying, looks like to the recorder.
      let lose = true;
      const flaky = new Proxy(store, {
        get: (target, key) =>
          key === 'append'
            ? async (events: NewEvent[], options?: { replay?: boolean }) => {
                const seqs = await target.append(events, options);
                if (lose && events.some((e) => e.kind === 'session.end')) {
                  lose = false;
                  throw new Error('Connection terminated unexpectedly');
                }
                return seqs;
              }
            : Reflect.get(target, key),
      });
      const recorder = await Recorder.open(flaky, recording());
      const id = await recordSession(recorder, { reply: ['one', ' two', ' three'] });
      await recorder.close({ closeStore: false });
      assert.equal(lose, false, 'the answer was lost once');
      const rows = await fx.raw.query<{ kind: string; n: number }>('SELECT kind, n FROM events WHERE session_id = ? ORDER BY seq', id);
      assert.deepEqual(rows.map((r) => `${r.kind}:${r.n}`), ['session.start:0', 'session.forwarded:1', 'session.end:2'], 'the answer is stored with the end, once');
      assert.deepEqual((await new SessionArchive(store, recording()).show(id))?.response.chunks.map((c) => c.raw), ['one', ' two', ' three'].map(sseChunk));
      assert.equal((await store.getSession(id))?.state, 'completed');
      assert.deepEqual((await verify(store)).problems, []);
      await store.close();
    });

    test('replaying whole batches, session starts included, appends nothing twice and answers the stored seqs', async () => {
      const store = await fx.open('worker');
      const batches: Array<{ events: NewEvent[]; seqs: Array<number | null> }> = [];
      const capturing = new Proxy(store, {
        get: (target, key) =>
          key === 'append'
            ? async (events: NewEvent[], options?: { replay?: boolean }) => {
                const seqs = await target.append(events, options);
                batches.push({ events, seqs });
                return seqs;
              }
            : Reflect.get(target, key),
      });
      const recorder = await Recorder.open(capturing, recording());
      await Promise.all(Array.from({ length: 5 }, (_, i) => recordSession(recorder, { subject: `replay${i}` })));
      await recorder.close({ closeStore: false });
      const count = async (): Promise<number> => Number((await fx.raw.query<{ n: number | string }>('SELECT count(*) AS n FROM events'))[0]!.n);
      const before = await count();
      const head = await store.chainHead();
      for (const batch of batches) assert.deepEqual(await store.append(batch.events, { replay: true }), batch.seqs);
      assert.equal(await count(), before, 'no event stored twice');
      assert.deepEqual(await store.chainHead(), head, 'the chain did not move');
      assert.deepEqual((await verify(store)).problems, []);
      await store.close();
    });

    test('the store thread is started again whatever killed it; calls fail closed while it is down', async () => {
      const store = (await fx.open('worker')) as WorkerStore;
      const recorder = await Recorder.open(store, recording());
      await recordSession(recorder, { subject: 'before-crash' });
      const first = store.osThreadId;
      // Killed the way a bug would kill it: a message its handler cannot read throws, uncaught, in the thread.
      (store as unknown as { worker: Worker }).worker.postMessage(null);
      await assert.rejects(store.chainHead(), StorageUnavailableError, 'a call in flight fails as a storage outage');
      await assert.rejects(store.heartbeat(recorder.instanceId, Date.now()), StorageUnavailableError, 'and so does one made while it is down');
      const refused = await recorder.beginSession({ id: requestId(), receivedAt: Date.now(), principal: principal(), connection: 'local', model: 'demo-chat', operation: 'chat', stream: false, requestBody: chatBody('x', false) }).then(
        (writer) => (void writer.end({ state: 'completed', status: 200, latencyMs: 1 }), undefined),
        (err: unknown) => err,
      );
      if (refused !== undefined) assert.ok(refused instanceof GatewayError && refused.status === 503 && refused.code === 'recording_unavailable', 'refused cleanly if not recorded');
      for (let i = 0; i < 400 && store.restarts === 0; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(store.restarts, 1, 'started again');
      if (first !== undefined) assert.notEqual(store.osThreadId, first, 'a new thread');
      const after = await recordSession(recorder, { subject: 'after-crash' });
      assert.equal((await store.getSession(after))?.state, 'completed');
      await recorder.close();
      const check = await fx.open();
      assert.deepEqual((await verify(check)).problems, []);
      await check.close();
    });

    test('the store thread carries its own name in the OS, so its CPU can be told from the event loop\'s from outside (bench/run.ts)', async (t) => {
      if (process.platform !== 'linux') return t.skip('thread names are read from /proc');
      const store = (await fx.open('worker')) as WorkerStore;
      try {
        assert.ok(store.osThreadId, 'the thread reported its OS id');
        assert.equal(readFileSync(`/proc/${process.pid}/task/${store.osThreadId}/comm`, 'utf8').trim(), STORE_THREAD_NAME);
        assert.equal(readFileSync(`/proc/${process.pid}/task/${process.pid}/comm`, 'utf8').trim() === STORE_THREAD_NAME, false, 'the main thread keeps its name');
      } finally {
        await store.close();
      }
    });
  });
}

/** A TCP proxy in front of PostgreSQL that can be "stopped" like the database. */
async function startTcpProxy(fx: StoreFixture): Promise<{ url: string; stop(): Promise<void> }> {
  if (fx.driver !== 'postgres') return { url: '', stop: async () => {} };
  const target = new URL(fx.storage.postgres!.url);
  const sockets = new Set<Socket>();
  const { connect } = await import('node:net');
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.pipe(upstream).pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const url = new URL(fx.storage.postgres!.url);
  url.port = String(port);
  let stopped = false;
  return {
    url: url.toString(),
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}
