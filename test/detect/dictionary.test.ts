import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AhoCorasick } from '../../src/detect/aho-corasick.js';
import { createScanner } from '../../src/detect/scanner.js';
import { entities, randomChars } from './helpers.js';

function occurrences(automaton: AhoCorasick, text: string): Array<[number, number, number]> {
  const found: Array<[number, number, number]> = [];
  automaton.scan(text, (pattern, start, end) => { found.push([pattern, start, end]); });
  return found;
}

describe('Aho-Corasick', () => {
  it('reports every occurrence, overlapping ones included', () => {
    const ac = new AhoCorasick(['he', 'she', 'his', 'hers']);
    assert.deepEqual(occurrences(ac, 'ushers'), [[1, 1, 4], [0, 2, 4], [3, 2, 6]]);
  });
  it('folds case per code unit when asked', () => {
    const ac = new AhoCorasick(['Falcon', 'ÉCLAIR'], { caseInsensitive: true });
    assert.deepEqual(occurrences(ac, 'FALCON falcon éclair'), [[0, 0, 6], [0, 7, 13], [1, 14, 20]]);
  });
  it('agrees with indexOf on random texts, in the dense and the sparse table layouts', () => {
    const patterns = Array.from({ length: 40 }, (_, i) => randomChars('abc', 2 + (i % 4), i + 1));
    const text = randomChars('abcd', 3000, 99);
    const expected: Array<[number, number, number]> = [];
    patterns.forEach((p, index) => {
      for (let at = text.indexOf(p); at !== -1; at = text.indexOf(p, at + 1)) expected.push([index, at, at + p.length]);
    });
    const sort = (list: Array<[number, number, number]>) => list.sort((a, b) => a[2] - b[2] || a[0] - b[0]);
    assert.deepEqual(sort(occurrences(new AhoCorasick(patterns), text)), sort(expected));
    // Many distinct characters and states push the automaton past its dense-table limit.
    const wide = Array.from({ length: 3000 }, (_, i) => String.fromCharCode(0x4e00 + i) + randomChars('xyz', 3, i));
    const big = new AhoCorasick([...patterns, ...wide]);
    assert.deepEqual(sort(occurrences(big, text)), sort(expected));
  });
});

describe('dictionaries', () => {
  const scanner = createScanner({ types: [], dictionaries: { codenames: ['Falcon', 'Blue Harbor', 'C++ Core'], customers: ['Acme Corp', 'Zoë & Co'] } });
  it('matches whole words case-insensitively and names the dictionary', () => {
    const text = 'Project FALCON ships to acme corp; blue harbor is late.';
    assert.deepEqual(entities(text, scanner), [['DICTIONARY', 'FALCON'], ['DICTIONARY', 'acme corp'], ['DICTIONARY', 'blue harbor']]);
    assert.deepEqual(scanner.scan(text).map((s) => s.rule), ['dictionary.codenames', 'dictionary.customers', 'dictionary.codenames']);
  });
  it('does not match inside words', () => {
    assert.deepEqual(entities('Falconry and falcons, but not Acme Corporation.', scanner), []);
  });
  it('handles terms that start or end with punctuation and non-ASCII letters', () => {
    assert.deepEqual(entities('We use C++ Core daily with ZOË & CO.', scanner), [['DICTIONARY', 'C++ Core'], ['DICTIONARY', 'ZOË & CO']]);
  });
  it('bounds maxEntityLength by the longest term', () => {
    assert.equal(scanner.maxEntityLength, 'Blue Harbor'.length);
  });
  it('prefers the longer of overlapping terms', () => {
    const nested = createScanner({ types: [], dictionaries: { a: ['Acme'], b: ['Acme Corp'] } });
    assert.deepEqual(entities('Acme Corp and Acme', nested), [['DICTIONARY', 'Acme Corp'], ['DICTIONARY', 'Acme']]);
  });
  it('rejects bad dictionary names', () => {
    assert.throws(() => createScanner({ dictionaries: { 'bad name': ['x'] } }), /dictionary name/);
  });
});
