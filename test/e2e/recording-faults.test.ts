// The audit store failing while a stream is running: PostgreSQL cut through
// a TCP relay (a database restart), and SQLite on a filesystem that fills up
// (SQLITE_FULL). The client is never left hanging: its stream ends with an
// error frame its SDK raises, with a retry hint, and the model's stream is
// closed. The outage is logged once when it starts and once when it ends,
// and the cut session does not stay `open`: its end is retried and stored
// as `incomplete` once the store is back.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import { openStore } from '../../src/audit/store.js';
import { postJson, startHarness, type Harness } from '../helpers/harness.js';
import { postgresThroughRelay, type PostgresThroughRelay } from '../helpers/tcp-relay.js';

/** Each fault test fails by timing out if the client hangs, rather than hanging the run. */
const NO_HANG = { timeout: 60_000 };

type LogLine = { level: string; msg: string; store?: string; refused?: number; code?: string; reqId?: string; path?: string };

const parse = (logs: string[]): LogLine[] => logs.map((l) => JSON.parse(l) as LogLine);

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('PostgreSQL restarts during a stream (cut through a TCP relay)', () => {
  let pg: PostgresThroughRelay;
  let h: Harness;
  const logs: string[] = [];
  let cutSession: string | undefined;

  before(async () => {
    pg = await postgresThroughRelay('midstream');
    h = await startHarness({
      logs,
      // A long, paced answer: the cut lands in its middle.
      model: { chunkDelayMs: 10, replyWords: 3_000 },
      configure: (input) => {
        input.storage = pg.storage;
        input.recording = { auditor_groups: ['auditors'], commit_interval: '2ms', chunk_flush_interval: '10ms', chunk_bytes: '1kb' };
      },
    });
  });
  after(async () => {
    pg.relay.restore();
    await h.close();
    await pg.cleanup();
  });

  test('the OpenAI SDK stream ends with an error it raises, with a retry hint, and the upstream stream is closed', NO_HANG, async () => {
    const client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: await h.userToken('alice'), maxRetries: 0 });
    const { data: stream, response } = await client.chat.completions
      .create({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'tell me a long story' }] })
      .withResponse();
    cutSession = response.headers.get('x-request-id')!;
    let text = '';
    let frames = 0;
    let raised: unknown;
    try {
      for await (const chunk of stream) {
        if (++frames === 30) pg.relay.cut(); // the database goes away mid-answer
        text += chunk.choices[0]?.delta.content ?? '';
      }
    } catch (err) {
      raised = err;
    }
    assert.ok(raised instanceof OpenAI.APIError, `the SDK raises an API error, not a hang or a silent end (got ${String(raised)})`);
    assert.equal(raised.code, 'recording_unavailable');
    assert.match(raised.message, /incomplete/);
    assert.match(raised.message, /Retry in a few seconds/);
    assert.equal((raised.error as { retry_after?: number }).retry_after, 5, 'the frame carries the retry hint the headers could not');
    assert.ok(text.length > 0, 'the answer had started');
    const upstream = h.model.received.at(-1)!;
    await until('the upstream stream to be closed', () => upstream.aborted);
  });

  test('requests refused meanwhile get 503 without a stack each; the outage is logged once as it starts and once as it ends', NO_HANG, async () => {
    const token = await h.userToken('alice');
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) => postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content: `try ${i}` }] })),
    );
    for (const refused of answers) {
      assert.equal(refused.status, 503);
      assert.equal(refused.headers.get('retry-after'), '5');
      assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'recording_unavailable');
    }
    const metrics = async () => (await fetch(`${h.url}/metrics`)).text();
    assert.match(await metrics(), /modelgate_store_up\{store="recording"\} 0/);

    pg.relay.restore();
    await until('the end of the outage to be logged', () => parse(logs).find((l) => l.msg === 'recording store available again')).catch((e) => { console.log(logs.filter((l) => !l.includes('"msg":"request"')).join('\n')); throw e; });
    const lines = parse(logs);
    const errors = lines.filter((l) => l.level === 'error');
    assert.deepEqual(
      errors.map((l) => l.msg),
      ['recording store unavailable: requests that need it are refused with 503 until it is back'],
      'one error line for the whole outage, not one per request',
    );
    assert.ok(!logs.some((l) => /"stack"|\n\s+at /.test(l)), 'no stack trace in any line');
    assert.equal(lines.filter((l) => l.msg === 'recording store available again').length, 1);
    assert.ok(lines.find((l) => l.msg === 'recording store available again')!.refused! >= 12, 'the closing line counts the refusals');
    const refusedLines = lines.filter((l) => l.msg === 'request' && l.code === 'recording_unavailable');
    assert.ok(refusedLines.length >= 12 && refusedLines.every((l) => l.level === 'info'), 'each refusal is in its own request line, by code');
    const text = await metrics();
    assert.match(text, /modelgate_store_outages_total\{store="recording"\} 1/);
    assert.match(text, /modelgate_store_up\{store="recording"\} 1/);
  });

  test('the cut session does not stay open: its end is retried and stored as incomplete, with what was recorded', NO_HANG, async () => {
    assert.ok(cutSession);
    const carol = await h.userToken('carol');
    const session = await until('the cut session to be closed', async () => {
      const shown = (await (await fetch(`${h.url}/v1/sessions/${cutSession}`, { headers: { authorization: `Bearer ${carol}` } })).json()) as {
        session?: { state: string; error_code?: string };
        events?: Array<{ kind: string; meta?: { reason?: string } }>;
      };
      return shown.session && shown.session.state !== 'open' ? shown : undefined;
    });
    assert.equal(session.session!.state, 'incomplete');
    const end = session.events!.find((e) => e.kind === 'session.end')!;
    assert.match(end.meta!.reason!, /could not be recorded/);
    assert.ok(session.events!.some((e) => e.kind === 'response.chunks'), `what was recorded before the cut is kept: ${session.events!.map((e) => e.kind).join(', ')}`);
  });
});

