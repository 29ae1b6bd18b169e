// Health, readiness, metrics, load balancing and graceful shutdown.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import OpenAI from 'openai';
import { startDemoModel } from '../../src/dev/demo-model.js';
import { startHarness } from '../helpers/harness.js';

describe('operations', () => {
  test('/healthz, /readyz and /metrics', async () => {
    const h = await startHarness();
    try {
      const health = await fetch(`${h.url}/healthz`);
      assert.equal(health.status, 200);
      assert.ok(health.headers.get('x-request-id'));
      const ready = await fetch(`${h.url}/readyz`);
      assert.equal(ready.status, 200);
      assert.deepEqual(await ready.json(), { status: 'ready', checks: { identity: true, draining: false } });

      const client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: await h.userToken('alice'), maxRetries: 0 });
      const stream = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'm' }], stream: true });
      for await (const _ of stream);
      await client.embeddings.create({ model: 'demo-embed', input: 'm' });
      await fetch(`${h.url}/v1/chat/completions`, { method: 'POST' });

      const metrics = await (await fetch(`${h.url}/metrics`)).text();
      assert.match(metrics, /modelgate_requests_total\{connection="demo",model="demo-chat",operation="chat",status="200"\} 1/);
      assert.match(metrics, /modelgate_requests_total\{connection="demo",model="demo-embed",operation="embedding",status="200"\} 1/);
      assert.match(metrics, /modelgate_time_to_first_token_seconds_count\{connection="demo",operation="chat"\} 1/);
      assert.match(metrics, /modelgate_request_duration_seconds_bucket/);
      assert.match(metrics, /modelgate_refusals_total\{code="token_missing"\} 1/);
      assert.match(metrics, /modelgate_process_resident_memory_bytes/);
    } finally {
      await h.close();
    }
  });

  test('upstream errors are counted by connection and reason', async () => {
    const h = await startHarness();
    try {
      h.model.setFault({ kind: 'status', status: 503, body: 'overloaded' }, { times: 1 });
      const token = await h.userToken('alice');
      await fetch(`${h.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'x' }] }),
      });
      const metrics = await (await fetch(`${h.url}/metrics`)).text();
      assert.match(metrics, /modelgate_upstream_errors_total\{connection="demo",reason="status_503"\} 1/);
    } finally {
      await h.close();
    }
  });

  test('round robin spreads requests over targets, and a dead target fails over', async () => {
    const second = await startDemoModel({ apiKey: 'demo-upstream-key' });
    let h;
    try {
      h = await startHarness({
        configure: (input) => {
          const first = input.connections[0]!.url!;
          delete input.connections[0]!.url;
          input.connections[0]!.targets = [{ url: first }, { url: second.url }, { url: 'http://127.0.0.1:1' }];
        },
      });
      const client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: await h.userToken('alice'), maxRetries: 0 });
      for (let i = 0; i < 6; i++) await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: `${i}` }] });
      assert.ok(h.model.received.length >= 2, `first target served ${h.model.received.length}`);
      assert.ok(second.received.length >= 2, `second target served ${second.received.length}`);
      assert.equal(h.model.received.length + second.received.length, 6, 'every request succeeded despite the dead target');
    } finally {
      await h?.close();
      await second.close();
    }
  });

  test('failover mode always uses the first healthy target', async () => {
    const backup = await startDemoModel({ apiKey: 'demo-upstream-key' });
    let h;
    try {
      h = await startHarness({
        configure: (input) => {
          const primary = input.connections[0]!.url!;
          delete input.connections[0]!.url;
          input.connections[0]!.targets = [{ url: primary }, { url: backup.url }];
          input.connections[0]!.load_balancing = 'failover';
        },
      });
      const client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: await h.userToken('alice'), maxRetries: 0 });
      for (let i = 0; i < 3; i++) await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: `${i}` }] });
      assert.equal(h.model.received.length, 3);
      assert.equal(backup.received.length, 0);
      await h.model.close();
      await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'primary down' }] });
      assert.equal(backup.received.length, 1);
    } finally {
      await h?.gateway.close(100);
      await h?.idp.close();
      await backup.close();
    }
  });

  // The drain notice (/readyz draining while still serving) is test/e2e/draining.test.ts;
  // the dev config used here has none, so the listener closes at once.
  test('graceful shutdown lets an in-flight stream finish while new connections are refused', async () => {
    const h = await startHarness({ model: { chunkDelayMs: 20, replyWords: 30 } });
    const client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: await h.userToken('alice'), maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'drain me' }], stream: true });
    const closing = h.gateway.close(10_000);
    let text = '';
    let refusedDuringDrain = false;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (!refusedDuringDrain && text.length > 0) {
        // Timers run in order: the gateway's zero-length notice is over by now.
        await new Promise((r) => setTimeout(r, 5));
        await assert.rejects(fetch(`${h.url}/healthz`), 'a new connection is refused while the stream drains');
        refusedDuringDrain = true;
      }
    }
    await closing;
    assert.ok(refusedDuringDrain, 'the refusal was checked while the stream was still running');
    assert.match(text, /drain me/, 'the in-flight stream completed');
    await Promise.all([h.idp.close(), h.model.close()]);
  });
});
