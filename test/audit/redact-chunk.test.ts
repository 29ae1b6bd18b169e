// Redaction by pattern inside a recorded chunk. Since the relay records
// everything one upstream read completed as one chunk, an Ollama chunk may
// hold several NDJSON lines; each is a JSON document and is redacted as one,
// so text the model server escaped (Go's encoder writes & < > as \u0026 …)
// is matched as the client read it, not as its escaped bytes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compilePattern, redactChunk, REDACTED } from '../../src/audit/content-text.js';

const line = (content: string) => `${JSON.stringify({ model: 'llama3', message: { role: 'assistant', content }, done: false }).replace(/&/g, '\\u0026')}\n`;

test('a chunk of several NDJSON lines is redacted line by line, as JSON, escapes included', async () => {
  const pattern = await compilePattern('AT&T account 4471');
  const raw = line('Your AT&T account 4471 ') + line('is closed; AT&T account 4471 again.');
  assert.ok(raw.includes('\\u0026'), 'the fixture escapes & as Go does');
  const redacted = redactChunk(raw, pattern);
  const lines = redacted.split('\n');
  assert.equal(lines.pop(), '', 'the framing stays: one document per line, newline-terminated');
  const contents = lines.map((l) => (JSON.parse(l) as { message: { content: string } }).message.content);
  assert.deepEqual(contents, [`Your ${REDACTED} `, `is closed; ${REDACTED} again.`]);
});

test('one JSON document over several lines (a pretty-printed body) is still redacted whole', async () => {
  const pattern = await compilePattern('jane@example\\.com');
  const raw = `${JSON.stringify({ choices: [{ message: { content: 'mail jane@example.com' } }] }, null, 2)}\n`;
  const redacted = redactChunk(raw, pattern);
  assert.equal((JSON.parse(redacted) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content, `mail ${REDACTED}`);
});
