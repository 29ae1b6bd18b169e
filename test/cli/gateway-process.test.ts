// The production entry point as a supervisor sees it: the compiled bin in a
// real process, with its exit code and its stderr.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/modelgate.js', import.meta.url));

/** Starts `modelgate gateway`, resolves with its stdout once it listens, and stops it. */
async function runUntilListening(config: string, cwd: string, whileRunning?: () => Promise<void>): Promise<string> {
  const child = spawn(process.execPath, [BIN, 'gateway', '--config', config], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.includes('"gateway listening"')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`the gateway exited with ${code}: ${stderr}${stdout}`)));
    });
    await whileRunning?.();
  } finally {
    child.kill('SIGTERM');
    if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
  }
  return stdout;
}

const modeOf = async (path: string) => `0${((await stat(path)).mode & 0o777).toString(8)}`;

/** Runs `modelgate gateway` until it exits (or is killed after `killAfterMs`). */
function gatewayProcess(config: string, cwd: string, killAfterMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, 'gateway', '--config', config], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

/** The smallest valid configuration; state lands in `.modelgate/` under the process's working directory. */
function minimalConfig(port: number): string {
  return [
    'server:',
    `  port: ${port}`,
    'identity:',
    '  issuers: [{ issuer: "https://idp.example.com", audience: modelgate }]',
    'connections:',
    '  - name: vllm',
    '    url: http://127.0.0.1:9',
    '    models: [{ name: llama }]',
    '',
  ].join('\n');
}

describe('modelgate gateway as a process', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'modelgate-process-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('a port already in use: exit non-zero at once with a one-line message', async () => {
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as { port: number }).port;
    try {
      const config = join(dir, 'taken.yaml');
      await writeFile(config, minimalConfig(port));
      const result = await gatewayProcess(config, dir);
      assert.equal(result.code, 69, `exit code (null means it kept running and was killed): ${result.stderr}`);
      const lines = result.stderr.trim().split('\n');
      assert.equal(lines.length, 1, result.stderr);
      assert.match(lines[0]!, new RegExp(`^modelgate: cannot listen on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\)`));
    } finally {
      holder.close();
    }
  });

  test('state is created private (directory 0700, files 0600), and state made readable later is reported at start-up', async () => {
    const cwd = await mkdtemp(join(dir, 'state-'));
    const config = join(cwd, 'modelgate.yaml');
    await writeFile(config, minimalConfig(0).replace('audience: modelgate }]', 'audience: modelgate }]\n  state: { store: sqlite, path: .modelgate/identity.db }'));
    const state = join(cwd, '.modelgate');
    const first = await runUntilListening(config, cwd, async () => {
      // While it runs: a clean stop checkpoints and removes the -wal files.
      assert.equal(await modeOf(state), '0700');
      for (const file of ['modelgate.db', 'modelgate.db-wal', 'identity.db', 'identity.db-wal']) assert.equal(await modeOf(join(state, file)), '0600', file);
    });
    assert.doesNotMatch(first, /readable by other users/);

    await chmod(state, 0o755);
    await chmod(join(state, 'identity.db'), 0o644);
    const second = await runUntilListening(config, cwd);
    const warnings = second.split('\n').filter((l) => l.includes('readable by other users')).map((l) => JSON.parse(l) as { level: string; path: string; mode: string });
    const named = warnings.map((w) => [w.level, w.path, w.mode]);
    assert.deepEqual(named.filter(([, path]) => path === '.modelgate' || path === '.modelgate/identity.db').sort(), [
      ['warn', '.modelgate', '0755'],
      ['warn', '.modelgate/identity.db', '0644'],
    ]);
    // SQLite gives -wal/-shm the database's mode, so they are named too when they exist at start-up; nothing else is.
    assert.deepEqual(named.filter(([, path]) => !/^\.modelgate(?:\/identity\.db(?:-wal|-shm)?)?$/.test(path!)), []);
  });
});
