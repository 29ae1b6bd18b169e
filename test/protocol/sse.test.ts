import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeSseFrame, isDoneFrame, SseDecoder, SseFrameTooLargeError, type SseFrame } from '../../src/protocol/sse.js';
import { decodeChunks, randomChunks, seededRandom } from './stream-chunks.js';

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const decode = (...chunks: Array<Uint8Array | string>): SseFrame[] => decodeChunks(new SseDecoder(), chunks);

describe('SseDecoder fields', () => {
  test('a data frame, with its raw text', () => {
    assert.deepEqual(decode('data: hello\n\n'), [{ data: 'hello', comments: [], hasData: true, raw: 'data: hello\n\n' }]);
  });

  test('event, id and retry', () => {
    const [frame] = decode('event: delta\nid: 42\nretry: 1500\ndata: x\n\n');
    assert.equal(frame?.event, 'delta');
    assert.equal(frame?.id, '42');
    assert.equal(frame?.retry, 1500);
    assert.equal(frame?.data, 'x');
  });

  test('several data lines join with \\n, including empty ones', () => {
    assert.equal(decode('data: a\ndata:\ndata: b\n\n')[0]?.data, 'a\n\nb');
  });

  test('only the single space after the colon is dropped', () => {
    assert.equal(decode('data:x\n\n')[0]?.data, 'x');
    assert.equal(decode('data:  two\n\n')[0]?.data, ' two');
    assert.equal(decode('data: a: b\n\n')[0]?.data, 'a: b');
  });

  test('a field without a colon has an empty value', () => {
    const [frame] = decode('data\n\n');
    assert.equal(frame?.hasData, true);
    assert.equal(frame?.data, '');
  });

  test('unknown fields are ignored and field names are case-sensitive', () => {
    const [frame] = decode('foo: bar\nData: no\ndata: yes\n\n');
    assert.equal(frame?.data, 'yes');
    assert.equal(frame?.raw, 'foo: bar\nData: no\ndata: yes\n\n');
  });

  test('retry is kept only when all digits', () => {
    for (const bad of ['1.5', '-1', ' 10', '10ms', '']) {
      assert.equal(decode(`retry: ${bad}\ndata: x\n\n`)[0]?.retry, undefined, bad);
    }
    assert.equal(decode('retry:0\ndata: x\n\n')[0]?.retry, 0);
  });

  test('an id containing NUL is ignored; the last event line wins; an empty event means the default', () => {
    assert.equal(decode('id: a\0b\ndata: x\n\n')[0]?.id, undefined);
    assert.equal(decode('event: a\nevent: b\ndata: x\n\n')[0]?.event, 'b');
    assert.equal(decode('event: a\nevent:\ndata: x\n\n')[0]?.event, undefined);
    assert.equal(decode('id:\ndata: x\n\n')[0]?.id, '');
  });

  test('a comment-only frame is still a frame, without data', () => {
    assert.deepEqual(decode(': keep-alive\n\n'), [{ data: '', comments: ['keep-alive'], hasData: false, raw: ': keep-alive\n\n' }]);
    assert.deepEqual(decode(':\n:x\n\n')[0]?.comments, ['', 'x']);
  });

  test('a frame with fields but no data line passes through with hasData false', () => {
    const [frame] = decode('event: ping\n\n');
    assert.equal(frame?.hasData, false);
    assert.equal(frame?.event, 'ping');
  });

  test('fields reset between frames', () => {
    const frames = decode('event: a\nid: 1\ndata: one\n\ndata: two\n\n');
    assert.equal(frames[1]?.event, undefined);
    assert.equal(frames[1]?.id, undefined);
    assert.equal(frames[1]?.data, 'two');
  });
});

