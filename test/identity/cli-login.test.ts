// `modelgate login`, `token`, `whoami` and `logout` against the real
// development OpenID provider: the device flow with a scripted person
// approving the code, the PKCE loopback flow, silent refresh on expiry
// (also when several processes refresh at once), and revocation at logout.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decodeJwt } from 'jose';
import { runCommand, type Command } from '../../src/cli/command.js';
import { CredentialStore } from '../../src/cli/credential-store.js';
import { logoutCommand } from '../../src/cli/login.js';
import { tokenCommand } from '../../src/cli/token.js';
import { whoamiCommand } from '../../src/cli/whoami.js';
import { login, refreshTokens } from '../../src/cli/oauth-login.js';
import { TokenSource } from '../../src/cli/token-source.js';
import { fetchGatewayDiscovery } from '../../src/cli/oauth-login.js';
import { errorOf, postJson, startHarness, type Harness } from '../helpers/harness.js';

const ENTRY = fileURLToPath(new URL('./cli-entry.ts', import.meta.url));
const chat = { model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] };

interface RunningCli {
  /** Resolves with the first stderr/stdout text matching `pattern`. */
  waitFor(pattern: RegExp): Promise<RegExpMatchArray>;
  exit: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

function runCli(args: string[], env: NodeJS.ProcessEnv): RunningCli {
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], {
    env: { ...process.env, NO_COLOR: '1', BROWSER: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const watchers: Array<{ pattern: RegExp; resolve: (m: RegExpMatchArray) => void }> = [];
  const check = () => {
    for (const watcher of [...watchers]) {
      const match = (stderr + stdout).match(watcher.pattern);
      if (match) {
        watchers.splice(watchers.indexOf(watcher), 1);
        watcher.resolve(match);
      }
    }
  };
  child.stdout.on('data', (d: Buffer) => ((stdout += d.toString()), check()));
  child.stderr.on('data', (d: Buffer) => ((stderr += d.toString()), check()));
  const exit = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
  return {
    exit,
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
        watchers.push({ pattern, resolve });
        check();
        void exit.then(({ code }) => reject(new Error(`CLI exited (${code}) before printing ${pattern}:\n${stdout}\n${stderr}`)));
      }),
  };
}

