// The keep-alive connections to one upstream target: a burst opens as many
// as it needs, and once the upstream closes the idle ones nothing is held
// (undici's Pool kept every Client it had opened until it was closed).
import assert from 'node:assert/strict';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Dispatcher } from 'undici';
import { RECEIVE_BUFFER_BYTES } from '../../src/proxy/arrival-clock.js';
import { MAX_IDLE_REUSE_MS, UpstreamConnections } from '../../src/proxy/upstream-connections.js';

/** Settles with `promise`, or rejects naming `what` after `ms`: a hang fails as itself. */
function within<T>(promise: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms)));
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** One request through `dispatch` with a handler in undici's current interface (as the agent's), its status and body. */
function dispatchNew(connections: Dispatcher, path: string, overrides: Partial<Dispatcher.DispatchHandler> = {}): Promise<{ statuses: number[]; body: string }> {
  return new Promise((resolve, reject) => {
    const statuses: number[] = [];
    const chunks: Buffer[] = [];
    connections.dispatch(
      { path, method: 'GET' },
      {
        onRequestStart() {},
        onResponseStart(_controller, statusCode) {
          statuses.push(statusCode);
        },
        onResponseData(_controller, chunk) {
          chunks.push(chunk);
        },
        onResponseEnd() {
          resolve({ statuses, body: Buffer.concat(chunks).toString() });
        },
        onResponseError(_controller, err) {
          reject(err);
        },
        ...overrides,
      },
    );
  });
}

describe('upstream connections', () => {
  let server: http.Server;
  let origin: string;
  /** Answers are held until released, so a burst really has that many requests in flight at once. */
  let holding: Array<() => void> = [];
  before(async () => {
    server = http.createServer((req, res) => {
      holding.push(() => res.end(req.url === '/large' ? 'x'.repeat(RECEIVE_BUFFER_BYTES + 1) : 'ok'));
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

  test('a caller that gives up while its connection is still opening is answered at once, and the connection is not kept', { timeout: 60_000 }, async () => {
    // A connect that never completes (a model server behind a firewall that drops SYNs), with a connect timeout far off.
    let connecting = 0;
    const connections = new UpstreamConnections(origin, {
      connect: () => {
        connecting++;
      },
      connectTimeout: 600_000,
    });
    try {
      for (const abortedBefore of [false, true]) {
        const controller = new AbortController();
        if (abortedBefore) controller.abort(new Error('the client went away'));
        const request = connections.request({ path: '/', method: 'GET', signal: controller.signal });
        await until('the connection is being opened', () => connections.size === 1);
        controller.abort(new Error('the client went away'));
        await assert.rejects(within(request, 'the abandoned request'));
        assert.equal(connections.size, 0, `aborted ${abortedBefore ? 'before' : 'after'} dispatch`);
      }
      assert.equal(connecting, 2);
    } finally {
      await connections.close();
    }
  });

  test('an informational answer (103 Early Hints, 102 Processing) before the answer: the answer comes through to either handler interface, and the connection is reused', { timeout: 60_000 }, async () => {
    const informational = http.createServer((_req, res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      res.writeProcessing();
      res.end('ok');
    });
    informational.keepAliveTimeout = 60_000;
    let opened = 0;
    informational.on('connection', () => opened++);
    await new Promise<void>((resolve) => informational.listen(0, '127.0.0.1', resolve));
    const connections = new UpstreamConnections(`http://127.0.0.1:${(informational.address() as AddressInfo).port}`, { keepAliveTimeout: 60_000 }, { writtenAfter: () => 0, now: () => 0 });
    try {
      // request(): undici's legacy handler interface.
      const res = await within(connections.request({ path: '/', method: 'GET' }), 'request()');
      assert.equal(res.statusCode, 200);
      assert.equal(await within(res.body.text(), 'the body'), 'ok');
      // The current interface sees the informational answers, then the answer.
      assert.deepEqual(await within(dispatchNew(connections, '/'), 'dispatch()'), { statuses: [103, 102, 200], body: 'ok' });
      assert.equal(opened, 1, 'one connection, reused');
    } finally {
      await connections.close();
      informational.closeAllConnections();
      informational.close();
    }
  });

  test('a caller whose onResponseEnd throws: its connection is handed back once, and a request dispatched at that moment is answered', { timeout: 60_000 }, async () => {
    const connections = new UpstreamConnections(origin, { keepAliveTimeout: 60_000 }, { writtenAfter: () => 0, now: () => 0 });
    try {
      const first = dispatchNew(connections, '/first', {
        onResponseEnd() {
          throw new Error('a bug in the caller');
        },
      });
      // undici reports the throw to the same request as an error; the next request goes out in that same turn, as in a busy gateway.
      const next = first.catch((err: Error) => {
        assert.equal(err.message, 'a bug in the caller');
        return dispatchNew(connections, '/next');
      });
      await until('the first request reaches the server', () => holding.length === 1);
      holding.shift()!();
      await until('the next request reaches the server', () => holding.length === 1);
      holding.shift()!();
      assert.deepEqual(await within(next, 'the next request'), { statuses: [200], body: 'ok' });
    } finally {
      await connections.close();
    }
  });

  test('an answer that fits in a receive buffer, read just after the event loop stalled, leaves its connection for reuse; a larger one does not', { timeout: 60_000 }, async () => {
    const connections = new UpstreamConnections(origin, { keepAliveTimeout: 60_000 });
    try {
      for (const [path, kept] of [['/small', 1], ['/large', 0]] as const) {
        const body = connections.request({ path, method: 'GET' }).then((res) => res.body.text());
        await until(`${path} reaches the server`, () => holding.length === 1);
        holding.shift()!();
        // The event loop stalls (as under thousands of streams) while the answer is on its way.
        const end = performance.now() + 600;
        while (performance.now() < end);
        assert.ok((await within(body, path)).length > 0);
        assert.equal(connections.size, kept, path);
      }
    } finally {
      await connections.close();
    }
  });
});
