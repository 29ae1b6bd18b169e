// `x-should-retry` as the official OpenAI SDK reads it: a prompt the model
// may already have received is never sent again by the SDK's own retries;
// refusals made before anything was forwarded may be retried.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { postJson, startHarness, type Harness } from '../helpers/harness.js';

describe('retry hints', () => {
  let h: Harness;
  let token: string;
  before(async () => {
    h = await startHarness({
      configure(input) {
        input.connections[0]!.timeouts = { response_headers: '700ms' };
        // A connection nobody listens on: every attempt fails to connect, so nothing was sent.
        input.connections.push({ name: 'dead', url: 'http://127.0.0.1:9', models: [{ name: 'dead-chat' }] });
        input.access = [...(input.access ?? []), { groups: ['engineering'], connections: ['dead'] }];
      },
    });
    token = await h.userToken('alice');
  });
  after(() => h.close());

  const sdk = () => new OpenAI({ baseURL: `${h.url}/v1`, apiKey: token, maxRetries: 2 });
  const prompts = () => h.model.received.filter((r) => r.path === '/v1/chat/completions').length;

  test('an upstream that took the prompt and timed out: 504 with x-should-retry false, and the SDK sends it once', { timeout: 60_000 }, async () => {
    h.model.setFault({ kind: 'hang' }, { times: 1, path: '/v1/chat/completions' });
    const before = prompts();
    const err = await sdk()
      .chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'run once' }] })
      .then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof OpenAI.APIError, `the SDK raised (a retry would have succeeded): ${String(err)}`);
    assert.equal(err.status, 504);
    assert.equal(new Headers(err.headers as ConstructorParameters<typeof Headers>[0]).get('x-should-retry'), 'false');
    assert.equal(prompts() - before, 1, 'the model saw the prompt exactly once');
  });

  test("an upstream's own 5xx answer: x-should-retry false; its 429: true", { timeout: 60_000 }, async () => {
    for (const [status, hint] of [[503, 'false'], [500, 'false'], [429, 'true']] as const) {
      h.model.setFault({ kind: 'status', status }, { times: 1, path: '/v1/chat/completions' });
      const response = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content: 'x' }] });
      assert.equal(response.status, status);
      assert.equal(response.headers.get('x-should-retry'), hint, `upstream ${status}`);
      await response.body?.cancel();
    }
  });

  test('nothing forwarded (the model server refused the connection): 502 with x-should-retry true', { timeout: 60_000 }, async () => {
    const response = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'dead-chat', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(response.status, 502);
    assert.equal(response.headers.get('x-should-retry'), 'true');
    await response.body?.cancel();
  });

  test('a refusal before forwarding (internal error): x-should-retry true', { timeout: 60_000 }, async () => {
    const guardrails = h.gateway.services.guardrails;
    const inspect = guardrails.inspect.bind(guardrails);
    guardrails.inspect = () => {
      throw new Error('boom');
    };
    try {
      const response = await postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content: 'x' }] });
      assert.equal(response.status, 500);
      assert.equal(response.headers.get('x-should-retry'), 'true');
      await response.body?.cancel();
    } finally {
      guardrails.inspect = inspect;
    }
  });
});
