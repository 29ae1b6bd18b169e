// Full-text search over stored prompts and answers on both stores: what is
// indexed (plaintext only), the query language (never the engine's syntax),
// keyset paging, and the index following redaction, deletion and retention.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Recorder } from '../../src/audit/recorder.js';
import { PendingIndex, SearchQueryError, sessionIndexText } from '../../src/audit/search.js';
import { chunkBatchOf, type NewEvent } from '../../src/audit/events.js';
import { chunkText } from '../../src/audit/content-text.js';
import { deliveredAnswer } from '../../src/pipeline/record.js';
import { parseOllamaRequest } from '../../src/protocol/ollama.js';
import { parseOpenAiRequest } from '../../src/protocol/openai.js';
import { NdjsonDecoder } from '../../src/protocol/ndjson.js';
import { SseDecoder } from '../../src/protocol/sse.js';
import { UsageMeter } from '../../src/usage/meter.js';
import { generatedText } from '../../src/audit/content-text.js';
import { MaskingSession } from '../../src/mask/session.js';
import { MaskingStreamTransform } from '../../src/mask/stream-transform.js';
import type { SpanRules } from '../../src/mask/types.js';
import { createTestScanner } from '../mask/test-scanner.js';
import { SearchUnavailableError, SessionArchive } from '../../src/audit/sessions.js';
import { openStore, type AuditStore } from '../../src/audit/store.js';
import { verify } from '../../src/audit/verify.js';
import { frameChunks } from '../../src/audit/content-text.js';
import { SEARCH_LOCK, SEARCH_LOCK_ARGS } from '../../src/audit/postgres-store.js';
import { KEY_A, recordSession, recording, requestId, sseChunk, STORE_FIXTURES, type StoreFixture } from './fixtures.js';

const DAY = 86_400_000;

test('copies kept for the indexing pass are bounded, and dropped a while after their session ended even if no pass here took them', () => {
  let now = 0;
  const kept = new PendingIndex(1000, 3, 60_000, () => now);
  const part = (text: string) => [{ part: 0, keyId: null, nonce: null, data: Buffer.from(text) }];
  const start = (sid: number) => ({ event: { kind: 'session.start', sessionId: `s${sid}`, n: 0, parts: part('{"prompt":"hello"}') }, sid });
  kept.committed([start(1), start(2)]);
  kept.committed([{ event: { kind: 'session.end', sessionId: 's1', n: 1 }, sid: 1 }]);
  assert.equal(kept.size, 2);
  now = 61_000;
  kept.committed([start(3)]);
  assert.equal(kept.take(1), undefined, 'ended over a minute ago: dropped (another process may have indexed and erased it)');
  assert.equal(kept.take(2)?.length, 1, 'still open: kept');
  kept.committed([start(4), start(5), start(6)]);
  assert.ok(kept.size <= 3, 'at most maxSessions');
  kept.committed([{ event: { kind: 'session.start', sessionId: 's7', n: 0, parts: part('x'.repeat(2000)) }, sid: 7 }]);
  assert.equal(kept.take(7), undefined, 'over the byte bound: read back instead');
  kept.committed([{ event: { kind: 'session.start', sessionId: 's8', n: 0, parts: [{ part: 0, keyId: 'k1', nonce: Buffer.alloc(12), data: Buffer.from('secret') }] }, sid: 8 }]);
  assert.deepEqual(kept.take(8), [], 'encrypted content is never kept');
});

// Frames as model servers send them: several fields in one frame, reasoning, tool calls, several choices, the
// Responses API, SSE fields and comments, CRLF, and the shapes the index reads differently from an SSE client.
const SSE_FRAMES = [
  'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n',
  'data: {"choices":[{"index":0,"delta":{"content":"Hello"}}]}\n\n',
  'data: {"choices":[{"index":0,"delta":{"reasoning_content":"pondering","content":" wide"}}]}\n\n',
  'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"t1","function":{"name":"lookup","arguments":"{\\"city\\":\\"Oslo\\"}"}}]}}]}\n\n',
  'data: {"choices":[{"index":0,"delta":{"content":" first"}},{"index":1,"delta":{"content":" second"}}]}\n\n',
  'data: {"choices":[{"index":0,"text":" legacy"}]}\n\n',
  'event: message\nid: 7\nretry: 10\ndata: {"choices":[{"delta":{"content":" fielded"}}]}\n\n',
  ': keep-alive comment\n\n',
  'data: {"choices":[{"delta":\ndata: {"content":" split"}}]}\n\n',
  'data: not json at all\n\n',
  'data:{"choices":[{"delta":{"content":" tight"}}]}\r\n\r\n',
  'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":" responses"}\n\n',
  'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}\n\n',
  'data: [DONE]\n\n',
];
const NDJSON_LINES = [
  '{"model":"llama","message":{"role":"assistant","content":"Ollama","thinking":"hmm"},"done":false}\n',
  '{"model":"llama","response":" generate","done":false}\n',
  '  {"model":"llama","message":{"role":"assistant","content":" padded"},"done":false}\r\n',
  '[1,2,3]\n',
  'data: {"choices":[{"delta":{"content":" sse-in-ndjson"}}]}\n',
  '{"model":"llama","done":true,"eval_count":4}\n',
];


