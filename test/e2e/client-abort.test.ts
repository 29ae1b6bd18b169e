// A client that gives up while the model is still thinking is an ordinary
// event: recorded as `aborted`, logged at info, never as an internal error.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startHarness, type Harness } from '../helpers/harness.js';

describe('a client that leaves before the upstream answers', () => {
  let h: Harness;
  const logs: string[] = [];
  before(async () => {
    h = await startHarness({ logs });
  });
  after(() => h.close());

  test('is recorded aborted and logged at info, with no error line', { timeout: 60_000 }, async () => {
    h.model.setFault({ kind: 'hang' }, { times: 1, path: '/v1/chat/completions' });
    const before = h.model.received.length;
    const leave = new AbortController();
    const call = fetch(`${h.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await h.userToken('alice')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'take your time' }] }),
      signal: leave.signal,
    }).catch(() => undefined);
    while (h.model.received.length === before) await new Promise((r) => setTimeout(r, 20)); // the model has it
    leave.abort();
    await call;
    let line: { level: string; reqId: string; code?: string } | undefined;
    while (!line) {
      line = logs.map((l) => JSON.parse(l) as { level: string; msg: string; reqId: string; path?: string; code?: string }).find((l) => l.msg === 'request' && l.path === '/v1/chat/completions');
      if (!line) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(line.level, 'info');
    assert.equal(line.code, 'client_disconnected');
    assert.deepEqual(logs.filter((l) => l.includes('"level":"error"')), [], 'no error line, no stack');

    await h.gateway.services.audit!.recorder.flush();
    const detail = (await (await fetch(`${h.url}/v1/sessions/${line.reqId}`, { headers: { authorization: `Bearer ${await h.userToken('carol')}` } })).json()) as {
      session: { state: string };
    };
    assert.equal(detail.session.state, 'aborted');
  });
});
