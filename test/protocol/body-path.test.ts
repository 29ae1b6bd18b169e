import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatPath, getAtPath, setAtPath } from '../../src/protocol/body-path.js';

const body = () => ({
  messages: [
    { role: 'system', content: 'be nice' },
    { role: 'user', content: [{ type: 'text', text: 'hi' }] },
  ],
  prompt: ['a', 'b'],
});

describe('getAtPath', () => {
  test('follows object keys and array indexes', () => {
    assert.equal(getAtPath(body(), ['messages', 1, 'content', 0, 'text']), 'hi');
    assert.equal(getAtPath(body(), ['prompt', 1]), 'b');
    assert.deepEqual(getAtPath(body(), []), body());
  });

  test('is undefined for anything that is not there', () => {
    for (const path of [['nope'], ['messages', 5], ['messages', -1], ['messages', 0.5], ['messages', '0'], ['prompt', 'length'], ['messages', 0, 'content', 'x', 'y']]) {
      assert.equal(getAtPath(body(), path), undefined, JSON.stringify(path));
    }
  });

  test('never walks the prototype chain', () => {
    assert.equal(getAtPath({}, ['constructor']), undefined);
    assert.equal(getAtPath({}, ['__proto__']), undefined);
  });
});

describe('setAtPath', () => {
  test('replaces text in place at a field path', () => {
    const target = body();
    setAtPath(target, ['messages', 1, 'content', 0, 'text'], '[masked]');
    setAtPath(target, ['prompt', 0], 'A');
    assert.deepEqual(target.messages[1]?.content, [{ type: 'text', text: '[masked]' }]);
    assert.deepEqual(target.prompt, ['A', 'b']);
  });

  test('can replace a whole value, such as Ollama tool arguments', () => {
    const target = { tool_calls: [{ function: { name: 'f', arguments: { q: 'secret' } } }] };
    setAtPath(target, ['tool_calls', 0, 'function', 'arguments'], JSON.parse('{"q":"[masked]"}'));
    assert.deepEqual(target.tool_calls[0]?.function.arguments, { q: '[masked]' });
  });

  test('refuses to add what was not there, or to touch the prototype', () => {
    for (const path of [[], ['missing'], ['messages', 2], ['messages', 0, 'name'], ['prompt', 'length'], ['__proto__'], ['constructor']]) {
      assert.throws(() => setAtPath(body(), path, 'x'), /nothing to replace/, JSON.stringify(path));
    }
    assert.equal(({} as Record<string, unknown>).x, undefined);
  });
});

test('formatPath writes the OpenAI error.param form', () => {
  assert.equal(formatPath(['messages', 2, 'content']), 'messages[2].content');
  assert.equal(formatPath(['messages', 1, 'tool_calls', 0, 'function', 'arguments']), 'messages[1].tool_calls[0].function.arguments');
  assert.equal(formatPath(['prompt', 1]), 'prompt[1]');
  assert.equal(formatPath(['model']), 'model');
  assert.equal(formatPath([]), '');
});
