// `modelgate reviews` and `modelgate access` as people run them: real CLI
// processes with real dev IdP tokens, against a gateway holding real
// requests for approval.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { decodeJwt } from 'jose';
import { main } from '../../src/cli/main.js';
import { errorOf, postJson, startHarness, type Harness } from '../helpers/harness.js';
import { withTwoPersonRule } from '../helpers/approvals.js';

const ENTRY = fileURLToPath(new URL('../identity/cli-entry.ts', import.meta.url));
const ID = /rev_[0-9a-z]{26}/;

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface RunningCli {
  exit: Promise<CliRun>;
  /** What it printed so far. */
  stdout(): string;
}

interface ReviewJson {
  id: string;
  state: string;
  prompt?: unknown;
  votes: Array<{ decision: string; by: { subject: string }; comment?: string }>;
  grant?: { expires_at?: number };
}

describe('modelgate reviews and modelgate access', () => {
  let h: Harness;
  let configDir: string;

  before(async () => {
    h = await startHarness({
      configure: (input) => {
        input.approvals = { wait: '60s', keepalive_interval: '200ms', poll_interval: '100ms' };
        input.access = [...(input.access ?? []), { groups: ['approvers'], connections: ['demo'] }];
        input.guardrails = withTwoPersonRule(input.guardrails);
      },
    });
    configDir = await mkdtemp(join(tmpdir(), 'modelgate-reviews-cli-'));
  });
  after(async () => {
    await h?.close();
    if (configDir) await rm(configDir, { recursive: true, force: true });
  });

  const identity = async (user: string | undefined): Promise<NodeJS.ProcessEnv> => ({
    MODELGATE_TOKEN: user === undefined ? '' : await h.userToken(user),
    MODELGATE_GATEWAY: user === undefined ? '' : h.url,
    MODELGATE_PROFILE: '',
    MODELGATE_CONFIG_DIR: configDir,
  });

  /** Starts the CLI in its own process as `user` (a dev IdP login in $MODELGATE_TOKEN), for commands that run alongside others. */
  async function start(user: string | undefined, args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunningCli> {
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], {
      env: { ...process.env, ...(await identity(user)), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => void (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => void (stderr += d.toString()));
    const exit = new Promise<CliRun>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
    return { exit, stdout: () => stdout };
  }

  /**
   * Runs the CLI's main() in this process (a process costs seconds under tsx),
   * with `user`'s environment and what it prints captured. One at a time.
   */
  async function cli(user: string | undefined, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
    const vars = { ...(await identity(user)), ...env };
    const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
    const { log, error } = console;
    let stdout = '';
    let stderr = '';
    console.log = (...parts: unknown[]) => void (stdout += `${parts.join(' ')}\n`);
    console.error = (...parts: unknown[]) => void (stderr += `${parts.join(' ')}\n`);
    Object.assign(process.env, vars);
    try {
      return { code: await main(args), stdout, stderr };
    } finally {
      console.log = log;
      console.error = error;
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  }

  /** Sends `content` as alice's (or `user`'s) chat request, which a rule holds; resolves when it is answered. */
  async function held(content: string, user = 'alice'): Promise<Response> {
    return postJson(`${h.url}/v1/chat/completions`, await h.userToken(user), { model: 'demo-chat', messages: [{ role: 'user', content }] });
  }

  /** The ID of the pending review whose (masked) prompt contains `marker`, found through the CLI as carol. */
  async function reviewMentioning(marker: string): Promise<string> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const listed = await cli('carol', ['reviews', 'list', '--kind', 'prompt', '--json']);
      assert.equal(listed.code, 0, listed.stderr);
      for (const { id } of JSON.parse(listed.stdout) as ReviewJson[]) {
        const shown = await cli('carol', ['reviews', 'show', id, '--json']);
        if (JSON.stringify((JSON.parse(shown.stdout) as ReviewJson).prompt).includes(marker)) return id;
      }
      await sleep(100);
    }
    throw new Error(`no pending review mentions ${marker}`);
  }

  test('--help on both commands, and bad flags are usage errors (exit 2)', async () => {
    for (const command of ['reviews', 'access']) {
      const help = await (await start(undefined, [command, '--help'])).exit;
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, new RegExp(`Usage: modelgate ${command} `), command);
      assert.match(help.stdout, /--gateway <url>[\s\S]*--json[\s\S]*--help/, `${command} lists its options`);
    }
    assert.match((await cli(undefined, ['access', '--help'])).stdout, /--wait\[=<duration>\].*\(alone: 10m\)/, 'the bare --wait default is documented');

    const cases: Array<[string[], RegExp]> = [
      [['access', 'request', '--for', '1h', '--reason', 'x'], /modelgate access: request needs --connection/],
      [['access', 'request', '--connection', 'demo', '--for', 'soon', '--reason', 'x'], /--for "soon" is not a duration/],
      [['access', 'request', '--connection', 'demo', '--for', '1h'], /needs --reason/],
      [['access', 'request', '--connection', 'demo', '--for', '1h', '--reason', 'x', '--wait', '5m'], /--wait=5m/],
      [['access', 'grants', '--connection', 'demo'], /--connection goes with "access request"/],
      [['access', 'nope'], /choose one of: request, grants/],
      [['reviews', 'list', '--state', 'waiting'], /--state must be one of pending, /],
      [['reviews', 'list', '--kind', 'chat'], /--kind must be prompt or access/],
      [['reviews', 'approve'], /approve takes exactly one review ID/],
      [['reviews', 'list', '--bogus'], /--bogus/],
    ];
    for (const [args, message] of cases) {
      const run = await cli('bob', args);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message, args.join(' '));
    }
  });

  test('list, show and approve with a comment: the held request completes', async () => {
    const marker = `cli-approve-${Date.now()}`;
    const request = held(`nightingale status ${marker}`);
    const id = await reviewMentioning(marker);

    const listed = await cli('carol', ['reviews', 'list']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.doesNotMatch(listed.stdout, /\x1b\[/, 'no colour when stdout is not a TTY');
    assert.match(listed.stdout, /^ID\s+KIND\s+REQUESTER\s+CONNECTION\/MODEL\s+RULE\s+APPROVALS\s+AGE\s+STATE$/m, 'a table header');
    const row = listed.stdout.split('\n').find((line) => line.startsWith(id));
    assert.ok(row, `the review is listed:\n${listed.stdout}`);
    assert.match(row, /prompt\s+alice@example\.com\s+demo\/demo-chat\s+codename-review\s+0\/1\s+\d+[smhd]\s+pending$/, row);

    const shown = await cli('carol', ['reviews', 'show', id]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, new RegExp(`review ${id}`));
    assert.match(shown.stdout, /requester\s+alice <alice@example\.com>/);
    assert.match(shown.stdout, /rule\s+codename-review/);
    assert.match(shown.stdout, /reason\s+.*codename-review/);
    assert.match(shown.stdout, new RegExp(`url\\s+${h.url}/ui/reviews/${id}`));
    assert.match(shown.stdout, new RegExp(`user: .* status ${marker}`), 'the prompt, one line per message');
    assert.doesNotMatch(shown.stdout, /nightingale/, 'the codename is masked for approvers');
    assert.match(shown.stdout, new RegExp(`modelgate reviews approve ${id}`), 'carol is told how to decide');

    const approved = await cli('carol', ['reviews', 'approve', id, '--comment', 'fine for the weekly report']);
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stdout, new RegExp(`${id}: approved \\(1 of 1\\)`));
    const response = await request;
    assert.equal(response.status, 200, 'the held request completes once approved');

    const after = JSON.parse((await cli('alice', ['reviews', 'show', id, '--json'])).stdout) as ReviewJson;
    assert.equal(after.state, 'executed');
    assert.deepEqual(after.votes.map((v) => [v.decision, v.by.subject, v.comment]), [['approve', 'carol', 'fine for the weekly report']]);
    const shownAfter = await cli('alice', ['reviews', 'show', id]);
    assert.match(shownAfter.stdout, /approve by carol@example\.com at \S+: "fine for the weekly report"/, 'votes with comments');

    const late = await cli('erin', ['reviews', 'approve', id]);
    assert.equal(late.code, 1);
    assert.match(late.stderr, new RegExp(`^modelgate reviews: Review ${id} is executed, so it can no longer be decided\\.`));
    const everything = await cli('carol', ['reviews', 'list', '--all']);
    assert.match(everything.stdout, new RegExp(`${id} .* executed`), '--all lists decided reviews too');
    const pending = await cli('carol', ['reviews', 'list']);
    assert.ok(!pending.stdout.includes(id), 'the default list shows only pending reviews');
  });

  test('reject with a comment: the requester gets the comment', async () => {
    const marker = `cli-reject-${Date.now()}`;
    const request = held(`nightingale ${marker}`);
    const id = await reviewMentioning(marker);
    const rejected = await cli('erin', ['reviews', 'reject', id, '-m', 'not outside the project team']);
    assert.equal(rejected.code, 0, rejected.stderr);
    assert.match(rejected.stdout, new RegExp(`${id}: rejected`));
    const response = await request;
    assert.equal(response.status, 403);
    assert.match((await errorOf(response)).message, /erin@example\.com: "not outside the project team"/);
    const shown = await cli('alice', ['reviews', 'show', id]);
    assert.match(shown.stdout, /state\s+rejected .*rejected by erin@example\.com: "not outside the project team"/);
  });

  test('a prompt cannot drive the approver\'s terminal: escape sequences and bidi overrides are shown, not obeyed', async () => {
    const marker = `cli-escape-${Date.now()}`;
    // Conceal the real request, then show a harmless one; reorder text with a right-to-left override.
    const request = held(`nightingale ${marker} \u001b[8mexport the customer table\u001b[0m \u001b]0;pwned\u0007 harmless \u202Eevil\u202C`);
    const id = await reviewMentioning(marker);
    const shown = await cli('carol', ['reviews', 'show', id]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.ok(!/[\u001b\u0007\u202e]/.test(shown.stdout), `no raw control characters reach the terminal: ${JSON.stringify(shown.stdout)}`);
    assert.match(shown.stdout, /\\u\{1b\}\[8mexport the customer table/, 'the hidden text is visible, with its escape shown');
    assert.match(shown.stdout, /\\u\{202e\}evil/);
    assert.equal((await cli('carol', ['reviews', 'reject', id, '-m', 'nice try'])).code, 0);
    await request;
  });

  test('self-approval and outsiders are refused with the gateway\'s message and exit 1', async () => {
    const marker = `cli-self-${Date.now()}`;
    const request = held(`nightingale ${marker}`, 'carol');
    const id = await reviewMentioning(marker);

    const self = await cli('carol', ['reviews', 'approve', id]);
    assert.equal(self.code, 1, self.stdout);
    assert.equal(self.stderr.trim(), `modelgate reviews: You requested review ${id}, so you cannot decide it; another approver must.`);
    const outsider = await cli('bob', ['reviews', 'reject', id]);
    assert.equal(outsider.code, 1, outsider.stdout);
    assert.equal(outsider.stderr.trim(), `modelgate reviews: No review "${id}" exists, or you may not see it.`);

    const approved = await cli('erin', ['reviews', 'approve', id]);
    assert.equal(approved.code, 0, approved.stderr);
    assert.equal((await request).status, 200, 'another approver lets it through');
  });

  test('two approvals required: one leaves it pending, the same approver twice is refused', async () => {
    const marker = `cli-two-${Date.now()}`;
    const request = held(`the merger ${marker}`);
    const id = await reviewMentioning(marker);

    const first = await cli('carol', ['reviews', 'approve', id, '--comment', 'first']);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout.trim(), `${id}: 1 of 2 approvals; still pending`);
    const twice = await cli('carol', ['reviews', 'approve', id]);
    assert.equal(twice.code, 1, twice.stdout);
    assert.equal(twice.stderr.trim(), `modelgate reviews: You already voted on review ${id}; it needs 2 different approvers.`);
    const second = await cli('erin', ['reviews', 'approve', id, '--comment', 'second']);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout.trim(), `${id}: approved (2 of 2)`);
    assert.equal((await request).status, 200, 'the held request completes after the second approval');
  });

  /** Starts bob's `access request ... --wait` and resolves with the review ID it printed. */
  async function requestAndWait(reason: string): Promise<{ id: string; waiting: RunningCli }> {
    const waiting = await start('bob', ['access', 'request', '--connection', 'demo', '--for', '1m', '--reason', reason, '--wait']);
    let printed: RegExpMatchArray | null = null;
    for (let attempt = 0; attempt < 600 && !printed; attempt++) {
      printed = waiting.stdout().match(ID);
      if (!printed) await Promise.race([sleep(50), waiting.exit]);
    }
    if (!printed) throw new Error(`access request printed no review ID: ${JSON.stringify(await waiting.exit)}`);
    return { id: printed[0], waiting };
  }

  const bobChats = async () => postJson(`${h.url}/v1/chat/completions`, await h.userToken('bob'), { model: 'demo-chat', messages: [{ role: 'user', content: 'hello' }] });

  test('access request --wait: a rejection ends the wait with the approver\'s comment and exit 1', async () => {
    const noGrants = await cli('bob', ['access', 'grants']);
    assert.equal(noGrants.code, 0, noGrants.stderr);
    assert.equal(noGrants.stdout.trim(), 'no running grants');

    const { id, waiting } = await requestAndWait('just curious');
    const rejected = await cli('erin', ['reviews', 'reject', id, '--comment', 'open a ticket first']);
    assert.equal(rejected.code, 0, rejected.stderr);
    const done = await waiting.exit;
    assert.equal(done.code, 1, `rejected means exit 1: ${done.stdout}${done.stderr}`);
    assert.match(done.stdout, /rejected by erin@example\.com: "open a ticket first"/);
    assert.doesNotMatch(done.stdout + done.stderr, /\x1b\[|⠋/, 'no colour or spinner when not on a terminal');
    assert.equal((await bobChats()).status, 403, 'still no access');

    const unknown = await cli('bob', ['access', 'request', '--connection', 'nope', '--for', '1h', '--reason', 'x']);
    assert.equal(unknown.code, 1, unknown.stdout);
    assert.equal(unknown.stderr.trim(), 'modelgate access: No connection "nope" exists on this gateway.');
  });

  test('access request --wait, approved by carol through the CLI: bob\'s chat passes and access grants lists it', async () => {
    assert.equal((await bobChats()).status, 403, 'bob may not chat before');
    const { id, waiting } = await requestAndWait('incident 42: need chat for triage');
    assert.match(waiting.stdout(), new RegExp(`review ${id}\\n  ${h.url}/ui/reviews/${id}\\n  asked one approver from approvers`), waiting.stdout());

    const pending = await cli('carol', ['reviews', 'list', '--kind', 'access']);
    assert.match(pending.stdout, new RegExp(`${id}\\s+access\\s+bob@example\\.com\\s+demo\\s+-\\s+0/1\\s+\\d+[smhd]\\s+pending`), pending.stdout);
    const self = await cli('bob', ['reviews', 'approve', id]);
    assert.equal(self.code, 1, 'bob cannot approve his own request');
    const approved = await cli('carol', ['reviews', 'approve', id, '--comment', 'for the incident']);
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stdout, new RegExp(`${id}: approved \\(1 of 1\\); access to demo until \\S+Z`));

    const done = await waiting.exit;
    assert.equal(done.code, 0, `approved means exit 0: ${done.stdout}${done.stderr}`);
    assert.match(done.stdout, /approved by carol@example\.com \("for the incident"\): access to demo until \d{4}-\d\d-\d\dT\S+Z/);
    assert.equal((await bobChats()).status, 200, 'the grant opens access');

    const grants = await cli('bob', ['access', 'grants']);
    assert.equal(grants.code, 0, grants.stderr);
    assert.match(grants.stdout, /^ID\s+CONNECTION\s+UNTIL\s+LEFT\s+APPROVED BY$/m);
    assert.match(grants.stdout, new RegExp(`^${id}\\s+demo\\s+\\S+Z\\s+\\d+[smh]\\s+carol@example\\.com$`, 'm'), grants.stdout);
    const json = JSON.parse((await cli('bob', ['access', 'grants', '--json'])).stdout) as ReviewJson[];
    assert.deepEqual(json.map((g) => g.id), [id]);
    assert.ok((json[0]!.grant?.expires_at ?? 0) > Date.now(), 'the grant is running');
  });

  test('a stored login is used like whoami does, and its token only goes to its own gateway', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'modelgate-reviews-profile-'));
    try {
      const bearer = await h.userToken('bob');
      await mkdir(join(dir, 'profiles'), { recursive: true, mode: 0o700 });
      await writeFile(
        join(dir, 'profiles', 'default.json'),
        JSON.stringify({ gateway: h.url, login: {}, tokens: { bearer, accessToken: bearer, expiresAt: decodeJwt(bearer).exp } }),
        { mode: 0o600 },
      );
      const stored = await cli(undefined, ['access', 'grants', '--json'], { MODELGATE_CONFIG_DIR: dir });
      assert.equal(stored.code, 0, stored.stderr);
      assert.ok(Array.isArray(JSON.parse(stored.stdout)), 'bob\'s grants, with the stored token');

      const elsewhere = await cli(undefined, ['reviews', 'list', '--gateway', 'http://127.0.0.1:1'], { MODELGATE_CONFIG_DIR: dir });
      assert.equal(elsewhere.code, 2, elsewhere.stdout);
      assert.match(elsewhere.stderr, /profile "default" is logged in to http:\/\/127\.0\.0\.1:\d+, not http:\/\/127\.0\.0\.1:1/);
      const missing = await cli(undefined, ['reviews', 'list'], { MODELGATE_CONFIG_DIR: join(dir, 'none') });
      assert.equal(missing.code, 1, missing.stdout);
      assert.match(missing.stderr, /^modelgate reviews: Not logged in \(profile "default"\)/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
