// Shutdown as a load balancer sees it: on close (SIGTERM), /readyz answers
// 503 "draining" on new connections for `server.drain_notice` while the
// gateway keeps serving, so balancers stop sending before it stops
// listening; after that new connections are refused. Streams still running
// when the grace runs out end with an error frame and are recorded
// `shutdown`, not cut with a reset.
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { test } from 'node:test';
import { openStore } from '../../src/audit/store.js';
import { postJson, startHarness } from '../helpers/harness.js';

/** GET on a connection of its own, as a balancer's health check opens one. */
function freshGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    }).on('error', reject);
  });
}

test('during the drain notice /readyz reports draining on new connections and requests are still served', { timeout: 60_000 }, async () => {
  const h = await startHarness({ configure: (input) => void (input.server = { ...input.server, drain_notice: '1500ms' }) });
  try {
    const token = await h.userToken('alice');
    assert.equal((await freshGet(`${h.url}/readyz`)).status, 200);
    const closing = h.gateway.close(10_000);

    const ready = await freshGet(`${h.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.deepEqual(JSON.parse(ready.body), { status: 'draining', checks: { identity: true, draining: true } });
    const served = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content: 'still there?' }] });
    assert.equal(served.status, 200, 'what the balancer sends before it notices is still served');

    await closing;
    await assert.rejects(freshGet(`${h.url}/readyz`), /ECONNREFUSED/, 'after the notice and the drain, it stops listening');
  } finally {
    await Promise.all([h.idp.close(), h.model.close()]);
  }
});

test('a stream still running when the grace runs out ends with an error frame, not a reset, and is recorded `shutdown`', { timeout: 60_000 }, async () => {
  const h = await startHarness({ model: { chunkDelayMs: 10, replyWords: 3_000 } });
  const storage = h.gateway.services.config.storage;
  try {
    const response = await postJson(`${h.url}/v1/chat/completions`, await h.userToken('alice'), {
      model: 'demo-chat',
      stream: true,
      messages: [{ role: 'user', content: 'a story that outlasts the gateway' }],
    });
    assert.equal(response.status, 200);
    const id = response.headers.get('x-request-id')!;
    const reader = response.body!.getReader();
    const utf8 = new TextDecoder();
    let body = utf8.decode((await reader.read()).value);
    const closing = h.gateway.close(300);
    // A reset would reject this read with "terminated"; a clean end returns done.
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      body += utf8.decode(value, { stream: true });
    }
    await closing;
    const frames = body.split('\n\n').filter((f) => f.startsWith('data: ') && f !== 'data: [DONE]');
    const last = JSON.parse(frames.at(-1)!.slice('data: '.length)) as { error?: { code: string; message: string } };
    assert.equal(last.error?.code, 'shutting_down', 'the last frame says why the stream ended');
    assert.match(last.error!.message, /shutting down; retry/);
    assert.ok(!body.includes('[DONE]'), 'not presented as a finished answer');

    const store = await openStore(storage);
    try {
      const session = await store.getSession(id);
      assert.equal(session?.state, 'shutdown', 'cut by the gateway, not left by the client');
      assert.equal(session?.error_code, 'shutting_down');
    } finally {
      await store.close();
    }
  } finally {
    await Promise.all([h.idp.close(), h.model.close()]);
    if (storage.driver === 'sqlite') await rm(dirname(storage.sqlite.path), { recursive: true, force: true });
  }
});
