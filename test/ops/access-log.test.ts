// The access log: one JSON line per request, naming the request by the
// gateway's id and the caller's own, written by a logger without redaction
// (its fields are the gateway's own values); every other line keeps
// redacting credentials wherever they appear.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { accessLogger, createLogger } from '../../src/ops/logger.js';
import { startHarness, type Harness } from '../helpers/harness.js';

function capture(lines: string[]): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
}

describe('access log', () => {
  const logs: string[] = [];
  let h: Harness;
  before(async () => {
    h = await startHarness({ logs });
  });
  after(() => h.close());

  test('one line per request, with the gateway\'s request id and the caller\'s', async () => {
    const res = await fetch(`${h.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await h.userToken('alice')}`, 'content-type': 'application/json', 'x-request-id': 'client-42' },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'hello' }] }),
    });
    assert.equal(res.status, 200);
    await res.text();
    const id = res.headers.get('x-request-id')!;
    await new Promise((r) => setTimeout(r, 20)); // the line follows the response
    const lines = logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request' && l.reqId === id);
    assert.equal(lines.length, 1, `access lines for ${id}: ${JSON.stringify(lines)}`);
    const line = lines[0]!;
    assert.equal(line.clientReqId, 'client-42');
    assert.equal(line.service, 'modelgate');
    assert.equal(line.level, 'info');
    assert.equal(line.method, 'POST');
    assert.equal(line.path, '/v1/chat/completions');
    assert.equal(line.status, 200);
    assert.equal(line.sub, 'alice');
    assert.deepEqual(Object.keys(line).slice(0, 6), ['level', 'time', 'service', 'reqId', 'clientReqId', 'method'], 'the same order as the other lines of a request');
    assert.ok(!JSON.stringify(logs).includes(await h.userToken('alice')), 'a token reached the log');
  });

  test('the gateway\'s logger redacts credentials at any depth it names; the access logger is the same log unredacted', () => {
    const lines: string[] = [];
    const log = createLogger('info', capture(lines));
    log.child({ reqId: 'r1' }).warn({ upstream: { headers: { authorization: 'Bearer s3cret' }, cookie: 'id=s3cret' }, token: 's3cret' }, 'failed');
    accessLogger(log).info({ reqId: 'r1', status: 200 }, 'request');
    const [warned, access] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(!lines[0]!.includes('s3cret'), `not redacted: ${lines[0]}`);
    assert.equal(warned!.token, '[redacted]');
    assert.deepEqual(access, { level: 'info', time: access!.time, service: 'modelgate', reqId: 'r1', status: 200, msg: 'request' });
  });

  test('the access logger follows the log\'s level as a reload changes it', () => {
    const lines: string[] = [];
    const log = createLogger('warn', capture(lines));
    const access = accessLogger(log);
    access.info({ reqId: 'r1' }, 'request');
    log.level = 'info';
    access.info({ reqId: 'r2' }, 'request');
    log.level = 'warn';
    access.info({ reqId: 'r3' }, 'request');
    assert.deepEqual(lines.map((l) => (JSON.parse(l) as { reqId: string }).reqId), ['r2']);
  });
});