// Frames as masking sees them: an address split between frames, a tail held back until a finish frame without
// content (then sent in a frame of its own), fields, comments, CRLF, two data lines (re-encoded, and passed as they
// came), and frames passed unchanged.
const MASKED_SSE = [
  'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n',
  'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"Hello, write to jane.d"}}]}\n\n',
  'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"oe@example.com now"}}]}\n\n',
  'data: {"id":"c1","choices":[{"index":0,"delta":{"reasoning_content":"pondering","content":" wide"}}]}\n\n',
  'event: message\nid: 7\nretry: 10\ndata: {"choices":[{"index":0,"delta":{"content":" fielded"}}]}\n\n',
  ': keep-alive comment\n\n',
  ': a note\ndata: {"choices":[{"index":0,"delta":{"content":" noted"}}]}\n\n',
  'data: {"choices":[{"index":1,"delta":\ndata: {"content":" split"}}]}\n\n',
  'data: {"choices":[{"index":0,"delta":{"content":" Plain words. "}}]}\n\n',
  'data: {"choices":[{"index":0,\ndata: "delta":{"content":"Two lines. "}}]}\n\n',
  'data:{"choices":[{"index":0,"delta":{"content":" tight"}}]}\r\n\r\n',
  'data: {"choices":[{"index":0,"delta":{"content":" tail"}}]}\n\n',
  'data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
  'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}\n\n',
  'data: [DONE]\n\n',
];
const MASKED_NDJSON = [
  '{"model":"llama","message":{"role":"assistant","content":"Ollama, write to jane.d"},"done":false}\n',
  '  {"model":"llama","message":{"role":"assistant","content":"oe@example.com"},"done":false}\r\n',
  '{"model":"llama","message":{"role":"assistant","content":" tail"},"done":false}\n',
  '{"model":"llama","done":true,"eval_count":4}\n',
];

/**
 * What the relay hands to recording for each upstream read: every frame it completed (read by the usage meter)
 * joined in one chunk, with the words it took from the meter's parses (sseJson) (undefined once a frame's are unknown).
 */
function delivered(framing: 'sse' | 'ndjson', reads: readonly string[]): Array<{ raw: string; answer: string | undefined }> {
  const request =
    framing === 'sse'
      ? parseOpenAiRequest('chat', { model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] })
      : parseOllamaRequest('ollama_chat', { model: 'm', messages: [{ role: 'user', content: 'hi' }] });
  const meter = new UsageMeter(request, { stripUsage: false });
  const decoder = framing === 'sse' ? new SseDecoder() : new NdjsonDecoder();
  const out: Array<{ raw: string; answer: string | undefined }> = [];
  for (const read of reads) {
    let raw = '';
    let answer: string | undefined = '';
    for (const decoded of decoder.push(Buffer.from(read))) {
      const frame = meter.frame(decoded);
      if (!frame) continue;
      raw += frame.raw;
      const words = deliveredAnswer(frame);
      answer = answer === undefined || words === undefined ? undefined : answer + words;
    }
    if (raw !== '') out.push({ raw, answer });
  }
  return out;
}

