// Admission to an agent-served connection, as to a direct one: at most
// `max_connections_per_target` requests at once through its agents, at most
// `max_queued` waiting, each for at most `queue_timeout`; beyond that a
// clean 503 with retry-after, and the wait is visible in a gauge.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Agent } from '../../src/agent/agent.js';
import { errorOf, postJson, type Harness } from '../helpers/harness.js';
import { agentsConnected, createAgentKey, eventually, startAgent, startAgentHarness, until } from './helpers.js';

describe('queueing for an agent-served connection', () => {
  let h: Harness;
  let agent: Agent;
  let token: string;

  before(async () => {
    h = await startAgentHarness({
      configure: (input) => Object.assign(input.connections[0]!, { max_connections_per_target: 1, max_queued: 1, queue_timeout: '1500ms' }),
    });
    token = await h.userToken('alice');
    agent = startAgent(h, await createAgentKey(h, 'queued'));
    await agentsConnected(h, 1);
  });
  after(async () => {
    await agent.close(100);
    await h.close();
  });

  const queued = async () => (await h.gateway.services.metrics.registry.getSingleMetric('modelgate_upstream_queued_requests')!.get()).values.find((v) => v.labels.connection === 'demo')?.value ?? 0;
  const chat = (signal?: AbortSignal) =>
    fetch(`${h.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] }),
      ...(signal ? { signal } : {}),
    });

  test('one running, one waiting, the next refused at once; the waiting one times out with 503 and retry-after', { timeout: 60_000 }, async () => {
    h.model.setFault({ kind: 'hang' }, { times: 1, path: '/v1/chat/completions' });
    const holding = new AbortController();
    const first = chat(holding.signal).catch(() => undefined);
    await until(() => h.model.received.some((r) => r.path === '/v1/chat/completions'), 'the first request holds the only slot');
    const second = chat();
    await eventually(async () => (await queued()) === 1, 'the second request waits, and the gauge shows it');

    const third = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(third.status, 503);
    assert.equal(third.headers.get('retry-after'), '2');
    assert.equal((await errorOf(third)).code, 'upstream_queue_full');

    const timedOut = await second;
    assert.equal(timedOut.status, 503);
    assert.equal(timedOut.headers.get('x-should-retry'), 'true');
    assert.equal((await errorOf(timedOut)).code, 'upstream_queue_timeout');
    assert.equal(await queued(), 0);

    holding.abort();
    await first;
    // The slot comes back when the first request's client goes away.
    const next = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(next.status, 200, await next.clone().text());
  });
});
