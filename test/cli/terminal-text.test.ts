import assert from 'node:assert/strict';
import { test } from 'node:test';
import { printable } from '../../src/cli/terminal-text.js';

test('printable keeps text, tabs and newlines, and shows controls as escapes', () => {
  assert.equal(printable('héllo\tworld\n日本語 🙂'), 'héllo\tworld\n日本語 🙂');
  assert.equal(printable('a\u001b[2Jb'), 'a\\u{1b}[2Jb');
  assert.equal(printable('\r\u0000\u007f\u009b'), '\\u{d}\\u{0}\\u{7f}\\u{9b}');
  assert.equal(printable('x\u202ey\u2066z\u200f'), 'x\\u{202e}y\\u{2066}z\\u{200f}');
});