test("the words recording takes from the gateway's parse of a frame are exactly what the index extracts from the stored frame", () => {
  for (const [framing, frames, irregular] of [
    ['sse', SSE_FRAMES, [SSE_FRAMES[8]!]],
    ['ndjson', NDJSON_LINES, [NDJSON_LINES[3]!, NDJSON_LINES[4]!]],
  ] as const) {
    const one = delivered(framing, frames);
    assert.equal(one.length, frames.length, `${framing}: every frame came through`);
    for (const { raw, answer } of one) if (answer !== undefined) assert.equal(answer, chunkText(raw), `${framing}: ${JSON.stringify(raw)}`);
    // Where the parses differ, the pass extracts the text itself.
    assert.deepEqual(one.filter((f) => f.answer === undefined).map((f) => f.raw), irregular, `${framing}: only frames the index reads differently fall back`);
    // The relay records every frame one upstream read completed as one chunk: two at a time, and all the regular ones at once.
    const regular = frames.filter((f) => !irregular.includes(f as never));
    const reads = [...frames.slice(1).map((f, i) => frames[i]! + f), regular.join('')];
    for (const { raw, answer } of delivered(framing, reads)) {
      if (irregular.some((f) => raw.includes(f))) assert.equal(answer, undefined, `${framing}: ${JSON.stringify(raw)}`);
      else assert.equal(answer, chunkText(raw), `${framing}: ${JSON.stringify(raw)}`);
    }
  }
  assert.equal(chunkText(SSE_FRAMES[8]!), '', 'the index reads each data line alone');
  assert.equal(chunkText(NDJSON_LINES[4]!), ' sse-in-ndjson', 'and a line that is not a JSON object by its data: lines');
  assert.equal(chunkText(NDJSON_LINES[0]! + NDJSON_LINES[1]!), 'Ollama generate', 'several NDJSON lines in one chunk');
});

test("the words masking keeps of the frames it sends are exactly what the index extracts from them", () => {
  const sent = (framing: 'sse' | 'ndjson'): Array<{ raw: string; words: string | undefined }> => {
    const frames = framing === 'sse' ? MASKED_SSE : MASKED_NDJSON;
    const out: Array<{ raw: string; words: string | undefined }> = [];
    // One frame per read, two per read, all in one read: what masking returns for one read is one recorded chunk.
    for (const reads of [frames, frames.slice(1).map((f, i) => frames[i]! + f).filter((_, i) => i % 2 === 0), [frames.join('')]]) {
      const rules: SpanRules = () => ({ action: 'mask', rule: 'mask-pii', strategy: { kind: 'placeholder' } });
      const operation = framing === 'sse' ? 'chat' : 'ollama_chat';
      const masking = new MaskingStreamTransform({ operation, framing, scanner: createTestScanner({ withUndecidedFrom: true }), session: new MaskingSession(), rules, wordsOf: generatedText });
      const decoder = framing === 'sse' ? new SseDecoder() : new NdjsonDecoder();
      for (const read of reads) {
        let raw = '';
        for (const frame of decoder.push(Buffer.from(read))) raw += masking.push(frame).join('');
        out.push({ raw, words: masking.takeWords() });
      }
      let raw = '';
      for (const frame of decoder.end()) raw += masking.push(frame).join('');
      raw += masking.end().join('');
      out.push({ raw, words: masking.takeWords() });
    }
    return out;
  };
  const [sse, ndjson] = [sent('sse'), sent('ndjson')];
  for (const [framing, sent] of [['sse', sse], ['ndjson', ndjson]] as const) {
    for (const { raw, words } of sent) if (words !== undefined) assert.equal(words, chunkText(raw), `${framing}: ${JSON.stringify(raw)}`);
    const unknown = sent.filter((s) => s.words === undefined).map((s) => s.raw);
    // Only a frame passed as it came whose text the index reads otherwise (two data lines) falls back.
    assert.ok(unknown.every((raw) => raw.includes('\ndata: "delta"')), `${framing}: ${JSON.stringify(unknown)}`);
    if (framing === 'sse') assert.ok(unknown.length > 0, 'that frame did');
    assert.ok(unknown.length < sent.length / 4, `${framing}: words known for most reads`);
    const all = sent.map((s) => s.raw).join('');
    assert.ok(!all.includes('jane.doe@example.com') && all.includes('[EMAIL'), `${framing}: the address was masked`);
  }
  // The masked address, a tail held back and sent in a frame of its own, and the end of the stream all had known words.
  const known = sse.filter((s) => s.words !== undefined).map((s) => s.words).join('');
  assert.ok(known.includes('[EMAIL'), 'masked words');
  assert.ok(sse.some((s) => s.words !== undefined && s.raw.includes('"finish_reason":null') && s.raw.includes('tail') && s.raw.includes('"finish_reason":"stop"')), 'a synthesized tail');
  assert.ok(sse.some((s) => s.words !== undefined && s.raw.endsWith('data: [DONE]\n\n')), '[DONE]');
  assert.equal(new MaskingStreamTransform({ operation: 'chat', framing: 'sse', scanner: createTestScanner(), session: new MaskingSession(), rules: () => undefined }).takeWords(), undefined, 'no words kept without wordsOf');
});

