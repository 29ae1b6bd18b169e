// The CLI as a user runs it: the compiled bin, real processes.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const BIN = fileURLToPath(new URL('../../bin/modelgate.js', import.meta.url));
const run = promisify(execFile);

async function modelgate(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('modelgate CLI', () => {
  test('--help on the program and on every command', async () => {
    const top = await modelgate(['--help']);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /Commands:[\s\S]*dev[\s\S]*gateway/);
    for (const command of ['dev', 'gateway', 'login', 'logout', 'whoami', 'token', 'connect', 'revoke-tokens', 'policy']) {
      const help = await modelgate([command, '--help']);
      assert.equal(help.code, 0, command);
      assert.match(help.stdout, new RegExp(`Usage: modelgate ${command}`));
      assert.match(help.stdout, /--help/);
    }
  });

  test('--config: the same option on every command that reads the configuration, defaulting to $MODELGATE_CONFIG', async () => {
    for (const command of ['gateway', 'agents', 'revoke-tokens', 'policy', 'sessions', 'usage', 'audit']) {
      const help = await modelgate([command, '--help'], { MODELGATE_CONFIG: '/etc/modelgate/prod.yaml' });
      assert.equal(help.code, 0, command);
      assert.match(help.stdout, /^ {2}-c, --config <file> +\S.* \(default: \/etc\/modelgate\/prod\.yaml\)$/m, `${command}: ${help.stdout}`);
    }
  });

  test('a configuration that does not validate: each command that loads it whole names the bad key and exits 78', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'modelgate-'));
    try {
      const file = join(dir, 'modelgate.yaml');
      await writeFile(file, 'identity:\n  issuers: []\nconnections: []\n');
      for (const args of [['gateway', '--check'], ['agents', 'list'], ['revoke-tokens', '--all']]) {
        const result = await modelgate([...args, '-c', file]);
        assert.equal(result.code, 78, `${args.join(' ')}: ${result.stderr}`);
        assert.match(result.stderr, /^modelgate: invalid configuration:\n {2}\S*modelgate\.yaml:2:12: identity\.issuers: configure at least one trusted OIDC issuer$/m, args.join(' '));
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('unknown commands and flags are usage errors (exit 2)', async () => {
    assert.equal((await modelgate(['frobnicate'])).code, 2);
    const bad = await modelgate(['gateway', '--nope']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--nope/);
  });

  test('gateway --check names the bad key and line, and exits 78', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'modelgate-'));
    try {
      const file = join(dir, 'modelgate.yaml');
      await writeFile(file, 'identity:\n  issuers: []\nconnections: []\n');
      const result = await modelgate(['gateway', '--config', file, '--check']);
      assert.equal(result.code, 78);
      assert.match(result.stderr, /modelgate\.yaml:2:12: identity\.issuers: configure at least one trusted OIDC issuer/);
      const example = await modelgate(['gateway', '--config', fileURLToPath(new URL('../../examples/modelgate.yaml', import.meta.url)), '--check'], {
        VLLM_API_KEY: 'x',
        TGI_KEY: 'y',
        SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T0/B0/x',
        MODELGATE_WEBHOOK_SECRET: 'example-webhook-secret-0123456789',
      });
      assert.equal(example.code, 0, example.stderr);
      assert.match(example.stdout, /configuration is valid/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('policy check validates a policy file and names the bad key; policy test shows decisions without calling a model', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'modelgate-policy-'));
    try {
      const good = join(dir, 'policy.yaml');
      await writeFile(good, [
        'guardrails:',
        '  patterns:',
        '    - name: ticket',
        '      regex: "TKT-[0-9]{6}"',
        '      max_length: 10',
        '  input:',
        '    - name: no-secrets',
        '      detect: [secrets]',
        '      action: block',
        '    - name: tickets',
        '      detect: [custom.ticket]',
        '      action: mask',
        '',
      ].join('\n'));
      const ok = await modelgate(['policy', 'check', good]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /policy is valid \(2 input rule/);

      const bad = join(dir, 'bad.yaml');
      await writeFile(bad, 'guardrails:\n  patterns:\n    - name: redos\n      regex: "(a+)+\\\\1"\n      max_length: 10\n');
      const refused = await modelgate(['policy', 'check', bad]);
      assert.equal(refused.code, 78);
      assert.match(refused.stderr, /bad\.yaml:4:\d+: guardrails\.patterns\[0\]\.regex: /);

      const config = join(dir, 'modelgate.yaml');
      await writeFile(config, [
        'identity:',
        '  issuers: [{ issuer: "https://idp.example.com", audience: modelgate }]',
        'connections:',
        '  - name: vllm',
        '    url: http://127.0.0.1:9',
        '    models: [{ name: llama }]',
        'guardrails:',
        '  input:',
        '    - { name: mask-mail, detect: [EMAIL], action: mask }',
        '',
      ].join('\n'));
      const tested = await modelgate(['policy', 'test', '--config', config, '--connection', 'vllm', '--prompt', 'write to ann@example.com', '--json']);
      assert.equal(tested.code, 0, tested.stderr);
      const result = JSON.parse(tested.stdout) as { verdict: string; decisions: Array<{ rule: string; span: { start: number; end: number } }>; forwarded: { messages: Array<{ content: string }> } };
      assert.equal(result.verdict, 'allow');
      assert.equal(result.decisions[0]!.rule, 'mask-mail');
      assert.deepEqual([result.decisions[0]!.span.start, result.decisions[0]!.span.end], [9, 24]);
      assert.equal(result.forwarded.messages[0]!.content, 'write to [EMAIL_1]');

      // AWS's documented example key passes secret detection on purpose, and policy test says so.
      const example = await modelgate(['policy', 'test', '--config', config, '--connection', 'vllm', '--prompt', 'use AKIAIOSFODNN7EXAMPLE for the demo']);
      assert.equal(example.code, 0, example.stderr);
      assert.match(example.stdout, /verdict: allow/);
      assert.match(example.stdout, /note: AKIAIOSFODNN7EXAMPLE is AWS's documented example access key ID; secret detection lets documented example keys through on purpose/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('modelgate dev paces the demo model like a real one, configurably', async () => {
    const { stdout: help } = await run(process.execPath, [BIN, 'dev', '--help']);
    assert.match(help, /--pace <duration>.*\(default: 30ms\)/);
    const refused = await run(process.execPath, [BIN, 'dev', '--pace', 'slowly', '--port', '0', '--idp-port', '0', '--model-port', '0']).then(
      () => assert.fail('an unreadable pace was accepted'),
      (err: { code: number; stderr: string }) => err,
    );
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /--pace takes a duration such as 30ms or 0/);
  });

  test('modelgate dev prints a curl line that returns a completion', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'modelgate-dev-'));
    const child = spawn(process.execPath, [BIN, 'dev', '--port', '0', '--idp-port', '0', '--model-port', '0'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let stdout = '';
      const curlLine = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
          const line = stdout.split('\n').find((l) => l.startsWith('curl '));
          if (line && stdout.includes('Ctrl-C')) resolve(line);
        });
        child.on('exit', (code) => reject(new Error(`modelgate dev exited with ${code}: ${stdout}`)));
      });
      assert.doesNotMatch(stdout, /\x1b\[/, 'no colour when stdout is not a TTY');
      const { stdout: answer } = await run('sh', ['-c', curlLine]);
      const completion = JSON.parse(answer) as { choices: Array<{ message: { content: string } }> };
      assert.match(completion.choices[0]!.message.content, /Hello, modelgate!/);

      const tokenFile = join(dir, '.modelgate', 'dev-token');
      assert.equal((await stat(tokenFile)).mode & 0o777, 0o600, 'the token file is private');

      // The Node snippet as pasted into a module (next to the repo's node_modules, as in a project that installed openai).
      const lines = stdout.split('\n');
      const from = lines.findIndex((l) => l.includes('OpenAI SDK (Node):'));
      const snippet = lines.slice(from + 1, lines.indexOf('', from)).map((l) => l.trim()).join('\n');
      assert.match(snippet, /^import fs from 'node:fs';/);
      const script = fileURLToPath(new URL(`../../.dev-snippet-${process.pid}.mjs`, import.meta.url));
      await writeFile(script, snippet);
      try {
        const { stdout: streamed } = await run(process.execPath, [script], { cwd: dir });
        assert.match(streamed, /Hello!/, 'the snippet streams the demo reply');
      } finally {
        await rm(script, { force: true });
      }

      // `sessions` and `audit` find the dev state without a config file.
      let listed = { stdout: '', stderr: '' };
      for (let i = 0; i < 40 && !listed.stdout.includes('demo-chat'); i++) {
        listed = await run(process.execPath, [BIN, 'sessions', 'list'], { cwd: dir });
        if (!listed.stdout.includes('demo-chat')) await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(listed.stdout, /demo-chat/, `the curl call's session is listed: ${listed.stdout}`);
      assert.match(listed.stderr, /reading the modelgate dev state in \.modelgate\//);
      const verified = await run(process.execPath, [BIN, 'audit', 'verify'], { cwd: dir });
      assert.match(verified.stdout + verified.stderr, /ok|verified|intact/i);

      // The CLI commands it prints run as pasted, though `modelgate` is not on the PATH of a fresh clone.
      const whoamiLine = lines.find((l) => l.includes(' whoami  ·'))!.trim();
      const cli = whoamiLine.slice(0, whoamiLine.indexOf(' whoami'));
      assert.notEqual(cli, 'modelgate');
      const { stdout: help } = await run('sh', ['-c', `${cli} --help`], { cwd: dir });
      assert.match(help, /Commands:/);
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      await rm(dir, { recursive: true, force: true });
    }
  });
});
