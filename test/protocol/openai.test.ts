import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseOpenAiRequest, type OpenAiOperation } from '../../src/protocol/openai.js';
import type { ModelRequest } from '../../src/protocol/types.js';
import { assertBadRequest, assertFieldPathsResolve } from './request-assert.js';

/** Parses, then checks the invariants every parsed request must hold. */
function parse(operation: OpenAiOperation, body: Record<string, unknown>): ModelRequest {
  const before = structuredClone(body);
  const request = parseOpenAiRequest(operation, body);
  assert.equal(request.body, body, 'body is the original object');
  assert.deepEqual(body, before, 'body is not mutated');
  assert.equal(request.dialect, 'openai');
  assert.equal(request.operation, operation);
  assert.equal(request.framing, 'sse');
  assertFieldPathsResolve(request);
  return request;
}

describe('chat', () => {
  const body = {
    model: 'llama-3.1-8b',
    stream: true,
    temperature: 0.2,
    stream_options: { include_usage: true },
    chat_template_kwargs: { enable_thinking: false },
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }],
    tool_choice: 'auto',
    messages: [
      { role: 'system', content: 'You are terse.' },
      {
        role: 'user',
        name: 'alice',
        content: [
          { type: 'text', text: 'What is in' },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
          { type: 'text', text: 'this image?' },
        ],
      },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temp":21}' },
      { role: 'assistant', content: 'It is 21°C.', reasoning_content: 'The tool said 21.' },
      { role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'UklG', format: 'wav' } }, { type: 'file', file: { file_id: 'file-1' } }] },
    ],
  };

  test('messages, text, tool calls and counts', () => {
    const request = parse('chat', body);
    assert.equal(request.model, 'llama-3.1-8b');
    assert.equal(request.stream, true);
    assert.deepEqual(request.messages, [
      { role: 'system', text: ['You are terse.'], nonTextParts: 0, toolCalls: [] },
      { role: 'user', name: 'alice', text: ['What is in', 'this image?'], nonTextParts: 1, toolCalls: [] },
      { role: 'assistant', text: [], nonTextParts: 0, toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' }] },
      { role: 'tool', toolCallId: 'call_1', text: ['{"temp":21}'], nonTextParts: 0, toolCalls: [] },
      { role: 'assistant', text: ['It is 21°C.'], nonTextParts: 0, toolCalls: [] },
      { role: 'user', text: [], nonTextParts: 2, toolCalls: [] },
    ]);
  });

  test('fields carry exact paths, kinds and roles in body order', () => {
    assert.deepEqual(parse('chat', body).fields, [
      { path: ['chat_template_kwargs'], kind: 'parameter', encoding: 'json', text: '{"enable_thinking":false}' },
      { path: ['tools', 0, 'function', 'name'], kind: 'parameter', text: 'get_weather' },
      { path: ['tools', 0, 'function', 'parameters'], kind: 'parameter', encoding: 'json', text: '{"type":"object"}' },
      { path: ['messages', 0, 'content'], kind: 'content', role: 'system', text: 'You are terse.' },
      { path: ['messages', 1, 'name'], kind: 'content', role: 'user', text: 'alice' },
      { path: ['messages', 1, 'content', 0, 'text'], kind: 'content', role: 'user', text: 'What is in' },
      { path: ['messages', 1, 'content', 2, 'text'], kind: 'content', role: 'user', text: 'this image?' },
      { path: ['messages', 2, 'tool_calls', 0, 'function', 'name'], kind: 'content', role: 'assistant', text: 'get_weather' },
      { path: ['messages', 2, 'tool_calls', 0, 'function', 'arguments'], kind: 'tool_arguments', role: 'assistant', text: '{"city":"Paris"}' },
      { path: ['messages', 3, 'content'], kind: 'content', role: 'tool', text: '{"temp":21}' },
      { path: ['messages', 4, 'content'], kind: 'content', role: 'assistant', text: 'It is 21°C.' },
      { path: ['messages', 4, 'reasoning_content'], kind: 'content', role: 'assistant', text: 'The tool said 21.' },
    ]);
  });

  test('tools are passed as sent; every other top-level key is a param', () => {
    const request = parse('chat', body);
    assert.equal(request.tools, body.tools);
    assert.deepEqual(request.params, {
      temperature: 0.2,
      stream_options: { include_usage: true },
      chat_template_kwargs: { enable_thinking: false },
      tool_choice: 'auto',
    });
  });

  test('stream defaults to false, and null means not given', () => {
    assert.equal(parse('chat', { model: 'm', messages: [{ role: 'user', content: 'hi' }] }).stream, false);
    assert.equal(parse('chat', { model: 'm', stream: null, messages: [{ role: 'user', content: 'hi' }] }).stream, false);
  });

  test('the legacy function_call is a tool call too', () => {
    const request = parse('chat', { model: 'm', messages: [{ role: 'assistant', content: null, function_call: { name: 'lookup', arguments: '{"q":"x"}' } }] });
    assert.deepEqual(request.messages[0]?.toolCalls, [{ name: 'lookup', arguments: '{"q":"x"}' }]);
    assert.deepEqual(request.fields.map((f) => f.path), [['messages', 0, 'function_call', 'name'], ['messages', 0, 'function_call', 'arguments']]);
  });

  test('text vLLM renders beyond OpenAI text parts is inspected too', () => {
    const request = parse('chat', {
      model: 'm',
      messages: [
        { role: 'user', content: ['bare string part', { type: 'input_text', text: 'input text' }] },
        { role: 'assistant', content: [{ type: 'thinking', thinking: 'hmm' }, { type: 'refusal', refusal: 'no' }], reasoning: 'why' },
        { role: 'ipython', content: 'custom role' },
      ],
    });
    assert.deepEqual(
      request.fields.map((f) => [f.path.join('.'), f.text]),
      [
        ['messages.0.content.0', 'bare string part'],
        ['messages.0.content.1.text', 'input text'],
        ['messages.1.content.0.thinking', 'hmm'],
        ['messages.1.content.1.refusal', 'no'],
        ['messages.1.reasoning', 'why'],
        ['messages.2.role', 'ipython'], // a role outside the declared enum is text: templates render it
        ['messages.2.content', 'custom role'],
      ],
    );
  });

  test('parts without a type, or of unknown type, are counted as non-text but their strings are inspected', () => {
    const request = parse('chat', { model: 'm', messages: [{ role: 'user', content: [{ image_url: 'https://x/y.png' }, { type: 'video_url', video_url: { url: 'v' } }] }] });
    assert.equal(request.messages[0]?.nonTextParts, 2);
    assert.deepEqual(request.fields.map((f) => f.path.join('.')), ['messages.0.content.0.image_url', 'messages.0.content.1.video_url.url']);
  });

  test('an assistant message may omit content; tool call id and type may be left out', () => {
    const request = parse('chat', { model: 'm', messages: [{ role: 'assistant', tool_calls: [{ function: { name: 'f', arguments: '' } }] }] });
    assert.deepEqual(request.messages[0]?.toolCalls, [{ name: 'f', arguments: '' }]);
  });
});