test('a session indexed from the words the recorder kept has the entry the pass makes from its stored content', async () => {
  const events: NewEvent[] = [];
  const capture = {
    append: async (batch: NewEvent[]) => (events.push(...batch), batch.map((_, i) => events.length - batch.length + i + 1)),
    registerInstance: async () => {},
    unclosedInstances: async () => [],
    openSessions: async () => [],
    closeInstance: async () => {},
    heartbeat: async () => {},
    indexEnded: async () => 0,
  } as unknown as AuditStore;
  // Small batches and a small body limit: the answer spans several batches and is cut off part way.
  const recorder = await Recorder.open(capture, recording({ chunk_bytes: 300, max_body_bytes: 1400 }));
  const sessions: string[] = [];
  for (const [framing, texts] of [['sse', SSE_FRAMES], ['ndjson', NDJSON_LINES], ['sse', [...SSE_FRAMES, ...SSE_FRAMES, ...SSE_FRAMES]]] as const) {
    const id = requestId();
    sessions.push(id);
    const body = { model: 'm', stream: true, messages: [{ role: 'system', content: 'Be brief' }, { role: 'user', content: [{ type: 'text', text: 'Where is Oslo?' }] }] };
    const writer = await recorder.beginSession({ id, receivedAt: Date.now(), principal: { issuer: 'https://idp', subject: 'a', groups: [], expiresAt: 0 }, connection: 'c', model: 'm', operation: 'chat', stream: true, requestBody: body });
    // Forwarded masked, or with the stream_options the gateway adds (stored as just the members that changed).
    await writer.forwarded(framing === 'ndjson' ? { ...body, stream_options: { include_usage: true } } : { ...body, messages: [{ role: 'user', content: 'Where is [CITY]?' }] });
    delivered(framing, texts).forEach(({ raw, answer }, i) => writer.chunk(raw, i, answer));
    await writer.end({ state: 'completed', status: 200, latencyMs: 5 });
  }
  await recorder.close({ closeStore: false });
  // Answer batches: response.chunks events, and the last batch of each answer, stored with its end.
  const batches = events.filter((e) => chunkBatchOf(e.kind, e.meta) !== undefined);
  assert.ok(batches.filter((e) => e.indexText !== undefined).length >= 2, 'answer batches carried their words');
  assert.ok(batches.some((e) => e.indexText === undefined), 'a batch with a frame read differently did not');
  assert.ok(batches.some((e) => e.kind === 'session.end' && e.indexText !== undefined), 'the last batch, stored with the end, too');
  assert.ok(events.some((e) => e.kind === 'session.forwarded' && e.indexText?.includes('[CITY]')), 'bodies carried their prompt');
  assert.ok(events.some((e) => e.kind === 'session.forwarded' && e.indexText === ''), 'and members without text carried that');
  for (const id of sessions) {
    const own = events.filter((e) => e.sessionId === id);
    const readBack = own.map(({ indexText: _, ...e }) => e);
    const entry = sessionIndexText(own);
    assert.ok(entry?.includes('Oslo'));
    assert.equal(entry, sessionIndexText(readBack), id);
  }
});

