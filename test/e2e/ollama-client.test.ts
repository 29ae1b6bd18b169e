// The official `ollama` npm client, unchanged, against the gateway: chat,
// generate, embed, show, tags, ps and version work with a token in the
// Authorization header, and every refusal reaches the client as a readable
// message (Ollama's `{"error": "..."}`), with the stable code in a header.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Ollama } from 'ollama';
import { startHarness, type Harness } from '../helpers/harness.js';

describe('the ollama npm client through the gateway', () => {
  let h: Harness;
  let alice: Ollama;
  before(async () => {
    h = await startHarness({
      configure: (input) => {
        const guardrails = input.guardrails!;
        guardrails.dictionaries = [...(guardrails.dictionaries ?? []), { name: 'embargoed', terms: ['zanzibar'] }];
        guardrails.input = [...(guardrails.input ?? []), { name: 'no-embargoed-terms', detect: ['dictionary.embargoed'], action: 'block' }];
      },
    });
    alice = clientFor(await h.userToken('alice'));
  });
  after(() => h?.close());

  const clientFor = (token: string): Ollama => new Ollama({ host: h.url, headers: { authorization: `Bearer ${token}` } });

  /** The ResponseError the client throws, with its message as the user reads it. */
  async function refusal(call: Promise<unknown>): Promise<{ message: string; status: number }> {
    try {
      await call;
    } catch (err) {
      const { message, status_code: status } = err as { message: string; status_code: number };
      return { message, status };
    }
    assert.fail('the call was not refused');
  }

  test('chat, streamed and not', async () => {
    const answer = await alice.chat({ model: 'demo-chat', messages: [{ role: 'user', content: 'hello there' }] });
    assert.equal(answer.message.role, 'assistant');
    assert.ok(answer.message.content.length > 0);
    assert.equal(answer.done, true);

    let streamed = '';
    let frames = 0;
    for await (const part of await alice.chat({ model: 'demo-chat', messages: [{ role: 'user', content: 'hello again' }], stream: true })) {
      streamed += part.message.content;
      frames++;
    }
    assert.ok(frames > 1, 'it streamed');
    assert.ok(streamed.length > 0);
  });

  test('generate', async () => {
    const answer = await alice.generate({ model: 'demo-chat', prompt: 'say something' });
    assert.ok((answer.response ?? '').length > 0);
    assert.equal(answer.done, true);
  });

  test('embed, and the older embeddings call', async () => {
    const embedded = await alice.embed({ model: 'demo-embed', input: ['first text', 'second text'] });
    assert.equal(embedded.embeddings.length, 2);
    assert.ok(embedded.embeddings[0]!.length > 0);
    const legacy = await alice.embeddings({ model: 'demo-embed', prompt: 'one text' });
    assert.ok(legacy.embedding.length > 0);
  });

  test('embed inputs pass the input guardrails: a blocked term never reaches the model', async () => {
    const before = h.model.received.length;
    const { message, status } = await refusal(alice.embed({ model: 'demo-embed', input: ['fine', 'the zanzibar file'] }));
    assert.equal(status, 403);
    assert.match(message, /no-embargoed-terms/);
    const legacy = await refusal(alice.embeddings({ model: 'demo-embed', prompt: 'zanzibar' }));
    assert.equal(legacy.status, 403);
    assert.equal(h.model.received.length, before, 'nothing reached the model');
  });

  test('show describes a model without the server file paths', async () => {
    const shown = await alice.show({ model: 'demo-chat' });
    assert.equal(shown.details.family, 'demo');
    assert.ok(shown.capabilities.includes('completion'));
    assert.equal((shown as unknown as Record<string, unknown>).modelfile, undefined, 'the modelfile names blob paths on the model server');
  });

  test('tags and ps list only the models the caller may use, under the gateway names', async () => {
    const listed = (await alice.list()).models.map((m) => m.name).sort();
    assert.deepEqual(listed, ['demo-chat', 'demo-embed']);
    const running = (await alice.ps()).models.map((m) => m.name).sort();
    assert.deepEqual(running, ['demo-chat', 'demo-embed']);

    // Bob (contractors) may only embed.
    const bob = clientFor(await h.userToken('bob'));
    assert.deepEqual((await bob.list()).models.map((m) => m.name), ['demo-embed']);
    assert.deepEqual((await bob.ps()).models.map((m) => m.name), ['demo-embed']);
  });

  test('version answers an authenticated caller', async () => {
    assert.match((await alice.version()).version, /^\d+\.\d+\.\d+$/);
  });

  test('refusals read as sentences, never [object Object]', async () => {
    const bob = clientFor(await h.userToken('bob'));
    const forbidden = await refusal(bob.chat({ model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] }));
    assert.equal(forbidden.status, 403);
    assert.match(forbidden.message, /not allowed to use model "demo-chat"/);

    const shown = await refusal(bob.show({ model: 'demo-chat' }));
    assert.equal(shown.status, 403, 'show checks access too');
    assert.match(shown.message, /not allowed to use model "demo-chat"/);

    const missing = await refusal(alice.generate({ model: 'no-such-model', prompt: 'hi' }));
    assert.equal(missing.status, 404);
    assert.match(missing.message, /does not exist on this gateway\. GET \/api\/tags lists/);

    const anonymous = await refusal(new Ollama({ host: h.url }).list());
    assert.equal(anonymous.status, 401);
    assert.doesNotMatch(anonymous.message, /\[object Object\]/);
    assert.ok(anonymous.message.length > 20, anonymous.message);

    const unsupported = await refusal(alice.pull({ model: 'llama3' }));
    assert.equal(unsupported.status, 404);
    assert.match(unsupported.message, /managed on the model servers/);
  });

  test('the Ollama error shape carries the stable code in a header', async () => {
    const response = await fetch(`${h.url}/api/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await h.userToken('bob')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-chat', messages: [] }),
    });
    assert.equal(response.status, 403);
    assert.equal(response.headers.get('x-modelgate-error-code'), 'model_forbidden');
    const body = (await response.json()) as { error: unknown };
    assert.equal(typeof body.error, 'string');
    assert.ok(response.headers.get('x-request-id'));
  });

  test("Ollama's documented curl -d (no JSON Content-Type) is accepted on /api/*, and only there", async () => {
    const token = await h.userToken('alice');
    const body = JSON.stringify({ model: 'demo-chat', prompt: 'why is the sky blue?', stream: false });
    // What `curl http://host/api/generate -d '{...}'` sends.
    const asCurl = await fetch(`${h.url}/api/generate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
    assert.equal(asCurl.status, 200, await asCurl.clone().text());
    assert.ok(((await asCurl.json()) as { response: string }).response.length > 0);

    // No Content-Type at all (a Blob without a type sends none).
    const bare = await fetch(`${h.url}/api/generate`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: new Blob([body]) });
    assert.equal(bare.status, 200, await bare.clone().text());

    const openai = await fetch(`${h.url}/v1/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: JSON.stringify({ model: 'demo-chat', prompt: 'hi' }),
    });
    assert.equal(openai.status, 415, 'the OpenAI API keeps requiring JSON');
    const notJson = await fetch(`${h.url}/api/generate`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'text/html' }, body });
    assert.equal(notJson.status, 415, 'other declared types are still refused');
  });
});
