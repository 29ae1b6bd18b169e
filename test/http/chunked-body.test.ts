// ChunkedBody frames a streamed body's chunks itself, one socket write each:
// the bytes on the wire must still be exactly HTTP/1.1 chunked encoding, the
// connection must stay reusable, and a client that cannot take chunks
// (HTTP/1.0) must get the body as Node would send it.
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { ChunkedBody } from '../../src/http/chunked-body.js';

/** What each test's response writes: strings, bytes, an empty string (which must not end the body), then an end with data. */
const PIECES: Array<string | Buffer> = ['data: {"a":"é"}\n\n', Buffer.from('data: bytes\n\n'), '', 'data: 🙂\n\n'];
const LAST = 'data: [DONE]\n\n';
const BODY = PIECES.map((p) => p.toString()).join('') + LAST;

let server: http.Server;
let port: number;
/** Per connection, the bytes each call handed to the socket (status lines and headers included), and in how many pieces. */
const socketWrites: Buffer[][] = [];
const socketPieces: number[][] = [];

before(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const body = new ChunkedBody(res);
    // One piece per turn of the event loop, as frames arrive from an upstream.
    let next = 0;
    const tick = (): void => {
      if (next < PIECES.length) {
        body.write(PIECES[next++]!);
        setImmediate(tick);
      } else body.end(LAST);
    };
    tick();
  });
  server.on('connection', (socket: Socket) => {
    const writes: Buffer[] = [];
    const pieces: number[] = [];
    socketWrites.push(writes);
    socketPieces.push(pieces);
    spyOnWrites(socket, writes, pieces);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
after(() => {
  // fetch keeps its connection alive; close() alone would wait for it.
  server.closeAllConnections();
  return new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Records each call's bytes, as relay-writes.test.ts does. */
function spyOnWrites(socket: Socket, writes: Buffer[], pieces: number[]): void {
  const raw = socket as unknown as {
    _write(chunk: string | Buffer, encoding: BufferEncoding, done: (err?: Error | null) => void): void;
    _writev(chunks: Array<{ chunk: string | Buffer; encoding: BufferEncoding }>, done: (err?: Error | null) => void): void;
  };
  const bytes = (chunk: string | Buffer, encoding?: BufferEncoding): Buffer => (Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk, encoding));
  const write = raw._write.bind(socket);
  const writev = raw._writev.bind(socket);
  raw._write = (chunk, encoding, done) => {
    writes.push(bytes(chunk, encoding));
    pieces.push(1);
    write(chunk, encoding, done);
  };
  raw._writev = (chunks, done) => {
    writes.push(Buffer.concat(chunks.map(({ chunk, encoding }) => bytes(chunk, encoding))));
    // res.end() adds an empty write of its own, gathered with the last one when the socket is busy.
    pieces.push(chunks.filter(({ chunk }) => chunk.length > 0).length);
    writev(chunks, done);
  };
}

/** Calls `note` with each chunk handed to the socket (a string or a Buffer), before the socket writes it. */
function onEachSocketChunk(socket: Socket, note: (chunk: string | Buffer) => void): void {
  const raw = socket as unknown as {
    _write(chunk: string | Buffer, encoding: BufferEncoding, done: (err?: Error | null) => void): void;
    _writev(chunks: Array<{ chunk: string | Buffer }>, done: (err?: Error | null) => void): void;
  };
  const write = raw._write.bind(socket);
  const writev = raw._writev.bind(socket);
  raw._write = (chunk, encoding, done) => {
    note(chunk);
    write(chunk, encoding, done);
  };
  raw._writev = (chunks, done) => {
    for (const { chunk } of chunks) note(chunk);
    writev(chunks, done);
  };
}

/**
 * Sends raw requests on one connection, each once the answer before it is complete (`answered` counts
 * the complete answers in what came back), and resolves with everything received.
 */
function exchange(requests: string[], answered: (received: string) => number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    let sent = 1;
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      received += text;
      const count = answered(received);
      if (count < sent) return;
      if (sent < requests.length) socket.write(requests[sent++]!);
      else {
        socket.destroy();
        resolve(received);
      }
    });
    socket.on('end', () => resolve(received));
    socket.on('error', reject);
    socket.write(requests[0]!);
  });
}

/** Decodes a chunked body strictly: every size line must match its data, and the body must end with the last chunk. */
function dechunk(wire: Buffer): string {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = wire.indexOf('\r\n', at);
    assert.ok(lineEnd > at, `a chunk size line at ${at}`);
    const size = Number.parseInt(wire.subarray(at, lineEnd).toString('latin1'), 16);
    assert.match(wire.subarray(at, lineEnd).toString('latin1'), /^[0-9a-f]+$/);
    at = lineEnd + 2;
    if (size === 0) {
      assert.equal(wire.subarray(at).toString('latin1'), '\r\n', 'the last chunk ends the body');
      return Buffer.concat(parts).toString('utf8');
    }
    parts.push(wire.subarray(at, at + size));
    assert.equal(wire.subarray(at + size, at + size + 2).toString('latin1'), '\r\n', `the chunk at ${at} is exactly its declared size`);
    at += size + 2;
  }
}

