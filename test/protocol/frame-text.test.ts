// Time to first token is measured at the first frame that carries text:
// the helper that decides it, on each wire format, and the metric end to
// end (a stream of empty frames records no first token at all).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { frameCarriesText } from '../../src/protocol/frame-text.js';
import { startHarness } from '../helpers/harness.js';

const sse = (body: unknown): string => `data: ${JSON.stringify(body)}\n\n`;

describe('frameCarriesText', () => {
  const empty: Array<[string, string, 'sse' | 'ndjson']> = [
    ['OpenAI role-only opening delta', sse({ choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] }), 'sse'],
    ['OpenAI finish frame', sse({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }), 'sse'],
    ['usage-only frame', sse({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 4 } }), 'sse'],
    ['[DONE]', 'data: [DONE]\n\n', 'sse'],
    ['Responses response.created', `event: response.created\n${sse({ type: 'response.created', response: { id: 'r', output: [], text: { format: { type: 'text' } } } })}`, 'sse'],
    ['Ollama opening line', `${JSON.stringify({ model: 'm', message: { role: 'assistant', content: '' }, done: false })}\n`, 'ndjson'],
    ['a comment', ': keep-alive\n\n', 'sse'],
  ];
  for (const [what, raw, framing] of empty) test(`no text: ${what}`, () => assert.equal(frameCarriesText(raw, framing), false));

  const text: Array<[string, string, 'sse' | 'ndjson']> = [
    ['OpenAI content delta', sse({ choices: [{ index: 0, delta: { content: 'Hel' } }] }), 'sse'],
    ['OpenAI reasoning delta', sse({ choices: [{ index: 0, delta: { reasoning_content: 'think' } }] }), 'sse'],
    ['OpenAI tool-call arguments', sse({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '{"q"' } }] } }] }), 'sse'],
    ['completions text', sse({ choices: [{ index: 0, text: 'Once' }] }), 'sse'],
    ['Responses output_text delta', `event: response.output_text.delta\n${sse({ type: 'response.output_text.delta', delta: 'Hi' })}`, 'sse'],
    ['Ollama chat content', `${JSON.stringify({ message: { role: 'assistant', content: 'Hi' }, done: false })}\n`, 'ndjson'],
    ['Ollama generate response', `${JSON.stringify({ response: 'Hi', done: false })}\n`, 'ndjson'],
    ['Ollama thinking', `${JSON.stringify({ message: { role: 'assistant', content: '', thinking: 'hmm' }, done: false })}\n`, 'ndjson'],
  ];
  for (const [what, raw, framing] of text) test(`text: ${what}`, () => assert.equal(frameCarriesText(raw, framing), true));
});

test('a stream of empty frames records no time to first token; one with text records one', async () => {
  const h = await startHarness();
  try {
    const token = await h.userToken('alice');
    const count = async (): Promise<number> => {
      const metric = await h.gateway.services.metrics.timeToFirstToken.get();
      return metric.values.find((v) => v.metricName === 'modelgate_time_to_first_token_seconds_count')?.value ?? 0;
    };
    const stream = (): Promise<string> =>
      fetch(`${h.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
      }).then((r) => r.text());

    const opening = sse({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'demo-chat', choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] });
    const finish = sse({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'demo-chat', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
    h.model.setFault({ kind: 'raw', contentType: 'text/event-stream', writes: [opening, finish, 'data: [DONE]\n\n'] }, { times: 1, path: '/v1/chat/completions' });
    await stream();
    assert.equal(await count(), 0, 'empty frames are not a first token');

    await stream();
    assert.equal(await count(), 1, 'the demo reply carries text');
  } finally {
    await h.close();
  }
});
