// A model server closes a kept-alive connection after it has been idle for a
// while, and a gateway (or agent) whose event loop runs late must not write a
// request onto it as it closes: that request fails with "other side closed"
// and cannot be sent again, since a server that died reading it looks the
// same. The model server here is a real node:http server in its own process
// that, like uvicorn, closes an idle connection on its own timer and sends no
// Keep-Alive hint; it logs what it does to a file, so this process can block
// its event loop (as thousands of streams do) exactly until the server has
// closed the connection.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, stat, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { RECEIVE_BUFFER_BYTES, readBytesWrittenAfter } from '../../src/proxy/arrival-clock.js';
import { UpstreamConnections } from '../../src/proxy/upstream-connections.js';

/** The model server's idle timeout, and a reuse window well inside it (the defaults are 5 s and 2 s). */
const SERVER_IDLE_CLOSE_MS = 1_000;
const MAX_IDLE_REUSE_MS = 600;

const MODEL = `
const http = require('node:http');
const fs = require('node:fs');
const [idleCloseMs, log] = [Number(process.argv[1]), process.argv[2]];
let n = 0;
const server = http.createServer((req, res) => {
  clearTimeout(req.socket.idleTimer);
  let bytes = 0;
  req.on('data', (d) => (bytes += d.length));
  req.on('end', () => {
    n++;
    if (req.url.startsWith('/read-then-die')) {
      fs.appendFileSync(log, 'read ' + req.url + '\\n');
      return req.socket.destroy();
    }
    res.end(n + ':' + bytes);
  });
  res.on('finish', () => {
    fs.appendFileSync(log, 'answered ' + req.url + '\\n');
    req.socket.idleTimer = setTimeout(() => {
      req.socket.destroy();
      fs.appendFileSync(log, 'closed after ' + req.url + '\\n');
    }, idleCloseMs);
  });
});
server.keepAliveTimeout = 0;
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

describe('a kept-alive connection the model server closes while our event loop is blocked', () => {
  let model: ChildProcess;
  let origin: string;
  const dir = mkdtempSync(join(tmpdir(), 'modelgate-keepalive-race-'));
  const log = join(dir, 'model.log');
  /** How many times the model server logged `line`. */
  const logged = (line: string): number => readFileSync(log, 'utf8').split('\n').filter((l) => l === line).length;

  before(async () => {
    writeFileSync(log, '');
    model = spawn(process.execPath, ['-e', MODEL, String(SERVER_IDLE_CLOSE_MS), log], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await new Promise<string>((resolve) => model.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim())));
    origin = `http://127.0.0.1:${port}`;
  });
  after(() => {
    model.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The event loop blocked, as by thousands of streams, until `done` (then `extraMs` more). */
  const blockUntil = (done: () => boolean, extraMs = 0): void => {
    const deadline = performance.now() + 10_000;
    while (!done()) if (performance.now() > deadline) throw new Error('the model server never got there');
    const end = performance.now() + extraMs;
    while (performance.now() < end);
  };
  /** Runs `fn` in the poll phase, as a request arriving on a socket (or the tunnel) is: undici then writes on a reused socket in this same turn's check phase, with no new look at the sockets in between. */
  const inPollPhase = <T>(fn: () => T): Promise<T> => new Promise((resolve) => stat(process.execPath, () => resolve(fn())));
  const send = async (connections: UpstreamConnections, path: string, body: string | PassThrough = 'x'): Promise<string> => {
    const res = await connections.request({ path, method: 'POST', body });
    return res.body.text();
  };

  test('an answer read late, the loop blocked: its idle time is not counted from when the loop got to it', { timeout: 60_000 }, async () => {
    const connections = new UpstreamConnections(origin, {}, { maxIdleReuseMs: MAX_IDLE_REUSE_MS });
    // Until the loop has run on time for a while (this process just started), answers are not dated, so not reused.
    while (readBytesWrittenAfter(RECEIVE_BUFFER_BYTES + 1) === undefined) await new Promise((r) => setTimeout(r, 100));
    await send(connections, '/a/warm');
    const late = send(connections, '/a/late');
    // undici writes the request on the reused socket in its own setImmediate, queued before this one; then the loop is
    // blocked while the answer arrives, and for most of the reuse window after it.
    setImmediate(() => blockUntil(() => logged('answered /a/late') === 1, MAX_IDLE_REUSE_MS * 0.8));
    assert.match(await late, /^\d+:1$/);
    // By the clock at the read, the connection has been idle for less than the window when the server closes it.
    const answer = await inPollPhase(() => {
      blockUntil(() => logged('closed after /a/late') === 1, 50);
      return send(connections, '/a/next');
    });
    assert.match(await answer, /^\d+:1$/, 'answered, not "other side closed"');
    await connections.close();
  });

  test('a reused connection picked in time but written to after the server closed it: the request moves, unwritten, to a fresh connection', { timeout: 60_000 }, async () => {
    // Idle time from the read (a prompt one here): this test is about the moment of writing.
    const connections = new UpstreamConnections(origin, {}, { maxIdleReuseMs: MAX_IDLE_REUSE_MS, writtenAfter: () => performance.now() });
    await send(connections, '/b/warm');
    const body = new PassThrough();
    const answer = await inPollPhase(() => {
      const sent = send(connections, '/b/next', body);
      body.end('hello');
      // Picked young; the loop is then blocked until the server has closed it, before undici's check phase writes.
      blockUntil(() => logged('closed after /b/warm') === 1, 50);
      return sent;
    });
    assert.match(await answer, /^\d+:5$/, 'answered with the whole streamed body, not "other side closed"');
    await connections.close();
  });

  test('a request the model server read before closing is not sent again: the error is the caller\'s', { timeout: 60_000 }, async () => {
    const connections = new UpstreamConnections(origin, {}, { maxIdleReuseMs: MAX_IDLE_REUSE_MS });
    await send(connections, '/c/warm');
    await assert.rejects(send(connections, '/read-then-die/c', 'prompt'), { code: 'UND_ERR_SOCKET', message: /other side closed/ });
    assert.equal(logged('read /read-then-die/c'), 1, 'the model server read the request once');
    await connections.close();
  });
});
