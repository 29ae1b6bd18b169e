// The console's exact-position highlighting (web/console/src/highlight.ts):
// guardrail hits where the gateway recorded them, masked text located in the
// forwarded prompt by alignment, and nothing marked when the texts disagree.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { alignMasks, highlightFields, parsePath, segments, type Decision } from '../../web/console/src/highlight.js';

const mask = (field: string, start: number, end: number, entity = 'EMAIL'): Decision => ({ direction: 'input', rule: 'mask-email', action: 'mask', entity, field, span: { start, end } });

test('field paths as the API writes them', () => {
  assert.deepEqual(parsePath('messages[2].content[0].text'), ['messages', 2, 'content', 0, 'text']);
  assert.deepEqual(parsePath('input'), ['input']);
});

test('hits at their recorded spans, masks located in the forwarded text', () => {
  const text = 'mail a@x.io and b@y.io now';
  const sent = 'mail [EMAIL_1] and [EMAIL_2] now';
  const decisions = [mask('messages[0].content', 5, 11), mask('messages[0].content', 16, 22), { direction: 'input', rule: 'codename', action: 'flag', field: 'messages[0].content', span: { start: 0, end: 4 } } as Decision];
  const [field] = highlightFields({ messages: [{ role: 'user', content: text }] }, { messages: [{ role: 'user', content: sent }] }, decisions);
  assert.deepEqual(field!.received.marks.map((m) => text.slice(m.start, m.end)), ['a@x.io', 'b@y.io', 'mail']);
  assert.deepEqual(field!.forwarded!.marks.map((m) => sent.slice(m.start, m.end)), ['[EMAIL_1]', '[EMAIL_2]']);
});

test('adjacent, overlapping and edge spans; astral characters before them', () => {
  assert.deepEqual(alignMasks('ab', 'XY', [{ start: 0, end: 1, label: 'a' }, { start: 1, end: 2, label: 'b' }]), [{ start: 0, end: 2, kind: 'masked', label: 'a; b' }]);
  const overlapped = alignMasks('0123456789', '01[X]789', [{ start: 2, end: 5, label: 'a' }, { start: 4, end: 7, label: 'b' }]);
  assert.deepEqual(overlapped, [{ start: 2, end: 5, kind: 'masked', label: 'a; b' }]);
  const emoji = '😀 a@x.io';
  assert.deepEqual(alignMasks(emoji, '😀 [EMAIL_1]', [{ start: 3, end: 9, label: 'e' }]), [{ start: 3, end: 12, kind: 'masked', label: 'e' }]);
});

test('texts that do not line up mark nothing rather than the wrong thing', () => {
  assert.equal(alignMasks('hello a@x.io', 'bonjour [EMAIL_1]', [{ start: 6, end: 12, label: 'e' }]), undefined);
  assert.equal(alignMasks('a@x.io tail', '[EMAIL_1] other', [{ start: 0, end: 6, label: 'e' }]), undefined);
  assert.equal(alignMasks('short', 'short', [{ start: 2, end: 99, label: 'e' }]), undefined, 'a span past the end');
  const [field] = highlightFields({ prompt: 'abc' }, undefined, [mask('prompt', 1, 50)]);
  assert.deepEqual(field!.received.marks, [], 'a recorded span outside the text is not drawn');
});

test('segments name every mark covering them', () => {
  const pieces = segments('abcdef', [{ start: 1, end: 4, kind: 'hit', label: 'x' }, { start: 3, end: 5, kind: 'masked', label: 'y' }]);
  assert.deepEqual(pieces.map((p) => [p.start, p.text, p.marks.map((m) => m.label).join('+')]), [[0, 'a', ''], [1, 'bc', 'x'], [3, 'd', 'x+y'], [4, 'e', 'y'], [5, 'f', '']]);
});
