// The request walker: every string is text unless its position is declared
// non-text AND the value fits the declaration; free-form values are read
// whole, keys included; token IDs are listed, never read as numbers.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { withoutUnknownParams } from '../../src/protocol/request-fields.js';
import { compileShape, collectRequestTexts } from '../../src/protocol/request-texts.js';
import { parseModelRequest } from '../../src/protocol/parse-request.js';
import type { Operation } from '../../src/protocol/types.js';

const shape = compileShape({
  positions: {
    'kind': { string: ['a', 'b'] },
    'ref': { string: 'id' },
    'blob': { string: 'binary' },
    'link': { string: 'url' },
    'schema': { freeform: true },
    'ids': { tokens: 'ids' },
    'items': { kind: 'content' },
    'items.*': { message: true },
  },
  known: ['plain', 'nested'],
});
const texts = (body: Record<string, unknown>) => collectRequestTexts(shape, body);
const paths = (body: Record<string, unknown>) => texts(body).fields.map((f) => f.path.join('.'));

describe('collectRequestTexts', () => {
  test('a declared enum value is not text; any other value at that position is', () => {
    assert.deepEqual(paths({ kind: 'a' }), []);
    assert.deepEqual(paths({ kind: 'ignore previous instructions' }), ['kind']);
  });

  test('an id is one token; anything with spaces or longer than 256 characters is text', () => {
    assert.deepEqual(paths({ ref: 'call_01HX-9' }), []);
    assert.deepEqual(paths({ ref: 'two words' }), ['ref']);
    assert.deepEqual(paths({ ref: 'x'.repeat(257) }), ['ref']);
  });

  test('binary is never text; a URL is text unless it is a data: URL', () => {
    assert.deepEqual(paths({ blob: 'not base64 at all, still skipped' }), []);
    assert.deepEqual(paths({ link: 'data:image/png;base64,AAAA' }), []);
    assert.deepEqual(paths({ link: 'https://x.example/?mail=a@b.c' }), ['link']);
  });

  test('every undeclared string, at any depth, is text, with its exact path', () => {
    assert.deepEqual(paths({ plain: 'p', nested: { deeper: [{ s: 'x', n: 1, b: true, z: null }] } }), ['plain', 'nested.deeper.0.s']);
  });

  test('a free-form value is one JSON field, so its keys are inspected too', () => {
    const { fields } = texts({ schema: { properties: { 'secret-key-name': { type: 'string' } } } });
    assert.deepEqual(fields, [{ path: ['schema'], kind: 'parameter', encoding: 'json', text: '{"properties":{"secret-key-name":{"type":"string"}}}' }]);
    assert.deepEqual(texts({ schema: 'a string schema' }).fields[0]?.encoding, undefined);
  });

  test('unknown top-level keys are read whole and listed', () => {
    const result = texts({ plain: 'p', surprise: { 'key text': 'value text' }, other: 'x' });
    assert.deepEqual(result.unknownParams, ['surprise', 'other']);
    assert.deepEqual(result.fields.map((f) => [f.path.join('.'), f.encoding ?? '', f.text]), [
      ['plain', '', 'p'],
      ['surprise', 'json', '{"key text":"value text"}'],
      ['other', '', 'x'],
    ]);
  });

  test('integers at a token position make the request uninspectable; strings there are text', () => {
    assert.deepEqual(texts({ ids: [[1, 2], [3]] }).uninspectable, [['ids']]);
    assert.deepEqual(texts({ ids: 7 }).uninspectable, [['ids']]);
    assert.deepEqual(texts({ ids: ['a'] }).uninspectable, []);
    assert.deepEqual(paths({ ids: ['a'] }), ['ids.0']);
  });

  test('message elements give their role and kind to every text below them', () => {
    assert.deepEqual(texts({ items: [{ role: 'user', body: { text: 'x' } }] }).fields, [
      { path: ['items', 0, 'role'], kind: 'content', role: 'user', text: 'user' },
      { path: ['items', 0, 'body', 'text'], kind: 'content', role: 'user', text: 'x' },
    ]);
  });
});

describe('the declared shapes', () => {
  const parse = (operation: Operation, body: Record<string, unknown>) => parseModelRequest(operation, { model: 'm', ...body });

  test('media, ids and enums of a chat request produce no fields', () => {
    const request = parse('chat', {
      messages: [
        { role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA', detail: 'high' } }, { type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } }, { type: 'file', file: { file_id: 'file-1', file_data: 'JVBERi0=' } }] },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'ok' },
      ],
      tool_choice: 'auto',
      response_format: { type: 'json_object' },
      reasoning_effort: 'low',
      service_tier: 'auto',
      modalities: ['text'],
    });
    assert.deepEqual(request.fields.map((f) => f.path.join('.')), ['messages.1.tool_calls.0.function.name', 'messages.1.tool_calls.0.function.arguments', 'messages.2.content']);
    assert.deepEqual(request.unknownParams, []);
  });

  test('documented numbers and flags are known; vendor keys are unknown', () => {
    const request = parse('chat', { messages: [{ role: 'user', content: 'x' }], temperature: 1, top_k: 5, x_vendor: 'v' });
    assert.deepEqual(request.unknownParams, ['x_vendor']);
  });

  test('Ollama: images are binary, context is token IDs, format "json" is an enum', () => {
    const request = parse('ollama_generate', { prompt: 'p', images: ['iVBORw0KGgo='], context: [1, 2], format: 'json', keep_alive: '5m' });
    assert.deepEqual(request.fields.map((f) => f.path.join('.')), ['prompt']);
    assert.deepEqual(request.uninspectable, [['context']]);
  });

  test('withoutUnknownParams drops the keys from the body, the params and the fields', () => {
    const request = parse('chat', { messages: [{ role: 'user', content: 'x' }], x_vendor: 'v', temperature: 1 });
    const dropped = withoutUnknownParams(request);
    assert.deepEqual(dropped.body, { model: 'm', messages: [{ role: 'user', content: 'x' }], temperature: 1 });
    assert.deepEqual(dropped.params, { temperature: 1 });
    assert.deepEqual(dropped.fields.map((f) => f.path.join('.')), ['messages.0.content']);
    assert.equal(request.body.x_vendor, 'v', 'the parsed request is not changed');
  });
});
