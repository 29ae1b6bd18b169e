// A model server's answer read from undici's dispatch without a Readable
// (src/proxy/upstream-answer.ts), against a real server through the
// gateway's own connections: the body whole and in order, backpressure that
// holds the upstream back, cancellation both ways, failures before and after
// the headers, an informational answer skipped, and a Readable only on request.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { requestAnswer, type UpstreamBody } from '../../src/proxy/upstream-answer.js';
import { UpstreamConnections } from '../../src/proxy/upstream-connections.js';
import { DirectTransport } from '../../src/proxy/direct-transport.js';
import { configSchema } from '../../src/config/schema.js';

function within<T>(promise: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms)));
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Reads a body to its end or failure, pausing after each chunk for `pauseMs` when given. */
function readAll(body: UpstreamBody, pauseMs = 0): Promise<{ chunks: Buffer[]; error?: Error }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    body.read({
      data: (chunk) => {
        chunks.push(chunk);
        if (pauseMs > 0) {
          body.pause();
          setTimeout(() => body.resume(), pauseMs);
        }
      },
      end: () => resolve({ chunks }),
      error: (error) => resolve({ chunks, error }),
    });
  });
}

const frame = (i: number): string => `data: {"i":${i},"text":"${'é'.repeat(20)}"}\n\n`;