describe('completion', () => {
  test('a string prompt and a suffix are prompt fields', () => {
    const request = parse('completion', { model: 'm', prompt: 'def add(a, b):', suffix: 'return c', max_tokens: 16, echo: true });
    assert.deepEqual(request.fields, [
      { path: ['prompt'], kind: 'prompt', text: 'def add(a, b):' },
      { path: ['suffix'], kind: 'prompt', text: 'return c' },
    ]);
    assert.deepEqual(request.messages, []);
    assert.deepEqual(request.tools, []);
    assert.deepEqual(request.params, { max_tokens: 16, echo: true });
    assert.equal(request.stream, false);
  });

  test('an array of prompts gives one field per prompt', () => {
    assert.deepEqual(parse('completion', { model: 'm', prompt: ['a', 'b'], stream: true }).fields, [
      { path: ['prompt', 0], kind: 'prompt', text: 'a' },
      { path: ['prompt', 1], kind: 'prompt', text: 'b' },
    ]);
  });

  test('token-ID prompts carry no inspectable text and are listed as uninspectable', () => {
    assert.deepEqual(parse('completion', { model: 'm', prompt: [1, 2, 3] }).fields, []);
    assert.deepEqual(parse('completion', { model: 'm', prompt: [[1, 2], [3]] }).uninspectable, [['prompt']]);
    assert.deepEqual(parse('completion', { model: 'm', prompt: 'x', prompt_embeds: 'AAAA' }).uninspectable, [['prompt_embeds']]);
  });

  test('keys other operations read are still params here', () => {
    assert.deepEqual(parse('completion', { model: 'm', prompt: 'x', messages: [], tools: [] }).params, { messages: [], tools: [] });
  });
});

