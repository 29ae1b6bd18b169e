// Streams pass through frame by frame: awkward framing from the upstream
// still reaches the SDK intact, a client abort cancels the upstream, and an
// upstream failure ends the stream with a well-formed error frame.
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { NdjsonDecoder } from '../../src/protocol/ndjson.js';
import { SseDecoder } from '../../src/protocol/sse.js';
import { postJson, startHarness, type Harness } from '../helpers/harness.js';

/**
 * What may sit between a blocked upstream and a client that does not read:
 * kernel socket buffers on both loopback hops (they autotune to several MB;
 * about 8 MB was measured here) plus the one frame the gateway holds. The
 * reply is ~150 MB, so a gateway that buffered would let the upstream write
 * far more than this.
 */
const MAX_IN_FLIGHT_BYTES = 32 * 1024 * 1024;
const LONG_REPLY_WORDS = 1_000_000;

describe('streaming', () => {
  let h: Harness;
  let client: OpenAI;
  let token: string;
  before(async () => {
    h = await startHarness({
      configure: (input) => {
        input.connections[0]!.timeouts = { idle: '500ms' };
      },
    });
    token = await h.userToken('alice');
    client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: token, maxRetries: 0 });
  });
  after(() => h.close());

  async function collect(content: string): Promise<string> {
    const stream = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content }], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    return text;
  }

  test('frames split across TCP writes (inside multi-byte characters), CRLF line endings and comment frames', { timeout: 60_000 }, async () => {
    const reference = await collect('héllo 👋 世界');
    h.model.setFault({ kind: 'wire', lineEnding: '\r\n', comments: true, splitEveryBytes: 3 }, { times: 1 });
    assert.equal(await collect('héllo 👋 世界'), reference);
  });

  test('the gateway re-emits whole frames: every frame it sends parses, and [DONE] ends the stream', { timeout: 60_000 }, async () => {
    h.model.setFault({ kind: 'wire', lineEnding: '\r\n', comments: true, splitEveryBytes: 1 }, { times: 1 });
    const response = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'frames' }] });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type')!, /text\/event-stream/);
    const decoder = new SseDecoder();
    const frames = [];
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) frames.push(...decoder.push(chunk));
    frames.push(...decoder.end());
    const dataFrames = frames.filter((f) => f.hasData);
    assert.equal(dataFrames.at(-1)!.data, '[DONE]');
    for (const frame of dataFrames.slice(0, -1)) assert.doesNotThrow(() => JSON.parse(frame.data));
    assert.ok(frames.some((f) => f.comments.length > 0 && !f.hasData), 'comment frames (keep-alives) pass through');
  });

  test('a last frame without its blank line is re-terminated so the client does not drop it', { timeout: 60_000 }, async () => {
    const chunk = (content: string) => JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'demo-chat', choices: [{ index: 0, delta: { content }, finish_reason: null }] });
    h.model.setFault({ kind: 'raw', contentType: 'text/event-stream', writes: [`data: ${chunk('one ')}\n\n`, `: ping\n\ndata: ${chunk('two')}\n`] }, { times: 1 });
    assert.equal(await collect('x'), 'one two');
  });

  test('an NDJSON stream cut inside a line ends with an error line, not half a JSON object', { timeout: 60_000 }, async () => {
    h.model.setFault({ kind: 'raw', contentType: 'application/x-ndjson', writes: ['{"model":"demo-chat","response":"a","done":false}\n', '{"model":"demo-chat","resp'] }, { times: 1 });
    const response = await postJson(`${h.url}/api/generate`, token, { model: 'demo-chat', prompt: 'cut' });
    const lines = (await response.text()).trim().split('\n').map((l) => JSON.parse(l) as { error?: string });
    assert.equal(lines.length, 2);
    assert.match(lines[1]!.error ?? '', /upstream_stream_interrupted/);
  });

  test('an upstream frame over the size limit ends the stream with its own error code', { timeout: 60_000 }, async () => {
    h.model.setFault({ kind: 'raw', contentType: 'text/event-stream', writes: ['data: ', 'x'.repeat(600_000), 'y'.repeat(600_000), '\n\n'] }, { times: 1 });
    const response = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'big' }] });
    const text = await response.text();
    assert.ok(text.length < 10_000, 'the oversized frame was not passed on');
    assert.match(text, /"code":"upstream_frame_too_large"/);
  });

  test('an upstream reset mid-stream ends the client stream with an error the SDK raises', { timeout: 60_000 }, async () => {
    h.model.setFault({ kind: 'reset_mid_stream', afterChunks: 3 }, { times: 1 });
    const stream = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'break' }], stream: true });
    let received = 0;
    await assert.rejects(
      (async () => {
        for await (const _ of stream) received++;
      })(),
      (err: unknown) => {
        assert.ok(err instanceof OpenAI.APIError, String(err));
        assert.match(err.message, /failed mid-stream/);
        return true;
      },
    );
    assert.ok(received >= 1, 'frames before the failure were delivered');
  });

  test('an upstream that stalls mid-stream is cut at the idle timeout with an error frame', { timeout: 60_000 }, async () => {
    h.model.setFault({ kind: 'stall_mid_stream', afterChunks: 2 }, { times: 1 });
    const response = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'stall' }] });
    const text = await response.text();
    const last = text.trimEnd().split('\n\n').at(-1)!;
    const error = JSON.parse(last.replace(/^data: /, '')) as { error: { code: string } };
    assert.equal(error.error.code, 'upstream_stream_interrupted');
  });

  test('a client that disconnects aborts the upstream request', { timeout: 60_000 }, async () => {
    const slow = await startHarness({ model: { chunkDelayMs: 50, replyWords: 200 } });
    try {
      const slowToken = await slow.userToken('alice');
      const abort = new AbortController();
      const aborted = slow.model.waitForAbort(10_000);
      const sdk = new OpenAI({ baseURL: `${slow.url}/v1`, apiKey: slowToken, maxRetries: 0 });
      const stream = await sdk.chat.completions.create(
        { model: 'demo-chat', messages: [{ role: 'user', content: 'long answer' }], stream: true },
        { signal: abort.signal },
      );
      let n = 0;
      try {
        for await (const _ of stream) if (++n === 3) abort.abort();
      } catch {
        // The SDK may end the iteration quietly or throw an abort error; either is fine.
      }
      const seen = await aborted;
      assert.equal(seen.aborted, true);
      assert.equal(seen.path, '/v1/chat/completions');
    } finally {
      await slow.close();
    }
  });

  test('Ollama /api/chat streams NDJSON line by line', { timeout: 60_000 }, async () => {
    const response = await postJson(`${h.url}/api/chat`, token, { model: 'demo-chat', messages: [{ role: 'user', content: 'ndjson ✓' }] });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type')!, /application\/x-ndjson/);
    const decoder = new NdjsonDecoder();
    const lines = [];
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) lines.push(...decoder.push(chunk));
    const values = lines.map((l) => l.value as { done: boolean; message?: { content: string } });
    assert.ok(values.length > 2);
    assert.equal(values.at(-1)!.done, true);
    assert.match(values.map((v) => v.message?.content ?? '').join(''), /ndjson ✓/);
  });

  test('Ollama /api/generate without streaming returns one JSON object', { timeout: 60_000 }, async () => {
    const response = await postJson(`${h.url}/api/generate`, token, { model: 'demo-chat', prompt: 'hi', stream: false });
    const body = (await response.json()) as { done: boolean; response: string };
    assert.equal(body.done, true);
    assert.ok(body.response.length > 0);
  });

  test('Ollama mid-stream failure ends with an Ollama error line', { timeout: 60_000 }, async () => {
    h.model.setFault({ kind: 'reset_mid_stream', afterChunks: 2 }, { times: 1 });
    const response = await postJson(`${h.url}/api/generate`, token, { model: 'demo-chat', prompt: 'break' });
    const lines = (await response.text()).trim().split('\n');
    const last = JSON.parse(lines.at(-1)!) as { error?: string };
    assert.match(last.error ?? '', /upstream_stream_interrupted/);
  });

  test('GET /api/tags lists the Ollama models the caller may use', { timeout: 60_000 }, async () => {
    const response = await fetch(`${h.url}/api/tags`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await response.json()) as { models: Array<{ name: string }> };
    assert.deepEqual(body.models.map((m) => m.name).sort(), ['demo-chat', 'demo-embed']);
  });

  test('a slow reader holds the upstream back: bytes in flight stay bounded, far below the reply, until the client leaves', { timeout: 60_000 }, async (t) => {
    // With backpressure the upstream stalls once the socket buffers on both
    // hops and the one frame the gateway holds are full; a gateway that
    // buffered would let it write everything.
    const big = await startHarness({ model: { replyWords: LONG_REPLY_WORDS } });
    try {
      const bigToken = await big.userToken('alice');
      const { hostname, port } = new URL(big.url);
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = request(
          { hostname, port, path: '/v1/chat/completions', method: 'POST', headers: { authorization: `Bearer ${bigToken}`, 'content-type': 'application/json' } },
          resolve,
        );
        req.on('error', reject);
        req.end(JSON.stringify({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'long' }] }));
      });
      res.pause();
      // Wait for the upstream to stop making progress (blocked, or done), however long that takes
      // on a busy machine; or for it to pass the bound, which fails at once.
      let written = -1;
      for (let unchanged = 0; unchanged < 20 && written <= MAX_IN_FLIGHT_BYTES; ) {
        await new Promise((r) => setTimeout(r, 50));
        const now = big.model.bytesWritten;
        unchanged = now === written ? unchanged + 1 : 0;
        written = now;
      }
      t.diagnostic(`upstream stopped after writing ${written} bytes`);
      assert.ok(written > 0, 'the stream started');
      assert.ok(written < MAX_IN_FLIGHT_BYTES, `the upstream wrote ${written} bytes while the client read nothing, more than ${MAX_IN_FLIGHT_BYTES} can be in flight: the gateway is buffering`);
      res.destroy();
      assert.equal((await big.model.waitForAbort(20_000)).aborted, true, 'the upstream was still waiting to write when the client left');
    } finally {
      await big.close();
    }
  });
});