describe('an upstream answer read from dispatch', () => {
  let server: http.Server;
  let origin: string;
  let connections: UpstreamConnections;
  /** Per request path: whether the server saw its request closed before its answer ended. */
  const closedEarly = new Map<string, Promise<boolean>>();
  /** Bytes the server had written when /held stopped being drained. */
  let heldWritten = 0;

  before(async () => {
    server = http.createServer((req, res) => {
      const path = req.url!;
      closedEarly.set(path, new Promise((resolve) => res.on('close', () => resolve(!res.writableFinished))));
      req.resume();
      if (path === '/frames') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        let i = 0;
        const next = (): void => {
          if (i === 20) return void res.end('data: [DONE]\n\n');
          res.write(frame(i++));
          setTimeout(next, 2);
        };
        next();
      } else if (path === '/held') {
        // Writes as fast as the gateway takes it: a paused reader must stop it well before all of it.
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const piece = Buffer.alloc(16 * 1024, 120);
        let written = 0;
        const pump = (): void => {
          while (written < 32 * 1024 * 1024) {
            written += piece.length;
            heldWritten = written;
            if (!res.write(piece)) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
      } else if (path === '/forever') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(frame(0));
      } else if (path === '/reset') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(frame(0), () => setTimeout(() => res.socket!.destroy(), 20));
      } else if (path === '/hints') {
        res.writeEarlyHints({ link: '</a.css>; rel=preload' });
        res.writeHead(201, { 'content-type': 'application/json' }).end('{"ok":true}');
      } else if (path === '/slow-headers') {
        setTimeout(() => res.end('late'), 5_000);
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    connections = new UpstreamConnections(origin, {});
  });
  after(async () => {
    await connections.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const ask = (path: string, signal = new AbortController().signal) => requestAnswer(connections, { path, method: 'GET', signal });

  test('the body reaches its reader whole and in order, and the answer is done with once read', async () => {
    const answer = await within(ask('/frames'), 'answer');
    assert.equal(answer.statusCode, 200);
    assert.equal(answer.headers['content-type'], 'text/event-stream');
    let closed = false;
    answer.body.onClose(() => (closed = true));
    const { chunks, error } = await within(readAll(answer.body, 1), 'body');
    assert.equal(error, undefined);
    assert.equal(Buffer.concat(chunks).toString('utf8'), Array.from({ length: 20 }, (_, i) => frame(i)).join('') + 'data: [DONE]\n\n');
    assert.equal(closed, true);
  });

  test('a paused reader holds the upstream back (about a Readable high-water mark held, not the whole answer), and resuming reads the rest', async () => {
    const answer = await within(ask('/held'), 'answer');
    let received = 0;
    let pausedAt = 0;
    const done = new Promise<void>((resolve, reject) => {
      answer.body.read({
        data: (chunk) => {
          received += chunk.length;
          if (pausedAt === 0 && received >= 1024 * 1024) {
            pausedAt = received;
            answer.body.pause();
            setTimeout(() => {
              // The server's kernel buffers and ours fill; the upstream cannot run far ahead of the reader.
              assert.ok(heldWritten < pausedAt + 16 * 1024 * 1024, `written ${heldWritten} with ${pausedAt} read`);
              answer.body.resume();
            }, 300);
          }
        },
        end: () => resolve(),
        error: reject,
      });
    });
    await within(done, 'the whole body', 30_000);
    assert.equal(received, 32 * 1024 * 1024);
  });

  test("the request's signal, after the headers, ends the read with its reason and closes the upstream's request", async () => {
    const abort = new AbortController();
    const answer = await within(ask('/forever', abort.signal), 'answer');
    const read = readAll(answer.body);
    setTimeout(() => abort.abort(new Error('the client left')), 20);
    const { chunks, error } = await within(read, 'body');
    assert.equal(error?.message, 'the client left');
    assert.equal(Buffer.concat(chunks).toString('utf8'), frame(0));
    assert.equal(await within(closedEarly.get('/forever')!, 'upstream close'), true);
  });

  test('the signal, even while the reader is paused, reaches it', async () => {
    const abort = new AbortController();
    const answer = await within(ask('/forever', abort.signal), 'answer');
    const read = new Promise<Error>((resolve) => {
      answer.body.read({ data: () => answer.body.pause(), end: () => resolve(new Error('ended')), error: resolve });
    });
    setTimeout(() => abort.abort(new Error('shutting down')), 50);
    assert.equal((await within(read, 'body')).message, 'shutting down');
  });

  test('the signal before the headers rejects the answer and closes the request', async () => {
    const abort = new AbortController();
    const asked = ask('/slow-headers', abort.signal);
    setTimeout(() => abort.abort(new Error('gave up')), 50);
    await assert.rejects(within(asked, 'answer'), /gave up/);
    assert.equal(await within(closedEarly.get('/slow-headers')!, 'upstream close'), true);
  });

  test("the reader's destroy closes the upstream's request", async () => {
    const answer = await within(ask('/forever'), 'answer');
    let closed = false;
    answer.body.onClose(() => (closed = true));
    await new Promise<void>((resolve) => answer.body.read({ data: () => resolve(), end: () => {}, error: () => {} }));
    answer.body.destroy();
    assert.equal(closed, true);
    assert.equal(await within(closedEarly.get('/forever')!, 'upstream close'), true);
  });

  test('an upstream that resets mid-body fails the read', async () => {
    const answer = await within(ask('/reset'), 'answer');
    const { error } = await within(readAll(answer.body), 'body');
    assert.ok(error, 'the reader learns of the reset');
  });

  test('an informational answer is skipped: the final status and headers resolve it', async () => {
    const answer = await within(ask('/hints'), 'answer');
    assert.equal(answer.statusCode, 201);
    assert.equal(await new Response(Readable.toWeb(answer.body.readable()) as ReadableStream).text(), '{"ok":true}');
  });

  test('a direct target hands the relay its chunks without a Readable; one is made only when `body` is read', async () => {
    const config = configSchema.parse({
      server: { port: 0 },
      identity: { issuers: [{ issuer: 'https://idp.example', audience: 'modelgate' }] },
      connections: [{ name: 'm', kind: 'openai', url: origin, models: [{ name: 'm' }] }],
      access: [],
    } as never);
    const transport = new DirectTransport(config.connections[0]!);
    const pushed: Buffer[] = [];
    const push = Readable.prototype.push;
    Readable.prototype.push = function (this: Readable, chunk: unknown, encoding?: BufferEncoding) {
      if (Buffer.isBuffer(chunk)) pushed.push(chunk);
      return push.call(this, chunk, encoding);
    };
    try {
      const response = await within(transport.send({ method: 'GET', path: '/frames', headers: {}, signal: new AbortController().signal }), 'answer');
      assert.ok(response.chunks, 'the chunks, for the relay');
      const { chunks } = await within(readAll(response.chunks), 'body');
      assert.equal(chunks.length > 0, true);
      // undici's request() would have pushed each payload chunk into its body Readable.
      const payloads = new Set(chunks.map((c) => c.toString('latin1')));
      assert.deepEqual(pushed.filter((p) => payloads.has(p.toString('latin1'))), []);
      const whole = await within(transport.send({ method: 'GET', path: '/frames', headers: {}, signal: new AbortController().signal }), 'answer');
      let text = '';
      for await (const chunk of whole.body) text += (chunk as Buffer).toString('utf8');
      assert.match(text, /data: \[DONE\]\n\n$/);
    } finally {
      Readable.prototype.push = push;
      await transport.close();
    }
  });
});