describe('embedding', () => {
  test('string, strings and token inputs', () => {
    assert.deepEqual(parse('embedding', { model: 'e', input: 'hello', dimensions: 256 }).fields, [{ path: ['input'], kind: 'input', text: 'hello' }]);
    assert.deepEqual(parse('embedding', { model: 'e', input: ['a', 'b'] }).fields.map((f) => f.path), [['input', 0], ['input', 1]]);
    assert.deepEqual(parse('embedding', { model: 'e', input: [[1, 2], [3]] }).fields, []);
    assert.deepEqual(parse('embedding', { model: 'e', input: [[1, 2], [3]] }).uninspectable, [['input']]);
    assert.deepEqual(parse('embedding', { model: 'e', input: 'x', dimensions: 256 }).params, { dimensions: 256 });
  });

  test("vLLM's chat-style messages are read instead of input", () => {
    const request = parse('embedding', { model: 'e', messages: [{ role: 'user', content: 'embed me' }] });
    assert.deepEqual(request.fields, [{ path: ['messages', 0, 'content'], kind: 'content', role: 'user', text: 'embed me' }]);
    assert.equal(request.messages.length, 1);
  });
});

describe('response', () => {
  test('a string input is one user message; instructions are system text', () => {
    const request = parse('response', { model: 'm', instructions: 'Be brief.', input: 'Hi there', stream: true, reasoning: { effort: 'low' } });
    assert.deepEqual(request.fields, [
      { path: ['instructions'], kind: 'instructions', role: 'system', text: 'Be brief.' },
      { path: ['input'], kind: 'input', role: 'user', text: 'Hi there' },
    ]);
    assert.deepEqual(request.messages, [{ role: 'user', text: ['Hi there'], nonTextParts: 0, toolCalls: [] }]);
    assert.deepEqual(request.params, { reasoning: { effort: 'low' } });
    assert.equal(request.stream, true);
  });

  test('input items: messages, parts, tool calls and their outputs, reasoning', () => {
    const request = parse('response', {
      model: 'm',
      tools: [{ type: 'function', name: 'get_weather', parameters: {} }],
      previous_response_id: 'resp_1',
      input: [
        { role: 'developer', content: 'Use tools.' },
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Weather here?' }, { type: 'input_image', image_url: 'https://x/y.png' }] },
        { type: 'reasoning', id: 'rs_1', summary: [{ type: 'summary_text', text: 'Need the tool.' }], encrypted_content: 'opaque' },
        { type: 'function_call', call_id: 'call_9', name: 'get_weather', arguments: '{"city":"Oslo"}' },
        { type: 'function_call_output', call_id: 'call_9', output: '{"temp":-3}' },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'It is -3.', annotations: [] }] },
        { type: 'function_call_output', call_id: 'call_10', output: [{ type: 'input_text', text: 'part output' }] },
        { type: 'item_reference', id: 'msg_0' },
      ],
    });
    assert.deepEqual(request.fields, [
      { path: ['tools', 0, 'name'], kind: 'parameter', text: 'get_weather' },
      { path: ['tools', 0, 'parameters'], kind: 'parameter', encoding: 'json', text: '{}' },
      { path: ['input', 0, 'content'], kind: 'content', role: 'developer', text: 'Use tools.' },
      { path: ['input', 1, 'content', 0, 'text'], kind: 'content', role: 'user', text: 'Weather here?' },
      { path: ['input', 1, 'content', 1, 'image_url'], kind: 'content', role: 'user', text: 'https://x/y.png' },
      { path: ['input', 2, 'summary', 0, 'text'], kind: 'content', role: 'assistant', text: 'Need the tool.' },
      { path: ['input', 3, 'name'], kind: 'content', role: 'assistant', text: 'get_weather' },
      { path: ['input', 3, 'arguments'], kind: 'tool_arguments', role: 'assistant', text: '{"city":"Oslo"}' },
      { path: ['input', 4, 'output'], kind: 'content', role: 'tool', text: '{"temp":-3}' },
      { path: ['input', 5, 'content', 0, 'text'], kind: 'content', role: 'assistant', text: 'It is -3.' },
      { path: ['input', 6, 'output', 0, 'text'], kind: 'content', role: 'tool', text: 'part output' },
    ]);
    assert.deepEqual(request.messages, [
      { role: 'developer', text: ['Use tools.'], nonTextParts: 0, toolCalls: [] },
      { role: 'user', text: ['Weather here?'], nonTextParts: 1, toolCalls: [] },
      { role: 'assistant', text: [], nonTextParts: 0, toolCalls: [{ id: 'call_9', name: 'get_weather', arguments: '{"city":"Oslo"}' }] },
      { role: 'tool', toolCallId: 'call_9', text: ['{"temp":-3}'], nonTextParts: 0, toolCalls: [] },
      { role: 'assistant', text: ['It is -3.'], nonTextParts: 0, toolCalls: [] },
      { role: 'tool', toolCallId: 'call_10', text: ['part output'], nonTextParts: 0, toolCalls: [] },
    ]);
    assert.equal(request.tools.length, 1);
    assert.deepEqual(request.params, { previous_response_id: 'resp_1' });
  });

  test('input may be left out when continuing a stored response', () => {
    const request = parse('response', { model: 'm', previous_response_id: 'resp_1' });
    assert.deepEqual(request.messages, []);
    assert.deepEqual(request.fields, []);
  });
});