/** Runs a command in this process (a spawn costs seconds), capturing what it prints. */
async function runInProcess(command: Command, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const { log, error } = console;
  console.log = (...parts: unknown[]) => void (stdout += `${parts.join(' ')}\n`);
  console.error = (...parts: unknown[]) => void (stderr += `${parts.join(' ')}\n`);
  try {
    return { code: await runCommand(command, args), stdout, stderr };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/** A person signing in in the browser the CLI opened: the IdP's pages, then back to the loopback callback. */
function personInBrowser(h: Harness, user: string) {
  return {
    showDeviceCode() {
      throw new Error('expected the browser flow');
    },
    async openBrowser(url: string) {
      const callback = await h.idp.completeAuthorization(url, user);
      await (await fetch(callback)).text();
    },
  };
}

describe('CLI login against the development OpenID provider', () => {
  let h: Harness;
  let dir: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    h = await startHarness({
      idp: { accessTokenTtlSeconds: 2 },
      configure(input) {
        // Expired means expired: no leeway, so the refresh path is really taken.
        input.identity!.clock_skew = '0s';
      },
    });
    dir = await mkdtemp(join(tmpdir(), 'modelgate-cli-'));
    env = { MODELGATE_CONFIG_DIR: dir };
    // For the commands run in this process.
    process.env.MODELGATE_CONFIG_DIR = dir;
    process.env.NO_COLOR = '1';
  });
  after(async () => {
    await h.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('the gateway publishes what the CLI needs at /.well-known/modelgate', async () => {
    const discovery = (await (await fetch(`${h.url}/.well-known/modelgate`)).json()) as Record<string, any>;
    assert.equal(discovery.gateway, h.url);
    assert.equal(discovery.openai_base_url, `${h.url}/v1`);
    assert.equal(discovery.login.issuer, h.idp.issuer);
    assert.equal(discovery.login.client_id, 'modelgate-cli');
    assert.ok(discovery.login.scopes.includes('offline_access'));
    assert.equal(discovery.jwks_uri, `${h.url}/.well-known/jwks.json`);
  });

  test('device flow end to end: the CLI shows a code, a person approves it, tokens are stored 0600', async () => {
    const cli = runCli(['login', '--gateway', h.url, '--device'], env);
    const [, userCode] = await cli.waitFor(/enter the code ([A-Z]{4}-[A-Z]{4})/);
    await h.idp.approveDevice(userCode!, 'alice');
    const { code, stderr } = await cli.exit;
    assert.equal(code, 0, stderr);
    assert.match(stderr, /Signed in to/);

    const profiles = join(dir, 'profiles');
    assert.equal((await stat(profiles)).mode & 0o777, 0o700);
    assert.equal((await stat(join(profiles, 'default.json'))).mode & 0o777, 0o600);
    assert.deepEqual((await readdir(profiles)).filter((f) => !f.endsWith('.json')), [], 'no temporary or lock files left');
    const stored = await new CredentialStore(dir).read('default');
    assert.equal(decodeJwt(stored.tokens.bearer).sub, 'alice');
    assert.ok(stored.tokens.refreshToken);

    // The token is expired by now (2 s lifetime): `modelgate token` refreshes silently.
    await new Promise((r) => setTimeout(r, 2_100));
    const printed = await runInProcess(tokenCommand, ['--min-validity', '1']);
    assert.equal(printed.code, 0, printed.stderr);
    const token = printed.stdout.trim();
    assert.notEqual(token, stored.tokens.bearer, 'a refreshed token');
    assert.equal(printed.stdout, `${token}\n`, 'stdout holds the token alone');
    const response = await postJson(`${h.url}/v1/chat/completions`, token, chat);
    assert.equal(response.status, 200);
    await response.body?.cancel();
  });

  test('whoami prints subject, groups and the models the caller may use', async () => {
    const { code, stdout, stderr } = await runInProcess(whoamiCommand, []);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /subject\s+alice <alice@example\.com>/);
    assert.match(stdout, /groups\s+engineering, ml-platform/);
    assert.match(stdout, /models\s+.*demo-chat \(demo\).*demo-embed \(demo\)/);
  });

  test('logout revokes the refresh token at the IdP and deletes the profile', async () => {
    const before = await new CredentialStore(dir).read('default');
    const { code, stderr } = await runInProcess(logoutCommand, []);
    assert.equal(code, 0, stderr);
    // It says what is true: the refresh token is revoked, the access token lives until it expires.
    assert.match(stderr, /the identity provider revoked the refresh token/);
    assert.ok(stderr.includes(`The last access token stays valid until ${new Date(before.tokens.expiresAt * 1000).toISOString()}`), stderr);
    assert.doesNotMatch(stderr, /tokens revoked/i);
    await assert.rejects(new CredentialStore(dir).read('default'), /Not logged in/);
    await assert.rejects(refreshTokens(before), { error: 'invalid_grant' }, 'the revoked refresh token no longer works');
    const token = await runInProcess(tokenCommand, []);
    assert.equal(token.code, 1);
    assert.match(token.stderr, /Not logged in/);
  });

  test('logout revokes a gateway-issued access token at the gateway: that token is refused at once, other sign-ins keep working', async () => {
    const tokens = h.gateway.services.identity.gatewayTokens;
    const subject = { subject: 'saml-alice', groups: ['engineering'], origin: 'https://saml.example', email: 'alice@example.com' };
    const [stored, otherSignIn] = await Promise.all([tokens.mint(subject), tokens.mint(subject)]);
    const discovery = await fetchGatewayDiscovery(h.url);
    await new CredentialStore(dir).write('gateway-issued', { gateway: discovery.gateway, login: discovery.login!, tokens: { bearer: stored.token, accessToken: stored.token, expiresAt: stored.expiresAt } });
    assert.equal((await postJson(`${h.url}/v1/chat/completions`, stored.token, chat)).status, 200);

    const { code, stderr } = await runInProcess(logoutCommand, ['--profile', 'gateway-issued']);
    assert.equal(code, 0, stderr);
    assert.match(stderr, /the gateway revoked its access token \(refused from now on, on every gateway instance within \d+s\)/);
    const refused = await postJson(`${h.url}/v1/chat/completions`, stored.token, chat);
    assert.equal(refused.status, 401);
    assert.equal((await errorOf(refused)).code, 'token_revoked');
    assert.equal((await postJson(`${h.url}/v1/chat/completions`, otherSignIn.token, chat)).status, 200, 'only the logged-out token is revoked');
    await assert.rejects(new CredentialStore(dir).read('gateway-issued'), /Not logged in/);
  });

  test('logout with MODELGATE_TOKEN: a gateway-issued token is revoked; an IdP token is said to live on until it expires', async () => {
    const gatewayToken = (await h.gateway.services.identity.gatewayTokens.mint({ subject: 'saml-bob', groups: ['engineering'], origin: 'https://saml.example' })).token;
    const idpToken = (await h.idp.loginAs('alice')).accessToken;
    const run = async (token: string) => {
      process.env.MODELGATE_TOKEN = token;
      try {
        return await runInProcess(logoutCommand, ['--profile', 'nobody']);
      } finally {
        delete process.env.MODELGATE_TOKEN;
      }
    };
    const revoked = await run(gatewayToken);
    assert.equal(revoked.code, 0);
    assert.match(revoked.stderr, /MODELGATE_TOKEN held a gateway-issued token: .* revoked it/);
    assert.equal((await errorOf(await postJson(`${h.url}/v1/chat/completions`, gatewayToken, chat))).code, 'token_revoked');

    const kept = await run(idpToken);
    assert.match(kept.stderr, new RegExp(`MODELGATE_TOKEN holds a token from ${h.idp.issuer}, which only that identity provider can revoke; it stays valid until \\d{4}-`));
    assert.equal((await postJson(`${h.url}/v1/chat/completions`, idpToken, chat)).status, 200, 'the gateway did not pretend to revoke it');
    // The gateway says so too, when asked directly.
    const direct = await fetch(`${h.url}/auth/revoke`, { method: 'POST', headers: { authorization: `Bearer ${idpToken}` } });
    assert.equal(direct.status, 400);
    assert.equal((await errorOf(direct)).code, 'token_not_gateway_issued');
  });

  test('PKCE through a loopback redirect, end to end', async () => {
    const profile = await login(h.url, personInBrowser(h, 'bob'), { flow: 'browser' });
    assert.equal(decodeJwt(profile.tokens.bearer).sub, 'bob');
    const embed = await postJson(`${h.url}/v1/embeddings`, profile.tokens.bearer, { model: 'demo-embed', input: 'x' });
    assert.equal(embed.status, 200);
    await embed.body?.cancel();
  });

  test('PKCE: a callback with a forged state is refused', async () => {
    await assert.rejects(
      login(h.url, {
        showDeviceCode() {},
        async openBrowser(url) {
          const callback = await h.idp.completeAuthorization(url, 'bob');
          callback.searchParams.set('state', 'attacker-state');
          await (await fetch(callback)).text();
        },
      }, { flow: 'browser' }),
      /state/,
    );
  });

  test('five processes needing a refresh at once spend the rotating refresh token once', async () => {
    const store = new CredentialStore(dir);
    await store.write('race', await login(h.url, personInBrowser(h, 'carol'), { flow: 'browser' }));
    await new Promise((r) => setTimeout(r, 2_100));
    const tokens = await Promise.all(Array.from({ length: 5 }, () => new TokenSource(new CredentialStore(dir), 'race').bearer({ minValiditySeconds: 1 })));
    assert.equal(new Set(tokens).size, 1, 'one refresh, shared through the store');
    // Had two processes spent the same refresh token, the IdP would have revoked the login.
    const later = await refreshTokens(await store.read('race'));
    assert.equal(decodeJwt(later.bearer).sub, 'carol');
  });
});