/** A filesystem of its own that the test can fill: a small tmpfs (needs root), else undefined. */
function smallFilesystem(dir: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Writes until the filesystem refuses (ENOSPC); returns the filler's path. */
async function fill(dir: string): Promise<string> {
  const path = join(dir, 'filler');
  const file = await open(path, 'w');
  const block = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) await file.write(block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await file.close().catch(() => {});
  }
  return path;
}

describe('the SQLite disk fills up during a stream', () => {
  let dir: string;
  let mounted = false;
  let h: Harness | undefined;
  const logs: string[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'modelgate-full-'));
    mounted = smallFilesystem(dir);
  });
  after(async () => {
    await h?.close().catch(() => {});
    if (mounted) execFileSync('umount', [dir]);
    await rm(dir, { recursive: true, force: true });
  });

  test('the Ollama client gets an error line with a retry hint; the session ends incomplete once there is room again', NO_HANG, async (t) => {
    if (!mounted) return t.skip('needs root to mount a small tmpfs');
    h = await startHarness({
      logs,
      model: { chunkDelayMs: 10, replyWords: 3_000 },
      configure: (input) => {
        input.storage = { driver: 'sqlite', sqlite: { path: join(dir, 'audit.db') } };
        input.recording = { auditor_groups: ['auditors'], commit_interval: '2ms', chunk_flush_interval: '10ms', chunk_bytes: '1kb' };
      },
    });
    const ollama = new Ollama({ host: h.url, headers: { authorization: `Bearer ${await h.userToken('alice')}` } });
    const stream = await ollama.chat({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'tell me a long story' }] });
    let text = '';
    let filler: string | undefined;
    let raised: unknown;
    try {
      for await (const part of stream) {
        if (!filler && part.message.content) filler = await fill(dir); // the disk is full from here on
        text += part.message.content;
      }
    } catch (err) {
      raised = err;
    }
    assert.ok(raised instanceof Error, `the client raises an error, not a hang or a silent end (got ${String(raised)})`);
    assert.match(raised.message, /could not record the rest of this response/);
    assert.match(raised.message, /Retry in a few seconds/);
    assert.match(raised.message, /\(recording_unavailable\)/);
    assert.ok(text.length > 0);
    const upstream = h.model.received.at(-1)!;
    await until('the upstream stream to be closed', () => upstream.aborted);
    assert.ok(
      parse(logs).some((l) => l.level === 'error' && l.msg.startsWith('recording store unavailable') && /full/i.test(JSON.stringify(l))),
      'the outage line names the cause: SQLITE_FULL',
    );

    const line = parse(logs).find((l) => l.msg === 'request' && l.path === '/api/chat')!;
    await rm(filler!); // room again
    const storage = h.gateway.services.config.storage;
    await h.close();
    h = undefined;
    const store = await openStore(storage);
    try {
      const session = await store.getSession(line.reqId!);
      assert.equal(session?.state, 'incomplete', 'closed, with what was recorded, not left open');
    } finally {
      await store.close();
    }
  });
});
