// Service keys end to end, on SQLite and on the real PostgreSQL: an
// administrator creates, rotates and revokes them with `modelgate keys`
// (the public HTTP API); the official openai SDK calls with the key as its
// apiKey; two gateway instances share the identity state, so a revocation
// through one holds at once on the other. The key is never stored in clear.
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import pg from 'pg';
import { runCommand } from '../../src/cli/command.js';
import { keysCommand } from '../../src/cli/keys.js';
import { configSchema, type ConfigInput } from '../../src/config/schema.js';
import { startDemoModel, type DemoModel } from '../../src/dev/demo-model.js';
import { DEV_AUDIENCE, devConfigInput } from '../../src/dev/dev-config.js';
import { startDevIdp, type DevIdp } from '../../src/dev/idp.js';
import { Gateway } from '../../src/gateway.js';
import { newSecretKey } from '../../src/identity/secret-key.js';
import { SERVICE_KEY_ISSUER } from '../../src/identity/service-keys.js';
import { createLogger } from '../../src/ops/logger.js';
import { errorOf, postJson } from '../helpers/harness.js';
import { PG_URL } from '../helpers/postgres.js';
import { postgresSchema } from './identity-state.test.js';

const KEY_FORMAT = /^mgk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/;
const chat = (model = 'demo-chat') => ({ model, messages: [{ role: 'user' as const, content: 'hello from the notebook' }] });

/** `modelgate keys …` in this process, as the administrator whose token is given. */
async function keys(gateway: string, token: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const { log, error } = console;
  const saved = process.env.MODELGATE_TOKEN;
  process.env.MODELGATE_TOKEN = token;
  console.log = (...parts: unknown[]) => void (stdout += `${parts.join(' ')}\n`);
  console.error = (...parts: unknown[]) => void (stderr += `${parts.join(' ')}\n`);
  try {
    return { code: await runCommand(keysCommand, [...args, '--gateway', gateway]), stdout, stderr };
  } finally {
    console.log = log;
    console.error = error;
    if (saved === undefined) delete process.env.MODELGATE_TOKEN;
    else process.env.MODELGATE_TOKEN = saved;
  }
}

function sdk(url: string, apiKey: string): OpenAI {
  return new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0 });
}