describe('malformed requests are refused with a stable code and param', () => {
  const chat = (messages: unknown, extra: Record<string, unknown> = {}) => ({ model: 'm', messages, ...extra });
  const user = (content: unknown) => chat([{ role: 'user', content }]);
  const assistantCall = (call: unknown) => chat([{ role: 'assistant', content: null, tool_calls: [call] }]);

  const cases: Array<[string, OpenAiOperation, unknown, string, string | undefined]> = [
    ['null body', 'chat', null, 'invalid_body', undefined],
    ['string body', 'chat', 'hello', 'invalid_body', undefined],
    ['array body', 'chat', [{ model: 'm' }], 'invalid_body', undefined],
    ['missing model', 'chat', { messages: [] }, 'missing_model', 'model'],
    ['empty model', 'embedding', { model: '', input: 'x' }, 'missing_model', 'model'],
    ['numeric model', 'completion', { model: 7, prompt: 'x' }, 'invalid_model', 'model'],
    ['string stream', 'chat', { ...user('hi'), stream: 'true' }, 'invalid_stream', 'stream'],
    ['numeric stream', 'response', { model: 'm', input: 'x', stream: 1 }, 'invalid_stream', 'stream'],
    ['missing messages', 'chat', { model: 'm' }, 'missing_messages', 'messages'],
    ['messages an object', 'chat', chat({ role: 'user', content: 'hi' }), 'invalid_messages', 'messages'],
    ['messages empty', 'chat', chat([]), 'invalid_messages', 'messages'],
    ['message a string', 'chat', chat(['hi']), 'invalid_messages', 'messages[0]'],
    ['message without role', 'chat', chat([{ role: 'system', content: 'x' }, { content: 'hi' }]), 'invalid_messages', 'messages[1].role'],
    ['numeric role', 'chat', chat([{ role: 1, content: 'hi' }]), 'invalid_messages', 'messages[0].role'],
    ['numeric content', 'chat', user(42), 'invalid_messages', 'messages[0].content'],
    ['object content', 'chat', user({ text: 'hi' }), 'invalid_messages', 'messages[0].content'],
    ['user without content', 'chat', chat([{ role: 'user' }]), 'invalid_messages', 'messages[0].content'],
    ['user null content', 'chat', user(null), 'invalid_messages', 'messages[0].content'],
    ['numeric part', 'chat', user([{ type: 'text', text: 'a' }, 42]), 'invalid_messages', 'messages[0].content[1]'],
    ['text part without text', 'chat', user([{ type: 'text' }]), 'invalid_messages', 'messages[0].content[0].text'],
    ['text part numeric text', 'chat', user([{ type: 'text', text: 5 }]), 'invalid_messages', 'messages[0].content[0].text'],
    ['part with numeric type', 'chat', user([{ type: 3, text: 'a' }]), 'invalid_messages', 'messages[0].content[0].type'],
    ['numeric name', 'chat', chat([{ role: 'user', content: 'hi', name: 5 }]), 'invalid_messages', 'messages[0].name'],
    ['tool message without tool_call_id', 'chat', chat([{ role: 'user', content: 'hi' }, { role: 'tool', content: 'r' }]), 'invalid_messages', 'messages[1].tool_call_id'],
    ['numeric reasoning_content', 'chat', chat([{ role: 'assistant', content: 'a', reasoning_content: 1 }]), 'invalid_messages', 'messages[0].reasoning_content'],
    ['tool_calls an object', 'chat', chat([{ role: 'assistant', tool_calls: { id: 'x' } }]), 'invalid_tool_calls', 'messages[0].tool_calls'],
    ['tool call a string', 'chat', assistantCall('call'), 'invalid_tool_calls', 'messages[0].tool_calls[0]'],
    ['tool call of another type', 'chat', assistantCall({ type: 'custom', custom: { name: 'f', input: 'x' } }), 'invalid_tool_calls', 'messages[0].tool_calls[0].type'],
    ['tool call without function', 'chat', assistantCall({ id: 'c', type: 'function' }), 'invalid_tool_calls', 'messages[0].tool_calls[0].function'],
    ['tool call numeric id', 'chat', assistantCall({ id: 1, function: { name: 'f', arguments: '{}' } }), 'invalid_tool_calls', 'messages[0].tool_calls[0].id'],
    ['tool call without name', 'chat', assistantCall({ function: { arguments: '{}' } }), 'invalid_tool_calls', 'messages[0].tool_calls[0].function.name'],
    ['tool call empty name', 'chat', assistantCall({ function: { name: '', arguments: '{}' } }), 'invalid_tool_calls', 'messages[0].tool_calls[0].function.name'],
    ['tool call object arguments', 'chat', assistantCall({ function: { name: 'f', arguments: { a: 1 } } }), 'invalid_tool_calls', 'messages[0].tool_calls[0].function.arguments'],
    ['function_call without arguments', 'chat', chat([{ role: 'assistant', function_call: { name: 'f' } }]), 'invalid_tool_calls', 'messages[0].function_call.arguments'],
    ['tools an object', 'chat', { ...user('hi'), tools: { type: 'function' } }, 'invalid_tools', 'tools'],
    ['tool not an object', 'chat', { ...user('hi'), tools: [{ type: 'function' }, 'f'] }, 'invalid_tools', 'tools[1]'],
    ['missing prompt', 'completion', { model: 'm' }, 'missing_prompt', 'prompt'],
    ['numeric prompt', 'completion', { model: 'm', prompt: 5 }, 'invalid_prompt', 'prompt'],
    ['empty prompt array', 'completion', { model: 'm', prompt: [] }, 'invalid_prompt', 'prompt'],
    ['mixed prompt array', 'completion', { model: 'm', prompt: ['a', 1] }, 'invalid_prompt', 'prompt[1]'],
    ['tokens then text', 'completion', { model: 'm', prompt: [1, 'a'] }, 'invalid_prompt', 'prompt[1]'],
    ['token arrays then text', 'completion', { model: 'm', prompt: [[1], 'a'] }, 'invalid_prompt', 'prompt[1]'],
    ['fractional token', 'completion', { model: 'm', prompt: [1.5] }, 'invalid_prompt', 'prompt[0]'],
    ['negative token', 'completion', { model: 'm', prompt: [[1, -2]] }, 'invalid_prompt', 'prompt[0]'],
    ['object prompt', 'completion', { model: 'm', prompt: [{ text: 'a' }] }, 'invalid_prompt', 'prompt[0]'],
    ['numeric suffix', 'completion', { model: 'm', prompt: 'a', suffix: 5 }, 'invalid_suffix', 'suffix'],
    ['missing input', 'embedding', { model: 'm' }, 'missing_input', 'input'],
    ['object input', 'embedding', { model: 'm', input: { text: 'a' } }, 'invalid_input', 'input'],
    ['boolean input item', 'embedding', { model: 'm', input: [true] }, 'invalid_input', 'input[0]'],
    ['embedding messages malformed', 'embedding', { model: 'm', messages: [{ role: 'user', content: 1 }] }, 'invalid_messages', 'messages[0].content'],
    ['numeric responses input', 'response', { model: 'm', input: 5 }, 'invalid_input', 'input'],
    ['responses item a string', 'response', { model: 'm', input: ['hi'] }, 'invalid_input', 'input[0]'],
    ['responses message without role', 'response', { model: 'm', input: [{ content: 'hi' }] }, 'invalid_input', 'input[0].role'],
    ['responses message numeric content', 'response', { model: 'm', input: [{ role: 'user', content: 5 }] }, 'invalid_input', 'input[0].content'],
    ['responses part without text', 'response', { model: 'm', input: [{ role: 'user', content: [{ type: 'input_text' }] }] }, 'invalid_input', 'input[0].content[0].text'],
    ['function_call without arguments', 'response', { model: 'm', input: [{ type: 'function_call', name: 'f', call_id: 'c' }] }, 'invalid_input', 'input[0].arguments'],
    ['function_call_output without call_id', 'response', { model: 'm', input: [{ type: 'function_call_output', output: 'x' }] }, 'invalid_input', 'input[0].call_id'],
    ['function_call_output object output', 'response', { model: 'm', input: [{ type: 'function_call_output', call_id: 'c', output: {} }] }, 'invalid_input', 'input[0].output'],
    ['reasoning summary not an array', 'response', { model: 'm', input: [{ type: 'reasoning', summary: 'x' }] }, 'invalid_input', 'input[0].summary'],
    ['reasoning part without text', 'response', { model: 'm', input: [{ type: 'reasoning', summary: [{ type: 'summary_text' }] }] }, 'invalid_input', 'input[0].summary[0].text'],
    ['uninspectable item type', 'response', { model: 'm', input: [{ type: 'web_search_call', id: 'ws' }] }, 'unsupported_input_item', 'input[0].type'],
    ['numeric item type', 'response', { model: 'm', input: [{ type: 7 }] }, 'unsupported_input_item', 'input[0].type'],
    ['numeric instructions', 'response', { model: 'm', instructions: 5 }, 'invalid_instructions', 'instructions'],
    ['responses tools an object', 'response', { model: 'm', input: 'x', tools: {} }, 'invalid_tools', 'tools'],
  ];

  for (const [label, operation, body, code, param] of cases) {
    test(`${operation}: ${label}`, () => assertBadRequest(() => parseOpenAiRequest(operation, body), code, param, label));
  }

  test('messages name the exact problem', () => {
    assert.throws(() => parseOpenAiRequest('chat', user(42)), { message: '`messages[0].content` must be a string, an array of content parts or null, got a number' });
    assert.throws(() => parseOpenAiRequest('chat', []), { message: 'Request body must be a JSON object, got an array' });
    assert.throws(() => parseOpenAiRequest('chat', chat([{ role: 'tool', content: 'x' }])), {
      message: '`messages[0].tool_call_id` is required for a "tool" message',
    });
  });
});
