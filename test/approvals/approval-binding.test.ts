// An approval releases exactly the request that was reviewed. After prompt
// A is approved, nothing else passes on its strength: not another prompt,
// model, connection, user, dialect or parameter set. Each is held for a
// review of its own and never reaches the model, and A's approval is still
// there for A afterwards.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { errorOf, postJson, startHarness, type Harness } from '../helpers/harness.js';

describe('an approval is bound to its request', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      configure: (input) => {
        input.approvals = { wait: '300ms', poll_interval: '100ms', max_pending_per_requester: 50 };
        const demo = input.connections[0]!;
        // Another model on the same connection, and the same upstream model behind a second connection.
        demo.models = [...(demo.models ?? []), { name: 'demo-chat-2', upstream_name: 'demo-chat' }];
        input.connections.push({ ...demo, name: 'demo-b', models: [{ name: 'demo-chat-b', upstream_name: 'demo-chat' }] });
        input.access = [...(input.access ?? []), { groups: ['engineering', 'security'], connections: ['demo', 'demo-b'] }];
      },
    });
  });
  after(() => h?.close());

  /** A request needing approval, unique to one test, with every parameter a variant may change. */
  const requestA = (name: string) => ({
    model: 'demo-chat',
    messages: [{ role: 'user', content: `nightingale bound ${name} ${Date.now()}` }],
    temperature: 0.2,
    max_tokens: 50,
    tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } } }],
  });
  type RequestA = ReturnType<typeof requestA>;

  async function send(user: string, body: unknown, path = '/v1/chat/completions'): Promise<Response> {
    return postJson(`${h.url}${path}`, await h.userToken(user), body);
  }

  /** Sends a request that needs approval and returns the review it is held for. */
  async function heldFor(user: string, body: unknown, path?: string): Promise<string> {
    const response = await send(user, body, path);
    assert.equal(response.status, 403, `held, not answered: ${response.status}`);
    assert.equal(response.headers.get('x-modelgate-error-code'), 'approval_required');
    const reviewId = response.headers.get('x-modelgate-review-id');
    assert.ok(reviewId);
    return reviewId;
  }

  /** Each variant starts from a freshly approved A, so one leak cannot hide another by using up the approval. */
  const variants: Array<[string, string, (a: RequestA) => unknown, string?]> = [
    ['another prompt', 'alice', (a) => ({ ...a, messages: [{ role: 'user', content: `${a.messages[0]!.content} and the board minutes` }] })],
    ['the same prompt in another role', 'alice', (a) => ({ ...a, messages: [{ role: 'system', content: a.messages[0]!.content }] })],
    ['another model on the same connection', 'alice', (a) => ({ ...a, model: 'demo-chat-2' })],
    ['the same upstream model through another connection', 'alice', (a) => ({ ...a, model: 'demo-chat-b' })],
    ['another user', 'erin', (a) => a],
    ['another temperature', 'alice', (a) => ({ ...a, temperature: 0.9 })],
    ['no temperature', 'alice', (a) => ({ ...a, temperature: undefined })],
    ['other tools', 'alice', (a) => ({ ...a, tools: [{ type: 'function', function: { name: 'send_email', parameters: { type: 'object', properties: {} } } }] })],
    ['no tools', 'alice', (a) => ({ ...a, tools: undefined })],
    ['another max_tokens', 'alice', (a) => ({ ...a, max_tokens: 4000 })],
    ['streamed instead', 'alice', (a) => ({ ...a, stream: true })],
    ['the Ollama API', 'alice', (a) => ({ model: 'demo-chat', messages: a.messages, stream: false }), '/api/chat'],
  ];
  for (const [what, user, vary, path] of variants) {
    test(`approving A releases nothing with ${what}, and A still passes once`, async () => {
      const a = requestA(what);
      const reviewA = await heldFor('alice', a);
      assert.equal((await postJson(`${h.url}/v1/reviews/${reviewA}/approve`, await h.userToken('carol'), { comment: 'A only' })).status, 200);

      const before = h.model.received.length;
      const review = await heldFor(user, vary(a), path);
      assert.notEqual(review, reviewA, 'a review of its own');
      assert.equal(h.model.received.length, before, 'nothing reached the model');

      // Keys in another order are the identical request.
      const passed = await send('alice', Object.fromEntries(Object.entries(a).reverse()));
      assert.equal(passed.status, 200, "A's approval was not used up by the other request");
      const again = await send('alice', a);
      assert.equal(again.status, 403, 'an approval passes its request once');
      assert.equal((await errorOf(again)).code, 'approval_required');
    });
  }
});
