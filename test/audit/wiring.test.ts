// Recording through the real gateway, on SQLite and on PostgreSQL: the
// official SDK's streamed request is recorded exactly as delivered and
// replays with its timing through the sessions API; guardrail refusals are
// recorded too; and with the database gone, the caller gets a clear 503 and
// the model gets nothing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { chunkText, unframeChunks } from '../../src/audit/content-text.js';
import type { NewEvent } from '../../src/audit/events.js';
import { SseDecoder } from '../../src/protocol/sse.js';
import { postJson, startHarness, type Harness } from '../helpers/harness.js';
import { postgresThroughRelay, type TcpRelay } from '../helpers/tcp-relay.js';
import { STORE_FIXTURES, type StoreFixture } from './fixtures.js';

for (const factory of STORE_FIXTURES) {
  describe(`recording through the gateway on ${factory.driver}`, () => {
    let fx: StoreFixture;
    let relay: TcpRelay | undefined;
    let h: Harness;

    before(async () => {
      fx = await factory.create();
      let storage: Record<string, unknown> = fx.storage as unknown as Record<string, unknown>;
      if (fx.storage.driver === 'postgres') {
        const through = await postgresThroughRelay('wiring', { schema: fx.storage.postgres!.schema, dropSchema: false });
        relay = through.relay;
        storage = { driver: 'postgres', postgres: { ...through.storage.postgres, pool_size: 4 } };
      } else {
        storage = { driver: 'sqlite', sqlite: { path: fx.storage.sqlite.path } };
      }
      h = await startHarness({
        model: { chunkDelayMs: 5 },
        configure: (input) => {
          input.storage = storage as typeof input.storage;
          input.recording = { auditor_groups: ['auditors'], commit_interval: '2ms' };
          input.guardrails = { input: [{ name: 'no-secrets', detect: ['secrets'], action: 'block' }] };
        },
      });
    });
    after(async () => {
      await h.close().catch(() => {});
      await relay?.close().catch(() => {});
      await fx.cleanup();
    });

    test('a streamed request is recorded as delivered and replays with its timing through the API', async () => {
      const alice = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: await h.userToken('alice'), maxRetries: 0 });
      const { data: stream, response } = await alice.chat.completions
        .create({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'Record me 📼' }] })
        .withResponse();
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      const id = response.headers.get('x-request-id')!;
      await h.gateway.services.audit!.recorder.flush();

      const replay = await fetch(`${h.url}/v1/sessions/${id}/replay`, { headers: { authorization: `Bearer ${await h.userToken('alice')}` } });
      assert.equal(replay.status, 200, await replay.clone().text());
      const body = (await replay.json()) as { chunks: Array<{ offset_ms: number; raw?: string; text?: string }> };
      const decoder = new SseDecoder();
      const frames = [...decoder.push(body.chunks.map((c) => c.raw ?? c.text ?? '').join('')), ...decoder.end()];
      const recordedText = frames
        .filter((f) => f.hasData && f.data !== '[DONE]')
        .map((f) => (JSON.parse(f.data) as { choices: Array<{ delta: { content?: string } }> }).choices[0]?.delta.content ?? '')
        .join('');
      assert.match(text, /Record me 📼/);
      assert.equal(recordedText, text, 'the record holds exactly what the client was sent');
      const offsets = body.chunks.map((c) => c.offset_ms);
      assert.deepEqual(offsets, [...offsets].sort((a, b) => a - b));
      assert.ok(offsets.at(-1)! - offsets[0]! >= 5, 'the demo model paces its chunks, and the offsets show it');

      const shown = (await (await fetch(`${h.url}/v1/sessions/${id}`, { headers: { authorization: `Bearer ${await h.userToken('alice')}` } })).json()) as {
        session: { state: string; subject: string; connection: string; model: string };
      };
      assert.equal(shown.session.state, 'completed');
      assert.equal(shown.session.subject, 'alice');
      assert.equal(shown.session.connection, 'demo');

      // Found by a word only its answer has ("You said: …"), indexed by the recorder's own pass from the words the relay
      // took from each frame (a search's own pass, on the archive's handle, would read the stored frames back).
      assert.doesNotMatch('Record me 📼', /said/);
      const sid = Number((await fx.raw.query<{ k: number | string }>("SELECT seq AS k FROM events WHERE session_id = ? AND kind = 'session.start'", id))[0]!.k);
      const indexed = fx.driver === 'sqlite' ? `SELECT count(*) AS n FROM session_search WHERE rowid = ${sid}` : `SELECT count(*)::int AS n FROM session_search WHERE sid = ${sid}`;
      for (let polls = 0; polls < 400 && Number((await fx.raw.query<{ n: number }>(indexed))[0]!.n) === 0; polls++) await new Promise((r) => setTimeout(r, 50));
      const found = (await (await fetch(`${h.url}/v1/sessions?q=said`, { headers: { authorization: `Bearer ${await h.userToken('alice')}` } })).json()) as {
        data: Array<{ id: string; match?: { source: string } }>;
      };
      assert.equal(found.data.find((s) => s.id === id)?.match?.source, 'answer', JSON.stringify(found));
    });

    test("a non-streamed answer hands the index its words from the usage meter's parse, as the indexing pass would extract them", async () => {
      const store = h.gateway.services.audit!.recorder.store;
      const append = store.append;
      const appended: NewEvent[] = [];
      // Watched, not replaced: every batch still goes to the real store.
      store.append = (events, options) => (appended.push(...events), append.call(store, events, options));
      try {
        const res = await postJson(`${h.url}/v1/chat/completions`, await h.userToken('alice'), { model: 'demo-chat', messages: [{ role: 'user', content: 'Say it plainly' }] });
        assert.equal(res.status, 200, await res.clone().text());
        assert.match(await res.text(), /said/);
        const id = res.headers.get('x-request-id')!;
        await h.gateway.services.audit!.recorder.flush();
        const end = appended.find((e) => e.sessionId === id && e.kind === 'session.end');
        assert.equal(end?.parts?.length, 1, 'the answer is stored with the end');
        const stored = unframeChunks(Buffer.from(end!.parts![0]!.data).toString('utf8'));
        assert.equal(stored.length, 1, 'relayed as it came, in one chunk');
        assert.match(end!.indexText ?? '', /said/, 'its words came with it');
        assert.equal(end!.indexText, stored.map(chunkText).join(''), 'exactly what the pass would extract from the stored chunk');
      } finally {
        store.append = append;
      }
    });

    test("users see only their own sessions; an auditor sees everyone's", async () => {
      await postJson(`${h.url}/v1/embeddings`, await h.userToken('bob'), { model: 'demo-embed', input: 'bob was here' });
      await h.gateway.services.audit!.recorder.flush();
      const list = async (user: string) =>
        ((await (await fetch(`${h.url}/v1/sessions`, { headers: { authorization: `Bearer ${await h.userToken(user)}` } })).json()) as {
          data: Array<{ subject: string }>;
        }).data.map((s) => s.subject);
      assert.deepEqual([...new Set(await list('bob'))], ['bob']);
      assert.deepEqual([...new Set(await list('alice'))], ['alice']);
      assert.deepEqual([...new Set(await list('carol'))].sort(), ['alice', 'bob']);
    });

    test('a blocked prompt is recorded with the rule that refused it', async () => {
      const refused = await postJson(`${h.url}/v1/chat/completions`, await h.userToken('alice'), {
        model: 'demo-chat',
        messages: [{ role: 'user', content: 'token ghp_R4nd0mT0k3nV4lu3sAr3L0ng3n0ugh1234ab' }],
      });
      assert.equal(refused.status, 403);
      const id = refused.headers.get('x-request-id')!;
      await h.gateway.services.audit!.recorder.flush();
      const detail = (await (await fetch(`${h.url}/v1/sessions/${id}`, { headers: { authorization: `Bearer ${await h.userToken('carol')}` } })).json()) as {
        session: { state: string };
        events: Array<{ kind: string; meta?: { rule?: string; action?: string } }>;
      };
      assert.equal(detail.session.state, 'refused');
      assert.ok(detail.events.some((e) => e.kind === 'decision' && e.meta?.rule === 'no-secrets' && e.meta.action === 'block'));
    });

    test('with the database gone, the caller gets a clear 503 and the model gets nothing', async () => {
      const before = h.model.received.length;
      if (relay) relay.cut();
      else await (h.gateway.services.audit!.recorder as unknown as { store: { close(): Promise<void> } }).store.close();
      const response = await postJson(`${h.url}/v1/chat/completions`, await h.userToken('alice'), {
        model: 'demo-chat',
        stream: true,
        messages: [{ role: 'user', content: 'is anyone recording?' }],
      });
      assert.equal(response.status, 503);
      const { error } = (await response.json()) as { error: { code: string; message: string } };
      assert.equal(error.code, 'recording_unavailable');
      assert.match(error.message, /not forwarded/);
      assert.equal(h.model.received.length, before, 'no request reached the model');
    });
  });
}
