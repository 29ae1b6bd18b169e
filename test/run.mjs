#!/usr/bin/env node
// `npm test`'s runner: every test/**/*.test.ts through node:test, two files
// at a time. A file still running at its timeout is stopped and fails,
// whether a test hangs or an open handle keeps it alive, and the tests it was
// still running are named (test/still-running.mjs); the whole run has a
// timeout of its own. A hang fails CI instead of stalling it. Ends with the
// count per folder and a plain total line.
//   MODELGATE_TEST_FILE_TIMEOUT_MS (default 300000), MODELGATE_TEST_TIMEOUT_MS (default 1800000)
//   Arguments, if any, replace the file list: node test/run.mjs test/mask
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const fileTimeout = Number(process.env.MODELGATE_TEST_FILE_TIMEOUT_MS ?? 300_000);
const runTimeout = Number(process.env.MODELGATE_TEST_TIMEOUT_MS ?? 1_800_000);

function testFiles(path) {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path, { withFileTypes: true })
    .flatMap((entry) => (entry.isDirectory() ? testFiles(join(path, entry.name)) : entry.name.endsWith('.test.ts') ? [join(path, entry.name)] : []))
    .sort();
}

const files = (process.argv.length > 2 ? process.argv.slice(2) : ['test']).flatMap(testFiles);
const scratch = mkdtempSync(join(tmpdir(), 'modelgate-test-run-'));
const countsFile = join(scratch, 'counts.json');

const child = spawn(
  process.execPath,
  [
    '--import', 'tsx', '--test', '--test-concurrency=2', `--test-timeout=${fileTimeout}`,
    '--test-reporter=tap', '--test-reporter-destination=stdout',
    '--test-reporter=./test/folder-counts.mjs', `--test-reporter-destination=${countsFile}`,
    '--test-reporter=./test/still-running.mjs', '--test-reporter-destination=stderr',
    ...files,
  ],
  { stdio: 'inherit', detached: true },
);

/** The processes of a group, as "pid command" lines (Linux /proc; empty elsewhere). */
function groupMembers(pgid) {
  const members = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the command's closing parenthesis: state, ppid, pgrp.
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === pgid && state !== 'Z') members.push(`${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim()}`);
    } catch {
      // Gone meanwhile, or no /proc.
    }
  }
  return members;
}

/** SIGKILLs every process still in the group; returns what was running. */
function stopProcessGroup(pgid) {
  const members = groupMembers(pgid);
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // Nothing left in the group.
  }
  return members;
}

let timedOut = false;
const timer = setTimeout(() => {
  timedOut = true;
  console.error(`\nnpm test: the run took longer than ${runTimeout / 1000} s (MODELGATE_TEST_TIMEOUT_MS); stopping it.`);
  stopProcessGroup(child.pid);
}, runTimeout);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));

child.on('exit', (code, signal) => {
  clearTimeout(timer);
  // A file stopped at its timeout leaves what it spawned (gateways, mocks)
  // running; they share the run's process group, so end them with it.
  const leftovers = stopProcessGroup(child.pid);
  if (leftovers.length > 0) console.error(`npm test: stopped ${leftovers.length} process(es) the test files left running:\n  ${leftovers.join('\n  ')}`);
  let folders = {};
  try {
    folders = JSON.parse(readFileSync(countsFile, 'utf8'));
  } catch {
    // No counts: the run was stopped before the reporter finished.
  }
  rmSync(scratch, { recursive: true, force: true });
  const total = { passed: 0, failed: 0, skipped: 0 };
  console.log('\n# tests by folder');
  for (const [folder, counts] of Object.entries(folders).sort(([a], [b]) => a.localeCompare(b))) {
    console.log(`#   ${folder.padEnd(12)} ${String(counts.passed).padStart(4)} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
    for (const key of Object.keys(total)) total[key] += counts[key];
  }
  console.log(`tests: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
  process.exitCode = timedOut ? 1 : (code ?? (signal ? 1 : 0));
});