describe('SseDecoder line endings and chunking', () => {
  test('\\n, \\r\\n and bare \\r all end lines, and may be mixed', () => {
    for (const input of ['data: a\ndata: b\n\n', 'data: a\r\ndata: b\r\n\r\n', 'data: a\rdata: b\r\r', 'data: a\r\ndata: b\n\r']) {
      const frames = decode(input);
      assert.equal(frames.length, 1, JSON.stringify(input));
      assert.equal(frames[0]?.data, 'a\nb');
      assert.equal(frames[0]?.raw, input);
    }
  });

  test('a chunk ending in \\r holds the frame until the next chunk shows whether \\n follows', () => {
    const decoder = new SseDecoder();
    assert.deepEqual(decoder.push('data: a\r\n\r'), []);
    const frames = decoder.push('\ndata: b\r\n\r\n');
    assert.deepEqual(frames.map((f) => f.raw), ['data: a\r\n\r\n', 'data: b\r\n\r\n']);
  });

  test('a bare \\r ending a frame at a chunk boundary is released by the next chunk or by end()', () => {
    const decoder = new SseDecoder();
    assert.deepEqual(decoder.push('data: a\r\r'), []);
    assert.deepEqual(decoder.push('data: b\r').map((f) => f.raw), ['data: a\r\r']);
    const last = decoder.end();
    assert.deepEqual(last, [{ data: 'b', comments: [], hasData: true, raw: 'data: b\r', incomplete: true }]);
  });

  test('a multi-byte character split across chunks decodes intact', () => {
    const bytes = utf8('data: 👋é\n\n');
    const frames = decode(bytes.subarray(0, 8), bytes.subarray(8, 9), bytes.subarray(9));
    assert.equal(frames[0]?.data, '👋é');
  });

  test('a UTF-8 byte-order mark at stream start is dropped, even when split; a later one is data', () => {
    const bom = new Uint8Array([0xef, 0xbb, 0xbf]);
    assert.equal(decode(bom.subarray(0, 1), bom.subarray(1), utf8('data: x\n\n'))[0]?.raw, 'data: x\n\n');
    assert.equal(decode('\uFEFFdata: x\n\n')[0]?.data, 'x');
    assert.equal(decode('data: \uFEFFx\n\n')[0]?.data, '\uFEFFx');
  });

  test('blank lines that end no frame become part of the next frame', () => {
    const frames = decode('\n\r\ndata: x\n\n\n');
    assert.deepEqual(frames.map((f) => f.raw), ['\n\r\ndata: x\n\n']);
  });

  test('string and byte chunks may be mixed', () => {
    assert.equal(decode('data: a', utf8('b\n'), '\n')[0]?.data, 'ab');
  });
});

describe('SseDecoder end()', () => {
  test('returns an unterminated final frame only if it had data, marked incomplete', () => {
    assert.deepEqual(decode('data: a\ndata: b\n'), [{ data: 'a\nb', comments: [], hasData: true, raw: 'data: a\ndata: b\n', incomplete: true }]);
    assert.deepEqual(decode('data: partial'), [{ data: 'partial', comments: [], hasData: true, raw: 'data: partial', incomplete: true }]);
    assert.deepEqual(decode('data: x\n\n: comment\n'), [{ data: 'x', comments: [], hasData: true, raw: 'data: x\n\n' }]);
    assert.deepEqual(decode('event: only\n'), []);
    assert.deepEqual(decode(''), []);
  });

  test('flushes a truncated multi-byte character as U+FFFD', () => {
    const bytes = utf8('data: é');
    assert.equal(decode(bytes.subarray(0, bytes.length - 1))[0]?.data, '\uFFFD');
  });

  test('is idempotent, and push() after it is a bug', () => {
    const decoder = new SseDecoder();
    decoder.push('data: x');
    assert.equal(decoder.end().length, 1);
    assert.deepEqual(decoder.end(), []);
    assert.throws(() => decoder.push('data: y\n\n'), /after end/);
  });
});

