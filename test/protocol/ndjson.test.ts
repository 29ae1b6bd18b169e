import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NdjsonDecoder, NdjsonLineTooLargeError, type NdjsonLine } from '../../src/protocol/ndjson.js';
import { decodeChunks, randomChunks, seededRandom } from './stream-chunks.js';

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const decode = (...chunks: Array<Uint8Array | string>): NdjsonLine[] => decodeChunks(new NdjsonDecoder(), chunks);

describe('NdjsonDecoder', () => {
  test('parses each line and keeps its exact text', () => {
    assert.deepEqual(decode('{"a":1}\n[2]\n'), [
      { raw: '{"a":1}\n', value: { a: 1 } },
      { raw: '[2]\n', value: [2] },
    ]);
  });

  test('\\r\\n endings stay in raw and do not disturb parsing', () => {
    assert.deepEqual(decode('{"a":1}\r\n'), [{ raw: '{"a":1}\r\n', value: { a: 1 } }]);
  });

  test('blank and whitespace-only lines are skipped', () => {
    assert.deepEqual(decode('\n  \r\n{"a":1}\n\t\n').map((l) => l.value), [{ a: 1 }]);
  });

  test('a line that is not JSON is returned with an error and no value', () => {
    const [line] = decode('{"a":\n');
    assert.equal(line?.raw, '{"a":\n');
    assert.equal(line?.value, undefined);
    assert.match(line?.error ?? '', /JSON/);
  });

  test('JSON null is a value, not a parse failure', () => {
    assert.deepEqual(decode('null\n'), [{ raw: 'null\n', value: null }]);
  });

  test('a line split inside a multi-byte character decodes intact', () => {
    const bytes = utf8('{"t":"👋"}\n');
    assert.deepEqual(decode(bytes.subarray(0, 8), bytes.subarray(8)), [{ raw: '{"t":"👋"}\n', value: { t: '👋' } }]);
  });

  test('a byte-order mark at stream start is dropped', () => {
    assert.deepEqual(decode(new Uint8Array([0xef, 0xbb]), new Uint8Array([0xbf]), '{"a":1}\n')[0]?.value, { a: 1 });
  });

  test('end() returns a final line without its newline, marked incomplete', () => {
    assert.deepEqual(decode('{"a":1}\n{"done":true}'), [
      { raw: '{"a":1}\n', value: { a: 1 } },
      { raw: '{"done":true}', value: { done: true }, incomplete: true },
    ]);
    assert.deepEqual(decode('{"a":1}\n  '), [{ raw: '{"a":1}\n', value: { a: 1 } }]);
  });

  test('end() is idempotent, and push() after it is a bug', () => {
    const decoder = new NdjsonDecoder();
    decoder.push('{}');
    assert.equal(decoder.end().length, 1);
    assert.deepEqual(decoder.end(), []);
    assert.throws(() => decoder.push('{}\n'), /after end/);
  });
});

describe('NdjsonDecoder line size limit', () => {
  test('an upstream that never sends a newline is cut off', () => {
    const decoder = new NdjsonDecoder({ maxLineBytes: 64 });
    assert.throws(() => {
      for (let i = 0; i < 100; i++) decoder.push('xxxxxxxx');
    }, NdjsonLineTooLargeError);
  });

  test('the limit counts the bytes of raw, newline included, however the line is chunked', () => {
    const line = '"é"\n'; // 5 bytes
    assert.equal(decodeChunks(new NdjsonDecoder({ maxLineBytes: 5 }), [line]).length, 1);
    assert.throws(() => decodeChunks(new NdjsonDecoder({ maxLineBytes: 4 }), [line]), NdjsonLineTooLargeError);
    assert.throws(() => decodeChunks(new NdjsonDecoder({ maxLineBytes: 4 }), [...line]), NdjsonLineTooLargeError);
  });

  test('many short lines in one large chunk pass', () => {
    assert.equal(decodeChunks(new NdjsonDecoder({ maxLineBytes: 16 }), ['{"n":1}\n'.repeat(100)]).length, 100);
  });

  test('the default limit is 1 MiB', () => {
    assert.throws(() => new NdjsonDecoder().push('x'.repeat(1024 * 1024 + 1)), (err: unknown) => err instanceof NdjsonLineTooLargeError && err.limitBytes === 1024 * 1024);
  });

  test('a long line arriving in tiny chunks is accumulated, not rescanned', () => {
    const decoder = new NdjsonDecoder({ maxLineBytes: 2 * 1024 * 1024 });
    decoder.push('"');
    for (let i = 0; i < 65536; i++) assert.deepEqual(decoder.push('0123456789abcdef'), []);
    assert.equal((decoder.push('"\n')[0]?.value as string).length, 1024 * 1024);
  });
});

describe('NdjsonDecoder is independent of how the stream is split', () => {
  const ollamaLine = (content: string, done = false): string =>
    JSON.stringify({ model: 'llama3', created_at: '2025-01-01T00:00:00Z', message: { role: 'assistant', content }, done });

  const streams: Array<{ name: string; text: string; values: unknown[] }> = [
    {
      name: 'ollama chat with multi-byte text',
      text: `${ollamaLine('hé')}\n${ollamaLine('llo 👋')}\n${ollamaLine(' 世界')}\n${ollamaLine('', true)}\n`,
      values: ['hé', 'llo 👋', ' 世界', ''].map((c, i) => JSON.parse(ollamaLine(c, i === 3))),
    },
    {
      name: 'CRLF endings, a blank line and a mid-stream error',
      text: `{"response":"héllo"}\r\n\r\n{"response":" 👋 世界"}\r\n{"error":"boom"}\r\n`,
      values: [{ response: 'héllo' }, { response: ' 👋 世界' }, { error: 'boom' }],
    },
  ];

  for (const stream of streams) {
    const bytes = utf8(stream.text);
    const reference = decode(bytes);

    test(`${stream.name}: the reference decoding is right`, () => {
      assert.deepEqual(reference.map((l) => l.value), stream.values);
      const nonBlankLines = stream.text.split(/(?<=\n)/).filter((line) => line.trim() !== '');
      assert.equal(reference.map((l) => l.raw).join(''), nonBlankLines.join(''));
    });

    test(`${stream.name}: every single split point`, () => {
      for (let at = 0; at <= bytes.length; at++) {
        assert.deepEqual(decode(bytes.subarray(0, at), bytes.subarray(at)), reference, `split at byte ${at}`);
      }
    });

    test(`${stream.name}: random small chunks`, () => {
      const random = seededRandom(0xd00d + stream.text.length);
      for (let round = 0; round < 200; round++) {
        const chunks = randomChunks(bytes, random, 7);
        assert.deepEqual(decode(...chunks), reference, `chunk sizes ${chunks.map((c) => c.length).join(',')}`);
      }
    });
  }
});
