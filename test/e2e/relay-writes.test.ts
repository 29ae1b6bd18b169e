// How a stream's start and end reach the client's socket: the status line
// and headers go out in the same write as the first frame when the upstream
// sent them together (one segment, one wake-up for the client, not two), and
// on their own, at once, when the model's first frame is late; the frame that
// completes the stream ([DONE]) and the body's end go out together.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { postJson, startHarness, type Harness } from '../helpers/harness.js';

const frame = (content: string): string => `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;

/** Every write the gateway makes to its clients' sockets, as the bytes handed to the kernel in one call. */
function recordSocketWrites(h: Harness): Buffer[] {
  const writes: Buffer[] = [];
  const bytes = (chunk: string | Buffer, encoding?: BufferEncoding): Buffer => (Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk, encoding));
  h.gateway.server.on('connection', (socket: Socket) => {
    type Chunks = Array<{ chunk: string | Buffer; encoding: BufferEncoding }>;
    const raw = socket as unknown as {
      _write(chunk: string | Buffer, encoding: BufferEncoding, done: (err?: Error | null) => void): void;
      _writev(chunks: Chunks, done: (err?: Error | null) => void): void;
    };
    const write = raw._write.bind(socket);
    const writev = raw._writev.bind(socket);
    raw._write = (chunk, encoding, done) => {
      writes.push(bytes(chunk, encoding));
      write(chunk, encoding, done);
    };
    raw._writev = (chunks, done) => {
      writes.push(Buffer.concat(chunks.map(({ chunk, encoding }) => bytes(chunk, encoding))));
      writev(chunks, done);
    };
  });
  return writes;
}

describe('the start of a stream on the client socket', () => {
  let upstream: http.Server;
  let upstreamUrl: string;
  /** Set by a test to hold the upstream's first frame back until it says so. */
  let holdFirstFrame: Promise<void> | undefined;
  before(async () => {
    upstream = http.createServer((req, res) => {
      req.resume();
      req.once('end', async () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        if (holdFirstFrame) {
          res.flushHeaders();
          await holdFirstFrame;
        }
        // Node sends the headers with the first write: status and first frame leave in one segment.
        res.write(frame('first'));
        res.end(`${frame('second')}data: [DONE]\n\n`);
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => upstream.close(() => resolve())));

  let h: Harness;
  let writes: Buffer[];
  before(async () => {
    h = await startHarness({
      configure: (input) => {
        input.connections[0]!.url = upstreamUrl;
        input.connections[0]!.kind = 'openai';
      },
    });
    writes = recordSocketWrites(h);
  });
  after(() => h.close());

  const ask = async (): Promise<Response> =>
    postJson(`${h.url}/v1/chat/completions`, await h.userToken('alice'), { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'hi' }] });

  test('headers and a first frame that came with them leave in one write', async () => {
    holdFirstFrame = undefined;
    writes.length = 0;
    const response = await ask();
    assert.equal(response.status, 200);
    assert.match(await response.text(), /first[\s\S]*second[\s\S]*\[DONE\]/);
    const start = writes.find((w) => w.toString('latin1').startsWith('HTTP/1.1 200'));
    assert.ok(start, 'the response was written');
    assert.ok(start.toString('utf8').includes(frame('first')), `the first write also carries the first frame: ${JSON.stringify(start.toString('utf8'))}`);
  });

  test("the stream's last frame and the end of its body leave in one write", async () => {
    holdFirstFrame = undefined;
    writes.length = 0;
    const response = await ask();
    assert.match(await response.text(), /\[DONE\]/);
    const last = writes.find((w) => w.toString('latin1').includes('data: [DONE]'));
    assert.ok(last, 'the [DONE] frame was written');
    assert.ok(last.toString('latin1').endsWith('\r\n0\r\n\r\n'), `the write with [DONE] also ends the chunked body: ${JSON.stringify(last.toString('latin1'))}`);
  });

  test('headers leave at once when the first frame is late', { timeout: 20_000 }, async () => {
    let release!: () => void;
    holdFirstFrame = new Promise((resolve) => (release = resolve));
    try {
      // Resolves at the response's headers: the upstream holds its first frame until then.
      const response = await ask();
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
      release();
      assert.match(await response.text(), /first[\s\S]*second[\s\S]*\[DONE\]/);
    } finally {
      release();
      holdFirstFrame = undefined;
    }
  });
});