/** The SDK's error for a refused call. */
async function refusal(call: Promise<unknown>): Promise<{ status: number; code: string; message: string }> {
  try {
    await call;
  } catch (err) {
    const e = err as { status?: number; code?: string; message: string };
    if (e.status === undefined) throw err;
    return { status: e.status, code: String(e.code), message: e.message };
  }
  throw new Error('the call was not refused');
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`service keys (identity state: ${store}, two gateway instances)`, () => {
    let idp: DevIdp;
    let model: DemoModel;
    let dir: string;
    let a: Gateway;
    let b: Gateway;
    let aUrl: string;
    let bUrl: string;
    let erin: string;
    let alice: string;
    let carol: string;
    let dropSchema = async () => {};
    let schema = '';

    before(async () => {
      model = await startDemoModel({ apiKey: 'demo-upstream-key' });
      idp = await startDevIdp({ audience: DEV_AUDIENCE });
      dir = await mkdtemp(join(tmpdir(), 'modelgate-service-keys-'));
      if (store === 'postgres') ({ schema, drop: dropSchema } = await postgresSchema());
      const input = devConfigInput({ host: '127.0.0.1', port: 0, issuer: idp.issuer, modelUrl: model.url, dataDir: dir }) as ConfigInput & Required<Pick<ConfigInput, 'connections' | 'access'>>;
      input.identity!.state = store === 'postgres' ? { store: 'postgres', url: PG_URL, schema, pool_size: 2 } : { store: 'sqlite', path: join(dir, 'identity.db') };
      input.identity!.service_keys = { admin_groups: ['security'] };
      input.connections[0]!.service_keys = true;
      // A second connection that has not opted in: keys are refused there even though the access rules allow it.
      input.connections.push({ name: 'private', kind: 'ollama', url: model.url, api_key: 'demo-upstream-key', models: [{ name: 'private-chat', upstream_name: 'demo-chat' }] });
      input.access.push({ groups: ['notebooks'], connections: ['demo', 'private'] });
      const config = configSchema.parse(input);
      const logger = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
      a = new Gateway(config, { logger });
      aUrl = await a.listen();
      // Instance B shares the identity state but records to its own database: only the key store is shared.
      b = new Gateway(configSchema.parse({ ...input, storage: { driver: 'sqlite', sqlite: { path: join(dir, 'b.db') } } }), { logger });
      bUrl = await b.listen();
      await Promise.all([a.services.verifier.warmUp(), b.services.verifier.warmUp()]);
      [erin, alice, carol] = await Promise.all(['erin', 'alice', 'carol'].map(async (u) => (await idp.loginAs(u)).accessToken)) as [string, string, string];
    });

    after(async () => {
      await Promise.all([a?.close(1_000), b?.close(1_000)]);
      await Promise.all([idp?.close(), model?.close()]);
      await dropSchema();
      await rm(dir, { recursive: true, force: true });
    });

    test('only administrators manage keys, and a service key cannot manage anything', async () => {
      const refused = await keys(aUrl, alice, ['create', 'notebook', '--groups', 'notebooks']);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /Only members of security may manage service keys/);
      const listed = await fetch(`${aUrl}/v1/service-keys`, { headers: { authorization: `Bearer ${alice}` } });
      assert.equal(listed.status, 403);
      assert.equal((await errorOf(listed)).code, 'service_keys_admin_required');
    });

    let firstKey = '';

    test('create: the key is shown once, and the official SDK calls with it on either instance', async () => {
      const created = await keys(aUrl, erin, ['create', 'notebook', '--groups', 'notebooks', '--expires', '90d']);
      assert.equal(created.code, 0, created.stderr);
      firstKey = created.stdout.trim();
      assert.match(firstKey, KEY_FORMAT, 'stdout is the key alone, prefixed for secret scanners');
      assert.match(created.stderr, /shown only now/);
      for (const url of [aUrl, bUrl]) {
        const answer = await sdk(url, firstKey).chat.completions.create(chat());
        assert.equal(answer.object, 'chat.completion');
      }
      // Its groups drive access like a person's: it sees the models of connections that take keys, and no others.
      const models = await sdk(bUrl, firstKey).models.list();
      assert.deepEqual(models.data.map((m) => m.id).sort(), ['demo-chat', 'demo-embed']);
      const whoami = await (await fetch(`${aUrl}/auth/whoami`, { headers: { authorization: `Bearer ${firstKey}` } })).json() as Record<string, unknown>;
      assert.equal(whoami.subject, 'notebook');
      assert.equal(whoami.method, 'service_key');
      assert.deepEqual(whoami.groups, ['notebooks']);
      assert.equal((whoami.owner as { email?: string }).email, 'erin@example.com');
      // A second identity of the same name cannot be created while the first is live.
      const again = await keys(aUrl, erin, ['create', 'notebook', '--groups', 'notebooks']);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /exists; rotate its key/);
    });

    test('refused where the connection has not enabled service keys, and on every other API', async () => {
      const refused = await refusal(sdk(aUrl, firstKey).chat.completions.create(chat('private-chat')));
      assert.equal(refused.status, 403);
      assert.equal(refused.code, 'service_key_not_enabled');
      assert.match(refused.message, /service_keys: true/);
      for (const path of ['/v1/service-keys', '/v1/reviews', '/v1/sessions', '/v1/policy']) {
        const response = await fetch(`${aUrl}${path}`, { headers: { authorization: `Bearer ${firstKey}` } });
        assert.equal(response.status, 403, path);
        assert.equal((await errorOf(response)).code, 'service_key_not_accepted', path);
      }
    });

    test('requests are recorded under the service identity and its owner', async () => {
      const erinSub = (await (await fetch(`${aUrl}/auth/whoami`, { headers: { authorization: `Bearer ${erin}` } })).json() as { subject: string }).subject;
      type Recorded = { events: Array<{ kind: string; meta: { identity?: Record<string, unknown> } }> };
      let id: string | undefined;
      // The session list is written as the request ends; wait for it rather than guess how long that takes.
      for (let attempt = 0; attempt < 200 && !id; attempt++) {
        const list = await (await fetch(`${aUrl}/v1/sessions?subject=notebook`, { headers: { authorization: `Bearer ${carol}` } })).json() as { data: Array<{ id: string }> };
        id = list.data[0]?.id;
        if (!id) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.ok(id, 'a recorded session of the service identity');
      const session = await (await fetch(`${aUrl}/v1/sessions/${id}`, { headers: { authorization: `Bearer ${carol}` } })).json() as Recorded;
      const identity = session.events.find((e) => e.kind === 'session.start')?.meta.identity;
      assert.ok(identity);
      assert.equal(identity.issuer, SERVICE_KEY_ISSUER);
      assert.equal(identity.subject, 'notebook');
      assert.equal(identity.service_key, firstKey.split('_')[1]);
      assert.deepEqual(identity.owner, { issuer: idp.issuer, subject: erinSub, email: 'erin@example.com' });
    });

    test('an owner named by an administrator signed in through the gateway is a person at the IdP, not at the gateway', async () => {
      // `modelgate login` and the browser hand out gateway tokens; the owner recorded from one must still be the
      // person at their IdP, or the owner's own votes would not be recognised as theirs (self-approval).
      const viaGateway = await a.services.identity.gatewayTokens.mint({ subject: 'erin-sub', groups: ['security'], origin: idp.issuer });
      const created = await keys(aUrl, viaGateway.token, ['create', 'named-owner', '--groups', 'notebooks', '--owner', 'bob-sub']);
      assert.equal(created.code, 0, created.stderr);
      const whoami = await (await fetch(`${aUrl}/auth/whoami`, { headers: { authorization: `Bearer ${created.stdout.trim()}` } })).json() as { owner: Record<string, unknown> };
      assert.deepEqual(whoami.owner, { issuer: idp.issuer, subject: 'bob-sub' });
      assert.equal((await keys(aUrl, erin, ['revoke', 'named-owner'])).code, 0);
    });

    let secondKey = '';

    test('rotate: the new key works at once, the old one for the overlap; overlap 0 ends it with a clear error', async () => {
      const rotated = await keys(aUrl, erin, ['rotate', 'notebook', '--overlap', '1h']);
      assert.equal(rotated.code, 0, rotated.stderr);
      secondKey = rotated.stdout.trim();
      assert.match(secondKey, KEY_FORMAT);
      assert.notEqual(secondKey, firstKey);
      assert.match(rotated.stderr, /old key keeps working until/);
      await sdk(bUrl, secondKey).chat.completions.create(chat());
      await sdk(bUrl, firstKey).chat.completions.create(chat());

      const thirdKey = (await keys(aUrl, erin, ['rotate', 'notebook', '--overlap', '0s'])).stdout.trim();
      await sdk(bUrl, thirdKey).chat.completions.create(chat());
      for (const old of [firstKey, secondKey]) {
        const refused = await refusal(sdk(bUrl, old).chat.completions.create(chat()));
        assert.equal(refused.status, 401);
        assert.equal(refused.code, 'service_key_expired');
        assert.match(refused.message, /replaced by a rotation/);
      }
      const listed = await keys(aUrl, erin, ['list', '--json']);
      const states = (JSON.parse(listed.stdout) as Array<{ name: string; state: string; hash?: string }>).filter((k) => k.name === 'notebook');
      assert.deepEqual(states.map((k) => k.state), ['live', 'replaced', 'replaced']);
      assert.ok(states.every((k) => k.hash === undefined), 'the API never hands out hashes');
      secondKey = thirdKey;
    });

    test('revoke through one instance: the other refuses the key on the very next request', async () => {
      await sdk(bUrl, secondKey).chat.completions.create(chat());
      const revoked = await keys(aUrl, erin, ['revoke', 'notebook']);
      assert.equal(revoked.code, 0, revoked.stderr);
      const refused = await refusal(sdk(bUrl, secondKey).chat.completions.create(chat()));
      assert.equal(refused.status, 401);
      assert.equal(refused.code, 'service_key_revoked');
      assert.match(refused.message, /Ask its owner \(erin@example.com\)/);
      // Revoked, the name is free for a new identity.
      assert.equal((await keys(aUrl, erin, ['create', 'notebook', '--groups', 'notebooks'])).code, 0);
    });

    test('an expired key is refused with a clear error; a forged secret and a key-shaped guess are refused', async () => {
      const { id, key, hash } = newSecretKey('mgk');
      const now = Date.now();
      await a.services.identity.state.insertServiceKey({
        id, name: 'old-notebook', groups: ['notebooks'], owner: { issuer: idp.issuer, subject: 'erin', email: 'erin@example.com' },
        hash, created_at: now - 2 * 86_400_000, expires_at: now - 1_000, replaced_by: null, revoked_at: null,
      });
      const expired = await postJson(`${bUrl}/v1/chat/completions`, key, chat());
      assert.equal(expired.status, 401);
      const error = await errorOf(expired);
      assert.equal(error.code, 'service_key_expired');
      assert.match(error.message, /expired at .*modelgate keys rotate old-notebook/);
      assert.match(expired.headers.get('www-authenticate') ?? '', /invalid_token/);

      // The right id with another secret: the hash comparison refuses it.
      const forged = `mgk_${id}_${'A'.repeat(43)}`;
      assert.equal((await errorOf(await postJson(`${bUrl}/v1/chat/completions`, forged, chat()))).code, 'service_key_invalid');
      assert.equal((await errorOf(await postJson(`${bUrl}/v1/chat/completions`, 'mgk_not-a-key', chat()))).code, 'service_key_invalid');
    });

    test('the store holds only hashes: no key appears in the database', async () => {
      const secrets = [firstKey, secondKey].map((k) => k.split('_').slice(2).join('_'));
      let stored: string;
      if (store === 'sqlite') {
        await a.services.identity.state.serviceKeys();
        const files = (await readdir(dir)).filter((f) => f.startsWith('identity.db'));
        assert.ok(files.length > 0);
        stored = (await Promise.all(files.map((f) => readFile(join(dir, f))))).map((bytes) => bytes.toString('latin1')).join('\n');
        assert.ok(stored.includes('notebook'), 'the file read is the one holding the keys');
      } else {
        const client = new pg.Client({ connectionString: PG_URL });
        await client.connect();
        try {
          stored = JSON.stringify((await client.query(`SELECT * FROM ${schema}.identity_service_keys`)).rows);
        } finally {
          await client.end();
        }
        assert.ok(stored.includes('notebook'));
      }
      for (const secret of secrets) {
        assert.equal(stored.includes(secret), false, 'a key secret is stored in clear');
        assert.equal(stored.includes(`mgk_`), false);
      }
    });
  });
}
