// What reaches the client of a stream passed on untouched is the text of the
// upstream's frames, UTF-8 encoded: the same bytes the upstream sent where
// they were valid UTF-8 (the relay then writes the upstream's own chunk, see
// relay.ts `sentAsIs`), U+FFFD where they were not, no leading byte-order
// mark. Chunks are cut inside frames and inside characters on purpose.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { postJson, startHarness, type Harness } from '../helpers/harness.js';

const frame = (content: string): string => `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
const bytes = (text: string): Buffer => Buffer.from(text, 'utf8');

/** The upstream's writes, each sent on its own a moment after the last, so most reach the gateway as separate chunks. */
const WRITES: Buffer[] = (() => {
  const split = bytes(frame('split é here'));
  const cutAt = split.indexOf(0xc3) + 1; // inside "é"
  const ascii = bytes(frame('cut between two ASCII bytes'));
  const invalid = bytes(frame('bad X byte'));
  invalid[invalid.indexOf('X')] = 0xff;
  return [
    Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes(frame('after a byte-order mark'))]),
    bytes(frame('whole, with é and 👋')),
    bytes(frame('two frames') + frame('in one chunk')),
    ascii.subarray(0, 20),
    ascii.subarray(20),
    split.subarray(0, cutAt),
    split.subarray(cutAt),
    invalid,
    bytes(frame('valid again')),
    bytes('data: [DONE]\n\n'),
  ];
})();

/** The upstream's bytes as text (a leading BOM dropped, invalid bytes as U+FFFD), encoded again. */
const EXPECTED = Buffer.from(new TextDecoder().decode(Buffer.concat(WRITES)), 'utf8');

describe('a stream passed on untouched', () => {
  let upstream: http.Server;
  let upstreamUrl: string;
  before(async () => {
    upstream = http.createServer((req, res) => {
      req.resume();
      req.once('end', async () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (const write of WRITES) {
          res.write(write);
          await new Promise((r) => setTimeout(r, 15));
        }
        res.end();
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => upstream.close(() => resolve())));

  for (const recording of [true, false]) {
    describe(`recording ${recording ? 'on' : 'off'}`, () => {
      let h: Harness;
      before(async () => {
        h = await startHarness({
          configure: (input) => {
            input.connections[0]!.url = upstreamUrl;
            input.connections[0]!.kind = 'openai';
            input.recording = { ...input.recording, enabled: recording };
          },
        });
      });
      after(() => h.close());

      test('reaches the client as the text of its frames, byte for byte', async () => {
        const response = await postJson(`${h.url}/v1/chat/completions`, await h.userToken('alice'), { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'hi' }] });
        assert.equal(response.status, 200);
        const received = Buffer.from(await response.arrayBuffer());
        assert.equal(received.toString('hex'), EXPECTED.toString('hex'));
        assert.ok(received.includes(Buffer.from('\uFFFD', 'utf8')), 'the invalid byte arrived as U+FFFD');
        if (!recording) return;
        // Recorded as sent: each chunk's size is its UTF-8 bytes (the relay passes the size its write's encoding gave).
        await h.gateway.services.audit!.recorder.flush();
        const id = response.headers.get('x-request-id')!;
        const shown = (await (await fetch(`${h.url}/v1/sessions/${id}`, { headers: { authorization: `Bearer ${await h.userToken('alice')}` } })).json()) as {
          response: { chunks: Array<{ size: number; raw: string | null }> };
        };
        const chunks = shown.response.chunks;
        assert.equal(Buffer.from(chunks.map((c) => c.raw ?? '').join(''), 'utf8').toString('hex'), EXPECTED.toString('hex'));
        assert.deepEqual(
          chunks.map((c) => c.size),
          chunks.map((c) => Buffer.byteLength(c.raw ?? '')),
        );
        assert.equal(chunks.reduce((sum, c) => sum + c.size, 0), EXPECTED.length);
      });
    });
  }
});
