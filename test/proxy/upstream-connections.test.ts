// The keep-alive connections to one upstream target: a burst opens as many
// as it needs, and once the upstream closes the idle ones nothing is held
// (undici's Pool kept every Client it had opened until it was closed).
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { MAX_IDLE_REUSE_MS, UpstreamConnections } from '../../src/proxy/upstream-connections.js';

describe('upstream connections', () => {
  let server: http.Server;
  let origin: string;
  /** Answers are held until released, so a burst really has that many requests in flight at once. */
  let holding: Array<() => void> = [];
  before(async () => {
    server = http.createServer((_req, res) => {
      holding.push(() => res.end('ok'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const until = async (what: string, ok: () => boolean): Promise<void> => {
    const deadline = Date.now() + 10_000;
    while (!ok()) {
      assert.ok(Date.now() < deadline, what);
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  /** `n` requests at once through `connections`. */
  const burst = async (connections: UpstreamConnections, n: number): Promise<void> => {
    const requests = Array.from({ length: n }, async () => {
      const res = await connections.request({ path: '/', method: 'GET' });
      assert.equal(await res.body.text(), 'ok');
    });
    await until(`${n} requests reach the server`, () => holding.length === n);
    for (const answer of holding.splice(0)) answer();
    await Promise.all(requests);
  };

  test('after a burst, connections the upstream closes while idle are dropped, down to none', { timeout: 60_000 }, async () => {
    let counted = 0;
    const connections = new UpstreamConnections(origin, { keepAliveTimeout: 60_000 }, { onCount: (delta) => (counted += delta) });
    await burst(connections, 20);
    assert.equal(connections.size, 20, 'one connection per request in flight');
    assert.equal(counted, 20);

    server.closeIdleConnections();
    await until('every idle connection is dropped once the upstream closes it', () => connections.size === 0);
    assert.equal(counted, 0, 'the gauge follows');

    // And the set still works: a new burst opens fresh connections.
    await burst(connections, 3);
    assert.equal(connections.size, 3);
    await connections.close();
    assert.equal(connections.size, 0);
    assert.equal(counted, 0);
  });

  test('sequential requests reuse one warm connection', { timeout: 60_000 }, async () => {
    const connections = new UpstreamConnections(origin, { keepAliveTimeout: 60_000 });
    for (let i = 0; i < 5; i++) await burst(connections, 1);
    assert.equal(connections.size, 1);
    await connections.close();
  });

  test('an idle connection older than MAX_IDLE_REUSE_MS is closed, not reused: the upstream may have closed it already', { timeout: 60_000 }, async () => {
    let clock = 0;
    let counted = 0;
    const connections = new UpstreamConnections(origin, { keepAliveTimeout: 60_000 }, { onCount: (delta) => (counted += delta), now: () => clock, writtenAfter: () => clock });
    await burst(connections, 2);
    assert.equal(connections.size, 2);
    clock += MAX_IDLE_REUSE_MS - 1;
    await burst(connections, 1);
    assert.equal(connections.size, 2, 'just inside the limit, the warmest is reused');
    clock += MAX_IDLE_REUSE_MS;
    await burst(connections, 1);
    assert.equal(connections.size, 1, 'both stale idle connections were dropped; only the fresh one is held');
    assert.equal(counted, 1);
    await connections.close();
  });

  test('a connection that fails to connect is not kept', { timeout: 60_000 }, async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const connections = new UpstreamConnections(`http://127.0.0.1:${port}`, {});
    await assert.rejects(connections.request({ path: '/', method: 'GET' }), { code: 'ECONNREFUSED' });
    assert.equal(connections.size, 0);
    await connections.close();
  });
});
