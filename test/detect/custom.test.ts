import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CustomPatternError } from '../../src/detect/custom.js';
import { createScanner } from '../../src/detect/scanner.js';
import { entities } from './helpers.js';

describe('custom patterns (RE2)', () => {
  it('reports matches with the configured type, rule and UTF-16 offsets', () => {
    const scanner = createScanner({ types: [], customPatterns: { ticket_id: { pattern: 'TICKET-\\d{4,8}', maxLength: 15 } } });
    const text = 'héllo 😀 TICKET-1234 and ticket-99999';
    const [span] = scanner.scan(text);
    assert.equal(text.slice(span!.start, span!.end), 'TICKET-1234');
    assert.equal(span!.rule, 'custom.ticket_id');
    assert.equal(span!.type, 'CUSTOM');
    assert.equal(span!.validator, 're2');
  });
  it('honours flags and a declared built-in type', () => {
    const scanner = createScanner({ types: [], customPatterns: { staff: { pattern: 'emp-\\d{6}', flags: 'i', type: 'NATIONAL_ID', maxLength: 10, confidence: 0.7 } } });
    assert.deepEqual(entities('ids EMP-123456, emp-654321', scanner), [['NATIONAL_ID', 'EMP-123456'], ['NATIONAL_ID', 'emp-654321']]);
  });
  it('runs only the patterns that occur, each with its own flags', () => {
    const scanner = createScanner({ types: [], customPatterns: {
      upper: { pattern: 'PROJECT-[A-Z]+', maxLength: 30 },
      any_case: { pattern: 'codename [a-z]+', flags: 'i', maxLength: 30 },
    } });
    assert.deepEqual(entities('project-x and CODENAME falcon', scanner), [['CUSTOM', 'CODENAME falcon']]);
  });
  it('does not report matches longer than maxLength, keeping the streaming bound true', () => {
    const scanner = createScanner({ types: [], customPatterns: { run: { pattern: 'A+', maxLength: 5 } } });
    assert.equal(scanner.maxEntityLength, 5);
    assert.deepEqual(entities('AAA AAAAAAAAAA', scanner), [['CUSTOM', 'AAA']]);
  });
  it('completes a classic catastrophic-backtracking pattern in linear time', () => {
    const scanner = createScanner({ types: [], customPatterns: { redos: { pattern: '(a+)+$', maxLength: 1000 } } });
    assert.deepEqual(scanner.scan(`${'a'.repeat(50_000)}!`), []);
  });

  const invalid: Array<[string, Record<string, unknown>, RegExp]> = [
    ['a backreference', { pattern: '(a)\\1', maxLength: 5 }, /"bad": backreferences are not supported/],
    ['a named backreference', { pattern: '(?<x>a)\\k<x>', maxLength: 5 }, /backreferences are not supported/],
    ['a lookahead', { pattern: 'foo(?=bar)', maxLength: 5 }, /lookahead and lookbehind are not supported/],
    ['a negative lookbehind', { pattern: '(?<!x)foo', maxLength: 5 }, /lookahead and lookbehind are not supported/],
    ['a syntax error', { pattern: 'a(b', maxLength: 5 }, /"bad": RE2 cannot compile it: .*missing/i],
    ['an empty-string match', { pattern: 'a*', maxLength: 5 }, /matches the empty string/],
    ['an unknown flag', { pattern: 'a', flags: 'x', maxLength: 5 }, /unsupported flags "x"/],
    ['no maxLength', { pattern: 'a' }, /maxLength must be an integer/],
    ['a bad confidence', { pattern: 'a', maxLength: 5, confidence: 2 }, /confidence/],
  ];
  for (const [what, spec, message] of invalid) {
    it(`throws a CustomPatternError naming the pattern for ${what}`, () => {
      assert.throws(() => createScanner({ customPatterns: { bad: spec as never } }), (error: unknown) => {
        assert.ok(error instanceof CustomPatternError);
        assert.equal(error.patternName, 'bad');
        assert.match(error.message, message);
        return true;
      });
    });
  }
  it('accepts an escaped backslash before a digit, which is not a backreference', () => {
    // The RE2 pattern \\1 is a literal backslash followed by 1.
    const scanner = createScanner({ types: [], customPatterns: { escaped: { pattern: '\\\\1', maxLength: 2 } } });
    assert.deepEqual(entities('path a\\1 b', scanner), [['CUSTOM', '\\1']]);
  });
});