describe('SseDecoder frame size limit', () => {
  test('an upstream that never ends its frame is cut off, not buffered forever', () => {
    const decoder = new SseDecoder({ maxFrameBytes: 64 });
    decoder.push('data: ');
    assert.throws(() => {
      for (let i = 0; i < 100; i++) decoder.push('xxxxxxxx');
    }, SseFrameTooLargeError);
  });

  test('many frames each under the limit pass, even in one chunk larger than it', () => {
    const frame = 'data: 0123456789\n\n';
    const frames = decodeChunks(new SseDecoder({ maxFrameBytes: frame.length }), [frame.repeat(50)]);
    assert.equal(frames.length, 50);
  });

  test('a complete frame over the limit fails however it is chunked; the limit counts bytes', () => {
    const frame = 'data: é\n\n'; // 10 bytes, 9 characters
    assert.equal(decodeChunks(new SseDecoder({ maxFrameBytes: 10 }), [frame]).length, 1);
    assert.throws(() => decodeChunks(new SseDecoder({ maxFrameBytes: 9 }), [frame]), SseFrameTooLargeError);
    assert.throws(() => decodeChunks(new SseDecoder({ maxFrameBytes: 9 }), [...frame]), SseFrameTooLargeError);
  });

  test('a long line arriving in tiny chunks is accumulated, not rescanned', () => {
    // A decoder that rescans its buffer on every chunk would take minutes here.
    const decoder = new SseDecoder({ maxFrameBytes: 2 * 1024 * 1024 });
    decoder.push('data: ');
    for (let i = 0; i < 65536; i++) assert.deepEqual(decoder.push('0123456789abcdef'), []);
    assert.equal(decoder.push('\n\n')[0]?.data.length, 1024 * 1024);
  });

  test('what is held across chunks counts its bytes: a frame that ended in a chunk no longer counts, the held rest does', () => {
    const held = new SseDecoder({ maxFrameBytes: 14 });
    assert.equal(held.push('data: a\n\ndata: éééé').length, 1); // held: "data: éééé", 14 bytes
    assert.throws(() => held.push('é'), SseFrameTooLargeError);
    const growing = new SseDecoder({ maxFrameBytes: 12 });
    assert.deepEqual(growing.push('data: éé'), []); // 10 bytes in 8 characters
    assert.deepEqual(growing.push('é'), []); // 12
    assert.throws(() => growing.push('x'), SseFrameTooLargeError);
    // A "\r" at a chunk's end is held (it may be the first half of "\r\n") and counted.
    const cr = new SseDecoder({ maxFrameBytes: 11 });
    assert.deepEqual(cr.push('data: é\r'), []); // 9 bytes
    assert.equal(cr.push('\r\n')[0]?.data, 'é'); // "data: é\r\r\n", 11 bytes
    const over = new SseDecoder({ maxFrameBytes: 8 });
    assert.throws(() => over.push('data: é\r'), SseFrameTooLargeError);
  });

  test('a chunk of whole frames is not walked for its UTF-8 size, nor is each frame (three bytes a character bound them)', () => {
    const decoder = new SseDecoder({ maxFrameBytes: 1024 });
    const measure = Buffer.byteLength;
    let measured = 0;
    Buffer.byteLength = ((...args: Parameters<typeof measure>) => {
      measured++;
      return measure(...args);
    }) as typeof measure;
    try {
      assert.equal(decoder.push(Buffer.from('data: {"a":"é"}\n\ndata: two\n\n: c\ndata: 3\n\n')).length, 3);
      assert.equal(decoder.push('data: four\n\n').length, 1);
    } finally {
      Buffer.byteLength = measure;
    }
    assert.equal(measured, 0);
  });

  test('the default limit is 1 MiB', () => {
    const big = `data: ${'x'.repeat(1024 * 1024)}\n\n`;
    assert.throws(() => new SseDecoder().push(big), (err: unknown) => err instanceof SseFrameTooLargeError && err.limitBytes === 1024 * 1024);
  });
});

