// `npm test`'s runner (test/run.mjs) stops a file at its timeout; what that
// file spawned (a gateway, a mock) must not outlive the run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A killed child whose parent is gone may linger as a zombie until reaped: dead all the same.
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

test('a file stopped at its timeout does not leave the processes it spawned running', () => {
  const dir = mkdtempSync(join(tmpdir(), 'modelgate-runner-'));
  const pidFile = join(dir, 'pid');
  const env: NodeJS.ProcessEnv = { ...process.env, LEFTOVER_PID_FILE: pidFile, MODELGATE_TEST_FILE_TIMEOUT_MS: '3000' };
  delete env.NODE_TEST_CONTEXT; // run as a top-level runner, not as a file of this one
  const run = spawnSync(process.execPath, ['test/run.mjs', 'test/runner/fixtures/spawns-then-hangs.ts'], { env, encoding: 'utf8', timeout: 60_000 });
  const pid = Number(readFileSync(pidFile, 'utf8'));
  try {
    assert.equal(run.status, 1, 'the timed-out file fails the run');
    assert.match(run.stdout, /tests: 0 passed, 1 failed/);
    assert.equal(alive(pid), false, `process ${pid}, spawned by the stopped file, is still running`);
  } finally {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
