// A real gateway process killed (SIGKILL) in the middle of a stream: no
// chance to end its session. The next gateway to start on the same store
// finds the session of the dead process still `open`, and closes it as
// `incomplete`, keeping what was recorded before the kill.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ConfigInput } from '../../src/config/schema.js';
import { startDemoModel, type DemoModel } from '../../src/dev/demo-model.js';
import { devConfigInput, DEV_AUDIENCE } from '../../src/dev/dev-config.js';
import { startDevIdp, type DevIdp } from '../../src/dev/idp.js';
import { postJson } from '../helpers/harness.js';

const CHILD = fileURLToPath(new URL('../usage/gateway-child.ts', import.meta.url));

/** Starts a gateway process on `input`; resolves with its URL once it listens. */
async function startGatewayProcess(input: ConfigInput): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
    env: { ...process.env, MODELGATE_CHILD_CONFIG: JSON.stringify(input) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the gateway process exited with ${code}`)));
  });
  return { child, url: (JSON.parse(line) as { url: string }).url };
}

const exited = (child: ChildProcess): Promise<unknown> => (child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', r)));

let model: DemoModel;
let idp: DevIdp;
let dir: string;
const children: ChildProcess[] = [];

before(async () => {
  model = await startDemoModel({ apiKey: 'demo-upstream-key', chunkDelayMs: 10, replyWords: 3_000 });
  idp = await startDevIdp({ audience: DEV_AUDIENCE });
  dir = await mkdtemp(join(tmpdir(), 'modelgate-crash-'));
});
after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(children.map(exited));
  await Promise.all([model.close(), idp.close()]);
  await rm(dir, { recursive: true, force: true });
});

test('a gateway killed with SIGKILL mid-stream: after a restart its session is incomplete, with what was recorded', { timeout: 120_000 }, async () => {
  const input = devConfigInput({ host: '127.0.0.1', port: 0, issuer: idp.issuer, modelUrl: model.url, dataDir: dir }) as ConfigInput;
  input.recording = { ...input.recording, auditor_groups: ['auditors'], commit_interval: '2ms', chunk_flush_interval: '10ms', chunk_bytes: '1kb' };
  const alice = (await idp.loginAs('alice')).accessToken;
  const carol = (await idp.loginAs('carol')).accessToken;

  const first = await startGatewayProcess(input);
  children.push(first.child);
  const response = await postJson(`${first.url}/v1/chat/completions`, alice, { model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'a long story' }] });
  assert.equal(response.status, 200);
  const id = response.headers.get('x-request-id')!;
  const reader = response.body!.getReader();
  const show = async (url: string) =>
    (await (await fetch(`${url}/v1/sessions/${id}`, { headers: { authorization: `Bearer ${carol}` } })).json()) as {
      session?: { state: string };
      events?: Array<{ kind: string; meta?: { reason?: string } }>;
    };
  // Read until part of the answer is on record, then kill the process while it streams.
  for (;;) {
    await reader.read();
    const shown = await show(first.url);
    if (shown.events?.some((e) => e.kind === 'response.chunks')) {
      assert.equal(shown.session?.state, 'open');
      break;
    }
  }
  first.child.kill('SIGKILL');
  await exited(first.child);
  // Read what was buffered until the dead connection errors (or ends).
  try {
    while (!(await reader.read()).done);
  } catch {
    // the connection died with the process
  }

  const second = await startGatewayProcess(input);
  children.push(second.child);
  const shown = await show(second.url);
  assert.equal(shown.session?.state, 'incomplete', 'closed by the restarted gateway, not left open');
  const end = shown.events!.find((e) => e.kind === 'session.end')!;
  assert.match(end.meta!.reason!, /stopped before the session ended/);
  assert.ok(shown.events!.some((e) => e.kind === 'response.chunks'), 'what was recorded before the kill is kept');
  second.child.kill('SIGTERM');
  await exited(second.child);
});