describe('encodeSseFrame', () => {
  test('writes event, id and one data line per line of data', () => {
    assert.equal(encodeSseFrame({ data: '{"a":1}' }), 'data: {"a":1}\n\n');
    assert.equal(encodeSseFrame({ event: 'e', id: '7', data: 'a\nb\r\nc\rd' }), 'event: e\nid: 7\ndata: a\ndata: b\ndata: c\ndata: d\n\n');
  });

  test('round-trips through the decoder', () => {
    for (const data of ['', ' leading space', 'multi\nline\n', '[DONE]', 'héllo 👋 世界']) {
      const [frame] = decode(encodeSseFrame({ event: 'x', data }));
      assert.equal(frame?.data, data.replace(/\r\n?/g, '\n'));
      assert.equal(frame?.event, 'x');
    }
  });

  test('refuses a line break in event or id, which would forge fields', () => {
    assert.throws(() => encodeSseFrame({ event: 'a\ndata: evil', data: '' }), TypeError);
    assert.throws(() => encodeSseFrame({ id: '1\r', data: '' }), TypeError);
  });
});

test('isDoneFrame recognises only data: [DONE]', () => {
  const [done, notDone, comment] = decode('data: [DONE]\n\ndata: [DONE] \n\n: [DONE]\n\n');
  assert.equal(isDoneFrame(done!), true);
  assert.equal(isDoneFrame(notDone!), false);
  assert.equal(isDoneFrame(comment!), false);
});

describe('SseDecoder is independent of how the stream is split', () => {
  const chunk = (content: string, finish: string | null = null): string =>
    JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content }, finish_reason: finish }] });

  const streams: Array<{ name: string; text: string; data: string[] }> = [
    {
      name: 'openai chat with multi-byte text',
      text: `data: ${chunk('hé')}\n\ndata: ${chunk('llo 👋')}\n\ndata: ${chunk(' 世界', 'stop')}\n\ndata: [DONE]\n\n`,
      data: [chunk('hé'), chunk('llo 👋'), chunk(' 世界', 'stop'), '[DONE]'],
    },
    {
      name: 'CRLF endings, keep-alive comments, event and id fields',
      text: `: keep-alive\r\n\r\nevent: message\r\nid: 1\r\ndata: ${chunk('héllo')}\r\n\r\n: ping\r\n\r\nid: 2\r\ndata: ${chunk(' 👋 世界')}\r\n\r\ndata: [DONE]\r\n\r\n`,
      data: ['', chunk('héllo'), '', chunk(' 👋 世界'), '[DONE]'],
    },
    {
      name: 'responses API named events with multi-line data',
      text: 'event: response.output_text.delta\ndata: {"delta":\ndata: "世界"}\n\nevent: response.completed\ndata: {}\n\n',
      data: ['{"delta":\n"世界"}', '{}'],
    },
    {
      name: 'bare CR endings',
      text: 'data: 👋\r\rdata: a\rdata: b\r\r',
      data: ['👋', 'a\nb'],
    },
    {
      name: 'stray blank lines, comments and retry between frames, mixed endings',
      text: '\n\r\ndata: a\n\n\n\r\nretry: 10\r: c\ndata: é\rdata:\n\n:x\r\n\r\ndata: [DONE]\n\n',
      data: ['a', 'é\n', '', '[DONE]'],
    },
  ];

  for (const stream of streams) {
    const bytes = utf8(stream.text);
    const reference = decode(bytes);

    test(`${stream.name}: the reference decoding is right`, () => {
      assert.deepEqual(reference.map((f) => f.data), stream.data);
      assert.equal(reference.map((f) => f.raw).join(''), stream.text);
      assert.ok(reference.every((f) => !f.incomplete));
    });

    test(`${stream.name}: every single split point`, () => {
      for (let at = 0; at <= bytes.length; at++) {
        assert.deepEqual(decode(bytes.subarray(0, at), bytes.subarray(at)), reference, `split at byte ${at}`);
      }
    });

    test(`${stream.name}: every byte its own chunk`, () => {
      assert.deepEqual(decode(...Array.from(bytes, (_, i) => bytes.subarray(i, i + 1))), reference);
    });

    test(`${stream.name}: random small chunks`, () => {
      const random = seededRandom(0x5eed + stream.text.length);
      for (let round = 0; round < 200; round++) {
        const chunks = randomChunks(bytes, random, 7);
        assert.deepEqual(decode(...chunks), reference, `chunk sizes ${chunks.map((c) => c.length).join(',')}`);
      }
    });
  }
});