const request = (version: string): string => `GET / HTTP/${version}\r\nHost: x\r\n\r\n`;

test('the body is exact chunked encoding, each chunk in one socket write, and the connection stays open for the next request', async () => {
  socketWrites.length = 0;
  socketPieces.length = 0;
  const answers = await exchange([request('1.1'), request('1.1')], (received) => received.split('\r\n0\r\n\r\n').length - 1);
  const [first, second] = answers.split(/(?=HTTP\/1\.1 200)/);
  for (const answer of [first!, second!]) {
    const [head, ...rest] = answer.split('\r\n\r\n');
    assert.match(head!, /transfer-encoding: chunked/i);
    assert.doesNotMatch(head!, /connection: close/i);
    assert.equal(dechunk(Buffer.from(rest.join('\r\n\r\n'), 'utf8')), BODY);
  }
  // Both answers came on one connection (the first did not close it), each chunk in a write of its own.
  assert.equal(socketWrites.length, 1);
  const body = socketWrites[0]!.map((w) => w.toString('latin1').replace(/^HTTP\/1\.1 [^]*?\r\n\r\n/, ''));
  // Per answer three non-empty pieces, then the last one with the end: the empty string wrote nothing.
  assert.equal(body.length, 8, `one write per chunk: ${JSON.stringify(body)}`);
  // Handed over whole, not as size, data and CRLFs gathered by the socket (Node's own framing: four pieces).
  assert.deepEqual(socketPieces[0], [1, 1, 1, 1, 1, 1, 1, 1]);
  for (const [i, text] of body.entries()) {
    assert.match(text, /^[0-9a-f]+\r\n[^]*\r\n$/, 'whole chunks');
    if (i % 4 === 3) assert.match(text, /^[0-9a-f]+\r\n[^]*\r\n0\r\n\r\n$/, 'the last chunk and the end of the body leave in one write');
  }
});

test('an HTTP/1.0 client gets the body unframed, delimited by the close, as Node sends it', async () => {
  const answer = await exchange([request('1.0')], () => 0);
  const [head, ...rest] = answer.split('\r\n\r\n');
  assert.doesNotMatch(head!, /transfer-encoding/i);
  assert.equal(rest.join('\r\n\r\n'), BODY);
});

test('Node.js clients read the body', async () => {
  const response = await fetch(`http://127.0.0.1:${port}/`);
  assert.equal(await response.text(), BODY);
});

test('a chunk holding the end of a body and a response of its own stays one chunk: the next request on the connection gets its own answer', async () => {
  // What a hostile upstream could put in a frame: a last-chunk marker and a forged response after it.
  const forged = 'data: é\r\n0\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nforged\n\n';
  let served = 0;
  const hostile = http.createServer((req, res) => {
    req.resume();
    served++;
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const body = new ChunkedBody(res);
    body.write(forged);
    body.end(`data: ${served}\n\n`);
  });
  await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', resolve));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = (): Promise<string> =>
    new Promise((resolve, reject) => {
      http
        .get({ port: (hostile.address() as AddressInfo).port, host: '127.0.0.1', agent }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve(text));
        })
        .on('error', reject);
    });
  try {
    assert.equal(await get(), `${forged}data: 1\n\n`);
    assert.equal(await get(), `${forged}data: 2\n\n`);
    assert.equal(served, 2);
  } finally {
    agent.destroy();
    hostile.closeAllConnections();
    await new Promise<void>((resolve) => hostile.close(() => resolve()));
  }
});

