import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Utf8ChunkDecoder } from '../../src/protocol/utf8-chunks.js';
import { randomChunks, seededRandom } from './stream-chunks.js';

/** Decodes `chunks` one by one, as the stream decoders do. */
function decodeAll(chunks: Uint8Array[]): string {
  const decoder = new Utf8ChunkDecoder();
  let text = '';
  for (const chunk of chunks) text += decoder.decode(chunk);
  return text + decoder.end();
}

/** The reference: the Encoding standard's decoder over the whole stream at once (it drops a leading BOM, as ours does). */
const reference = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

describe('Utf8ChunkDecoder', () => {
  // Valid characters of every length, byte-order marks, and invalid bytes of every kind:
  // lone continuations, overlongs, surrogates, past U+10FFFF, truncated sequences.
  const pieces = ['a', 'é', '€', '世', '👋', '\uFEFF', '\n'].map((s) => Buffer.from(s));
  const invalid = [[0x80], [0xbf], [0xc0, 0x80], [0xc1], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xf5], [0xff], [0xe2, 0x82], [0xf0, 0x9f, 0x91], [0xc3]].map((b) => Buffer.from(b));

  test('decodes like one TextDecoder over the whole stream, however it is split', () => {
    const random = seededRandom(0x0f8);
    for (let round = 0; round < 400; round++) {
      const parts: Buffer[] = [];
      const count = 1 + Math.floor(random() * 12);
      for (let i = 0; i < count; i++) {
        const pool = random() < 0.3 ? invalid : pieces;
        parts.push(pool[Math.floor(random() * pool.length)]!);
      }
      const bytes = Buffer.concat(parts);
      const expected = reference(bytes);
      assert.equal(decodeAll([bytes]), expected, `whole: ${bytes.toString('hex')}`);
      for (let at = 0; at <= bytes.length; at++) {
        assert.equal(decodeAll([bytes.subarray(0, at), bytes.subarray(at)]), expected, `${bytes.toString('hex')} split at ${at}`);
      }
      const chunks = randomChunks(bytes, random, 3);
      assert.equal(decodeAll(chunks), expected, `${bytes.toString('hex')} in chunks of ${chunks.map((c) => c.length).join(',')}`);
    }
  });

  test('holds a cut character until its last byte, then gives it whole', () => {
    const decoder = new Utf8ChunkDecoder();
    const wave = Buffer.from('👋');
    assert.equal(decoder.decode(wave.subarray(0, 1)), '');
    assert.equal(decoder.decode(wave.subarray(1, 3)), '');
    assert.equal(decoder.decode(wave.subarray(3)), '👋');
  });

  test('does not keep the caller\'s memory for a held byte', () => {
    const decoder = new Utf8ChunkDecoder();
    const chunk = Buffer.from('x\xe2', 'latin1');
    assert.equal(decoder.decode(chunk), 'x');
    chunk.fill(0x41);
    assert.equal(decoder.decode(Buffer.from([0x82, 0xac])), '€');
  });

  test('a string chunk ends a held sequence as U+FFFD', () => {
    const decoder = new Utf8ChunkDecoder();
    assert.equal(decoder.decode(Buffer.from([0x61, 0xe2, 0x82])), 'a');
    assert.equal(decoder.decode('b'), '\uFFFDb');
  });
});