for (const factory of STORE_FIXTURES) {
  describe(`full-text search on ${factory.driver}`, () => {
    let fx: StoreFixture;
    let store: AuditStore;
    let recorder: Recorder;
    let archive: SessionArchive;
    let nightingale = '';
    before(async () => {
      fx = await factory.create();
      store = await fx.open();
      recorder = await Recorder.open(store, recording());
      archive = new SessionArchive(store, recording());
    });
    after(async () => {
      await recorder.close({ closeStore: false });
      await store.close();
      await fx.cleanup();
    });

    /** Index entries with these keys (a session's sid), read in the raw database (SQLite: the FTS5 rowid). */
    const entries = async (keys: number[]): Promise<number> => {
      if (keys.length === 0) return 0;
      const list = keys.join(',');
      const sql = fx.driver === 'sqlite' ? `SELECT count(*) AS n FROM session_search WHERE rowid IN (${list})` : `SELECT count(*)::int AS n FROM session_search WHERE sid IN (${list})`;
      return Number((await fx.raw.query<{ n: number }>(sql))[0]!.n);
    };
    /** The index key a session has (or would have): its sid. */
    const seqsOf = async (id: string): Promise<number[]> => {
      return (await fx.raw.query<{ k: number | string }>("SELECT seq AS k FROM events WHERE session_id = ? AND kind = 'session.start'", id)).map((r) => Number(r.k));
    };
    /** Polls (the indexing pass runs a moment after a session ends, in the background) until `check` holds or 20 s passed. */
    const eventually = async (check: () => Promise<boolean>): Promise<boolean> => {
      for (const deadline = Date.now() + 20_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) if (await check()) return true;
      return false;
    };
    const ids = async (text: string, extra: Record<string, unknown> = {}): Promise<string[]> => (await archive.list({ text, ...extra })).sessions.map((s) => s.id);

    test('finds words of the prompt as received and as forwarded, and of the answer, ignoring case and accents', async () => {
      const masked = await recordSession(recorder, { subject: 'fts', prompt: 'Email heron.quill@example.com about the Nightingale launch', forwardedPrompt: 'Email [EMAIL] about the Nightingale launch', reply: ['The Crème', ' brûlée is ready'] });
      nightingale = masked;
      const other = await recordSession(recorder, { subject: 'fts', prompt: 'Summarise the quarterly figures', reply: ['Revenue grew'] });
      assert.deepEqual(await ids('nightingale'), [masked]);
      assert.deepEqual(await ids('NIGHTINGALE launch'), [masked], 'every word must occur, in any case');
      assert.deepEqual(await ids('creme brulee'), [masked], 'accents are folded; answer text is indexed');
      assert.deepEqual(await ids('"quarterly figures"'), [other], 'phrase');
      assert.deepEqual(await ids('"figures quarterly"'), [], 'a phrase keeps its order');
      assert.deepEqual(await ids('quart*'), [other], 'prefix');
      assert.deepEqual(await ids('revenue'), [other]);
      assert.deepEqual(await ids('nightingale revenue'), [], 'terms are ANDed');
      assert.deepEqual(await ids('[EMAIL]'), [masked], 'the masked prompt as forwarded is indexed too');
      assert.deepEqual(await ids('nightingale', { subject: 'someone-else' }), [], 'the other filters still apply');
      const shown = async (q: string): Promise<[string | undefined, string[]]> => {
        const match = (await archive.list({ text: q })).sessions[0]?.match;
        return [match?.source, match?.highlights.map(([start, end]) => match.text.slice(start, end)) ?? []];
      };
      assert.deepEqual(await shown('creme brulee'), ['answer', ['Crème', 'brûlée']], 'each result shows where it matched, at exact offsets');
      assert.deepEqual(await shown('nightingale launch'), ['prompt', ['Nightingale', 'launch']]);
      assert.deepEqual(await shown('quart*'), ['prompt', ['quart']]);
    });

    test('the query is text, never the engine\'s syntax', async () => {
      const id = await recordSession(recorder, { subject: 'hostile', prompt: 'NEAR OR AND NOT column: data* {x} "quoted" 1=1; DROP TABLE sessions' });
      for (const q of ['NEAR(', '"', 'a OR', '-x', 'text:abc', '*', '^start', "'; DROP TABLE sessions; --", '\\', '(((', 'NOT', 'a:*|b', '!@#$ drop']) {
        try {
          const found = await ids(q);
          assert.ok(Array.isArray(found), q);
        } catch (err) {
          assert.ok(err instanceof SearchQueryError, `${q}: ${(err as Error).message}`);
        }
      }
      assert.deepEqual(await ids('DROP TABLE sessions'), [id]);
      assert.deepEqual(await ids('1=1; drop'), [id]);
      assert.deepEqual(await ids('NEAR OR'), [id], 'operator words are plain words');
      await assert.rejects(archive.list({ text: '"" *** ---' }), SearchQueryError);
      assert.equal((await store.listSessions({ limit: 1000 })).some((s) => s.id === id), true, 'nothing was dropped');
    });

    test('keyset pagination walks every match newest first, without repeats', async () => {
      const now = Date.now();
      const made: string[] = [];
      for (let i = 0; i < 7; i++) made.push(await recordSession(recorder, { subject: 'pager', prompt: `kestrel number ${i}`, receivedAt: now - i * 1000 }));
      await recordSession(recorder, { subject: 'pager', prompt: 'no bird here', receivedAt: now });
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await archive.list({ text: 'kestrel', limit: 3, cursor });
        seen.push(...page.sessions.map((s) => s.id));
        cursor = page.next;
        pages++;
      } while (cursor);
      assert.deepEqual(seen, made, 'newest first, every match once');
      assert.equal(pages, 3);
    });

    test('a word in many sessions pages the same way (SQLite then walks by time instead of fetching every match)', async () => {
      const now = Date.now() - 3_600_000;
      const made: string[] = [];
      for (let i = 0; i < 230; i++) made.push(await recordSession(recorder, { subject: 'many', prompt: `ibiswalk sighting ${i % 3 === 0 ? 'egretwalk' : ''}`, reply: ['ok'], receivedAt: now - i * 10 }));
      const walk = async (text: string, extra: Record<string, unknown> = {}): Promise<string[]> => {
        const seen: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await archive.list({ text, limit: 50, cursor, ...extra });
          seen.push(...page.sessions.map((s) => s.id));
          cursor = page.next;
        } while (cursor);
        return seen;
      };
      assert.deepEqual(await walk('ibiswalk'), made, 'every match once, newest first');
      assert.deepEqual(await walk('ibiswalk egretwalk'), made.filter((_, i) => i % 3 === 0));
      assert.deepEqual(await walk('ibiswalk', { subject: 'nobody' }), []);
    });

    test('with encryption on, nothing is indexed and search is refused with a clear message', async () => {
      const encrypted = recording({ encryption: { keys: [KEY_A] } });
      const secretRecorder = await Recorder.open(store, encrypted);
      const id = await recordSession(secretRecorder, { subject: 'cipher', prompt: 'albatross coordinates', reply: ['albatross'] });
      await secretRecorder.close({ closeStore: false });
      assert.equal(await entries(await seqsOf(id)), 0, 'the index holds nothing of an encrypted session');
      assert.deepEqual(await ids('albatross'), [], 'not findable through an archive without keys either');
      const keyed = new SessionArchive(store, encrypted);
      await assert.rejects(keyed.list({ text: 'albatross' }), (err: Error) => err instanceof SearchUnavailableError && /encryption is on/.test(err.message));
      assert.equal((await keyed.list({ subject: 'cipher' })).sessions.length, 1, 'the other filters still work');
    });

    test('redaction and deletion take the index entries with them', async () => {
      const victim = await recordSession(recorder, { subject: 'erase-fts', prompt: 'zanzibarquux plans', reply: ['zanzibarquux reply'] });
      const patterned = await recordSession(recorder, { subject: 'erase-fts', prompt: 'keep ocelotword but drop marmosetword' });
      const deleted = await recordSession(recorder, { subject: 'erase-fts', prompt: 'wombatword', receivedAt: Date.now() - 400 * DAY });
      const victimSeqs = await seqsOf(victim);
      const deletedSeqs = await seqsOf(deleted);
      assert.deepEqual(await ids('zanzibarquux'), [victim], 'indexed (search takes what is waiting first)');
      assert.equal(await entries(victimSeqs), 1, 'one entry per session');
      assert.deepEqual(await ids('zanzibarquux'), [victim]);

      await archive.redactSession(victim, 'dpo', 'erasure');
      assert.deepEqual(await ids('zanzibarquux'), []);
      assert.deepEqual(await ids('redacted', { subject: 'erase-fts' }), [], 'the redaction marker is not indexed');
      assert.equal(await entries(victimSeqs), 0);

      await archive.redactPattern('marmosetword', { ids: [patterned] }, 'dpo');
      assert.deepEqual(await ids('marmosetword'), []);
      assert.deepEqual(await ids('ocelotword'), [patterned], 'what a pattern redaction left is still findable');

      const retention = new SessionArchive(store, recording({ retention: { default: '30d' } }));
      assert.ok((await retention.sweepRetention()).deleted >= 1);
      assert.deepEqual(await ids('wombatword'), []);
      assert.equal(await entries(deletedSeqs), 0, 'retention removed the entries');

      if (fx.driver === 'sqlite') {
        // The FTS5 segments are merged after a removal: the erased word is in no file.
        const dir = dirname(fx.storage.sqlite.path);
        for (const file of await readdir(dir)) {
          const bytes = (await readFile(join(dir, file))).toString('latin1');
          assert.ok(!bytes.includes('zanzibarquux') && !bytes.includes('marmosetword') && !bytes.includes('wombatword'), `${file} holds an erased word`);
        }
      }
      assert.deepEqual((await verify(store)).problems, []);
    });

    test('decision=flagged finds sessions a guardrail flagged, also those recorded before the column existed', async () => {
      const flagged = await recordSession(recorder, { subject: 'flags', decisions: [{ direction: 'input', action: 'flag', rule: 'injection' }] });
      const masked = await recordSession(recorder, { subject: 'flags', decisions: [{ direction: 'input', action: 'mask', rule: 'mask-email', entity: 'EMAIL' }] });
      await recordSession(recorder, { subject: 'flags' });
      const listed = async (): Promise<string[]> => (await archive.list({ subject: 'flags', decision: 'flagged' })).sessions.map((s) => s.id);
      assert.deepEqual(await listed(), [flagged]);
      assert.deepEqual((await archive.list({ subject: 'flags', decision: 'masked' })).sessions.map((s) => s.id), [masked]);
      // Back to a v3 database: v4 fills the column in from the decision events, and verify agrees.
      await recorder.close({ closeStore: false });
      await store.close();
      await fx.raw.query('ALTER TABLE sessions DROP COLUMN flagged');
      await fx.raw.query('DELETE FROM audit_migrations WHERE version = 4');
      store = await openStore(fx.storage);
      recorder = await Recorder.open(store, recording());
      archive = new SessionArchive(store, recording());
      assert.deepEqual(await listed(), [flagged]);
      assert.deepEqual((await verify(store)).problems, []);
    });

    test('the write-ahead commit writes no index entry; a later pass indexes ended sessions in one transaction', async () => {
      await recorder.close({ closeStore: false }); // its background passes would index what this test looks at
      const id = requestId();
      const start = { kind: 'session.start' as const, sessionId: id, n: 0, atMs: Date.now() };
      const body = JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'quokkaword prompt' }] });
      const parts = (text: string) => [{ part: 0, keyId: null, nonce: null, data: Buffer.from(text) }];
      const meta = { received_at: Date.now(), identity: { issuer: 'https://idp.example', subject: 'deferred', groups: [] }, model: 'demo-chat', operation: 'chat', stream: true, bodies: true, instance: 'ins_test' };
      await store.append([{ ...start, meta, parts: parts(body) } as never]);
      await store.append([
        { kind: 'response.chunks', sessionId: id, n: 1, atMs: Date.now(), meta: { first: 0, offsets: [1, 2], sizes: [10, 10], truncated: false }, parts: parts(frameChunks([sseChunk('numbat'), sseChunk('split')])) } as never,
        { kind: 'response.chunks', sessionId: id, n: 2, atMs: Date.now(), meta: { first: 2, offsets: [3], sizes: [10], truncated: false }, parts: parts(frameChunks([sseChunk('word tail')])) } as never,
        { kind: 'session.end', sessionId: id, n: 3, atMs: Date.now(), meta: { state: 'completed', status: 200 } } as never,
      ]);
      const [sid] = await seqsOf(id);
      assert.equal(await entries([sid!]), 0, 'nothing indexed in the recording transactions');
      assert.ok((await store.indexEnded(500)) >= 1);
      assert.equal(await entries([sid!]), 1);
      assert.equal(await store.indexEnded(500), 0, 'nothing left waiting');
      assert.deepEqual(await ids('quokkaword'), [id]);
      assert.deepEqual(await ids('numbatsplitword tail'), [id], 'the answer is indexed as one text: a word cut between two batches is found');
      recorder = await Recorder.open(store, recording());
    });

    test('a session ended but not indexed (a crash before the pass) is indexed at the next start; erased before that, it never is', async () => {
      await recorder.close({ closeStore: false }); // its background passes would index what this test looks at
      // A recorder whose indexing never runs: as if the process died right after the sessions ended.
      const crashed = await Recorder.open(new Proxy(store, { get: (t, k) => (k === 'indexEnded' ? async () => 0 : Reflect.get(t, k)) }), recording());
      const kept = await recordSession(crashed, { subject: 'unindexed', prompt: 'tapirword survives' });
      const erased = await recordSession(crashed, { subject: 'unindexed', prompt: 'tapirword and dugongword' });
      await crashed.close({ closeStore: false });
      const sids = [...(await seqsOf(kept)), ...(await seqsOf(erased))];
      assert.equal(await entries(sids), 0, 'not indexed yet');
      assert.equal((await store.sessionEvents(kept, true)).length, 3, 'but every event is stored (start, forwarded, end with the answer)');
      await archive.redactPattern('dugongword', { ids: [erased] }, 'dpo');
      recorder = await Recorder.open(store, recording());
      assert.ok(await eventually(async () => (await entries(sids)) === 2), 'the start-up pass indexed both');
      assert.deepEqual(await ids('tapirword'), [erased, kept]);
      assert.deepEqual(await ids('dugongword'), [], 'the redaction happened before indexing: the erased word was never indexed');
    });

    test('an indexing pass gives way to a redaction or deletion in progress (PostgreSQL: their advisory lock)', { skip: factory.driver !== 'postgres' }, async () => {
      await recorder.close({ closeStore: false }); // its background passes would index what this test looks at
      const crashed = await Recorder.open(new Proxy(store, { get: (t, k) => (k === 'indexEnded' ? async () => 0 : Reflect.get(t, k)) }), recording());
      const id = await recordSession(crashed, { subject: 'gives-way', prompt: 'axolotlword' });
      await crashed.close({ closeStore: false });
      // What rewriteContents and deleteSessions hold until they commit ("mgsx", and this trail's schema).
      await fx.raw.query('BEGIN');
      await fx.raw.query(`SELECT pg_advisory_xact_lock(${SEARCH_LOCK_ARGS.replace('$1', '?')})`, SEARCH_LOCK);
      try {
        assert.equal(await store.indexEnded(500), 0, 'the pass gave way');
        assert.equal(await entries(await seqsOf(id)), 0);
      } finally {
        await fx.raw.query('COMMIT');
      }
      assert.ok((await store.indexEnded(500)) >= 1, 'and runs once the erasure is done');
      assert.equal(await entries(await seqsOf(id)), 1);
      recorder = await Recorder.open(store, recording());
    });

    test('an erasure in another schema of the same database does not hold up this trail\'s indexing (PostgreSQL)', { skip: factory.driver !== 'postgres' }, async () => {
      await recorder.close({ closeStore: false });
      const crashed = await Recorder.open(new Proxy(store, { get: (t, k) => (k === 'indexEnded' ? async () => 0 : Reflect.get(t, k)) }), recording());
      const id = await recordSession(crashed, { subject: 'other-schema', prompt: 'capybaraword' });
      await crashed.close({ closeStore: false });
      const sids = await seqsOf(id);
      // Advisory locks are database-wide: hold what another trail's redaction holds, with the store's own statement.
      await fx.raw.query('CREATE SCHEMA IF NOT EXISTS another_trail');
      await fx.raw.query('BEGIN');
      await fx.raw.query('SET LOCAL search_path TO another_trail');
      await fx.raw.query(`SELECT pg_advisory_xact_lock(${SEARCH_LOCK_ARGS.replace('$1', '?')})`, SEARCH_LOCK);
      try {
        assert.ok((await store.indexEnded(500)) >= 1, 'the pass ran');
      } finally {
        await fx.raw.query('COMMIT');
        await fx.raw.query('DROP SCHEMA another_trail');
      }
      assert.equal(await entries(sids), 1);
      recorder = await Recorder.open(store, recording());
    });

    test('sessions recorded before the per-session index are indexed after the migration', async () => {
      const old = await recordSession(recorder, { subject: 'legacy', prompt: 'pangolin archive' });
      await recorder.close({ closeStore: false });
      await store.close();
      // Back to a v4 database: no per-session index, no record of the migration.
      await fx.raw.query('DROP TABLE session_search');
      await fx.raw.query('DROP TABLE search_head');
      await fx.raw.query(fx.driver === 'sqlite' ? 'CREATE TABLE session_search (x)' : 'CREATE TABLE session_search (seq bigint PRIMARY KEY)');
      await fx.raw.query('DELETE FROM audit_migrations WHERE version = 5');
      store = await openStore(fx.storage);
      recorder = await Recorder.open(store, recording());
      archive = new SessionArchive(store, recording());
      assert.deepEqual(await ids('pangolin'), [old]);
      assert.deepEqual(await ids('nightingale'), [nightingale], 'earlier sessions too');
    });
  });
}