test('text is encoded once, into the chunk handed to the socket, byte for byte as Node encodes it, with its size for the caller', async () => {
  // Multi-byte characters, a pair, lone surrogates (U+FFFD on the wire, as Node writes them), chunks of every size up to
  // past a slab's share (encoded apart) and enough of them to fill several slabs.
  const texts = ['data: é\n\n', 'a', '🙂', 'x\ud800y', '\udc00', 'end \ud83d', '€'.repeat(6000), 'z'.repeat(16 * 1024)];
  for (let i = 0; i < 200; i++) texts.push(`data: ${'word é 🙂 '.repeat(i % 40)}${i}\n\n`);
  const sizes: number[] = [];
  const handedOver: Array<'string' | 'bytes'> = [];
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    onEachSocketChunk(res.socket!, (chunk) => handedOver.push(typeof chunk === 'string' ? 'string' : 'bytes'));
    const body = new ChunkedBody(res);
    let next = 0;
    const tick = (): void => {
      if (next === texts.length) return body.end();
      body.write(texts[next++]!);
      sizes.push(body.lastDataBytes);
      setImmediate(tick);
    };
    tick();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const wire = await new Promise<Buffer>((resolve, reject) => {
      const received: Buffer[] = [];
      const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
      socket.on('data', (b: Buffer) => received.push(b));
      socket.on('end', () => resolve(Buffer.concat(received)));
      socket.on('error', reject);
      socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    });
    const head = wire.indexOf('\r\n\r\n');
    const body = wire.subarray(head + 4);
    // Strictly chunked, each chunk exactly the UTF-8 of its text (dechunk checks every size line).
    assert.equal(Buffer.from(dechunk(body), 'utf8').toString('hex'), Buffer.concat(texts.map((t) => Buffer.from(t, 'utf8'))).toString('hex'));
    let at = 0;
    for (const text of texts) {
      const size = Buffer.byteLength(text);
      assert.equal(body.subarray(at, body.indexOf('\r\n', at)).toString('latin1'), size.toString(16));
      at = body.indexOf('\r\n', at) + 2 + size + 2;
    }
    assert.deepEqual(sizes, texts.map((t) => Buffer.byteLength(t)), 'lastDataBytes is each text\'s UTF-8 size');
    // After the first chunk (a string, so Node sends it with the status line and headers in one piece), bytes.
    assert.ok(handedOver.length > texts.length, 'every chunk, then the end');
    assert.equal(handedOver[0], 'string');
    assert.deepEqual(new Set(handedOver.slice(1, texts.length)), new Set(['bytes']));
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('a chunk waiting in a slow client\'s socket holds on to at most 8 KiB besides itself', async () => {
  // Queued chunks keep their backing memory alive until the socket writes them; a client that stops reading keeps
  // what it has queued. Slices of a large shared slab would make each such client hold a whole slab.
  const texts = Array.from({ length: 300 }, (_, i) => `data: {"n":${i},"w":"${'é'.repeat(i % 50)}"}\n\n`);
  texts.push('x'.repeat(5000), 'y'.repeat(3000));
  const held: Array<{ length: number; backing: number }> = [];
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    onEachSocketChunk(res.socket!, (chunk) => {
      if (Buffer.isBuffer(chunk)) held.push({ length: chunk.length, backing: chunk.buffer.byteLength });
      // A queued string is kept as an exact copy.
      else if (typeof chunk === 'string') held.push({ length: Buffer.byteLength(chunk), backing: 0 });
    });
    const body = new ChunkedBody(res);
    // One chunk a turn, to a client that reads: each goes to the socket as a slab slice, not a string.
    let next = 0;
    const tick = (): void => {
      if (next === texts.length) return body.end();
      body.write(texts[next++]!);
      setImmediate(tick);
    };
    tick();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const answer = await new Promise<string>((resolve, reject) => {
      let text = '';
      http.get({ port: (server.address() as AddressInfo).port, host: '127.0.0.1' }, (res) => {
        res.setEncoding('utf8');
        res.on('data', (t: string) => (text += t));
        res.on('end', () => resolve(text));
      }).on('error', reject);
    });
    assert.equal(answer, texts.join(''));
    assert.ok(held.filter(({ backing }) => backing > 0).length >= texts.length - 3, 'chunks went to the socket as bytes');
    for (const { length, backing } of held) assert.ok(backing <= Math.max(8 * 1024, length), `a ${length}-byte chunk holds ${backing} bytes`);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('once a client falls behind, its chunks go as strings (copied exactly when queued), so it holds at most one slab', async () => {
  const handed: Array<{ queued: boolean; bytes: boolean }> = [];
  let stop: (() => void) | undefined;
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const write = res.write.bind(res) as (chunk: unknown) => boolean;
    (res as unknown as { write: (chunk: unknown) => boolean }).write = (chunk) => {
      handed.push({ queued: res.writableLength > 0, bytes: Buffer.isBuffer(chunk) });
      return write(chunk);
    };
    const body = new ChunkedBody(res);
    let i = 0;
    // One chunk a turn, as a relay does, well past what a client that does not read lets through.
    const tick = (): void => {
      if (i++ < 20000) {
        body.write(`data: {"n":${i},"text":"${'x'.repeat(1200)}"}\n\n`);
        setImmediate(tick);
      } else stop?.();
    };
    tick();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
  try {
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    socket.pause(); // reads nothing: the server's socket backs up
    await new Promise<void>((resolve) => (stop = resolve));
    const whileQueued = handed.filter((h) => h.queued);
    assert.ok(whileQueued.length > 100, `the client fell behind (${whileQueued.length} chunks written while others were queued)`);
    assert.deepEqual(whileQueued.filter((h) => h.bytes), [], 'no slab slice is queued behind another chunk');
    assert.ok(handed.some((h) => !h.queued && h.bytes), 'a client that keeps up gets slab slices');
  } finally {
    socket.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
