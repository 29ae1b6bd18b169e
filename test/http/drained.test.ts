// drained() waits for a slow client once per full socket buffer: a long
// stream to a slow reader waits thousands of times, so each wait must take
// its listeners with it.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { drained } from '../../src/http/send.js';

const CHUNK = Buffer.alloc(256 * 1024, 'x');
const WAITS = 100;

test('a response that drains many times keeps the same listeners; a client that leaves ends the wait with false', { timeout: 60_000 }, async () => {
  let report!: (r: { waits: number; before: number[]; after: number[]; gone: boolean }) => void;
  const result = new Promise<{ waits: number; before: number[]; after: number[]; gone: boolean }>((resolve) => (report = resolve));
  const counts = (res: http.ServerResponse): number[] => ['close', 'error', 'drain'].map((e) => res.listenerCount(e));
  const server = http.createServer(async (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const before = counts(res);
    let waits = 0;
    while (waits < WAITS) if (!res.write(CHUNK)) {
      waits++;
      assert.equal(await drained(res), true);
    }
    const after = counts(res);
    // The client stops reading and leaves: once the buffers between are full, the wait ends, with false.
    let gone = false;
    while (!gone) if (!res.write(CHUNK)) gone = !(await drained(res));
    report({ waits, before, after, gone });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const req = http.get(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  req.on('response', (res) => {
    let bytes = 0;
    res.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes >= WAITS * CHUNK.length) {
        res.pause();
        setTimeout(() => req.destroy(), 50);
      }
    });
  });
  req.on('error', () => {});
  const { waits, before, after, gone } = await result;
  server.close();
  assert.equal(waits, WAITS);
  assert.deepEqual(after, before, 'listeners for close, error and drain after the waits, as before them');
  assert.ok(gone, 'a client that left ends the wait with false');
});
