// Shutdown as a load balancer sees it: on close (SIGTERM), /readyz answers
// 503 "draining" on new connections for `server.drain_notice` while the
// gateway keeps serving, so balancers stop sending before it stops
// listening; after that new connections are refused.
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { test } from 'node:test';
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

test('during the drain notice /readyz reports draining on new connections and requests are still served', async () => {
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
