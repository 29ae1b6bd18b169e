// Usage reports: GET /v1/usage and `modelgate usage` over the sessions a
// real gateway recorded, with costs from `usage.costs`. Auditors see
// everyone; anyone else only themselves, whether signed in through the
// browser (a gateway-issued token) or with their IdP's token.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import OpenAI from 'openai';
import { stringify } from 'yaml';
import { UsageError } from '../../src/cli/command.js';
import { usageCommand } from '../../src/cli/usage.js';
import { DEMO_USERS } from '../../src/dev/demo-identities.js';
import type { UsageReport } from '../../src/usage/report.js';
import { runCli } from '../helpers/cli.js';
import { errorOf, startHarness, type Harness } from '../helpers/harness.js';

const COSTS = [{ models: ['demo-chat'], per_1k_prompt_tokens: 1, per_1k_completion_tokens: 2 }];

describe('usage reports', () => {
  let h: Harness;
  let dir: string;
  let configFile: string;
  const used = new Map<string, { prompt: number; completion: number; requests: number }>();

  before(async () => {
    h = await startHarness({ configure: (input) => void (input.usage = { currency: 'EUR', costs: COSTS }) });
    const calls: Array<[string, string]> = [
      ['alice', 'demo-chat'],
      ['alice', 'demo-chat'],
      ['alice', 'demo-embed'],
      ['batch-summariser', 'demo-chat'],
    ];
    for (const [who, model] of calls) {
      const token = who === 'alice' ? await h.userToken(who) : await h.serviceToken(who);
      const client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: token, maxRetries: 0 });
      const usage =
        model === 'demo-embed'
          ? { prompt_tokens: (await client.embeddings.create({ model, input: 'embed me' })).usage.prompt_tokens, completion_tokens: 0 }
          : (await client.chat.completions.create({ model, messages: [{ role: 'user', content: `report ${who}` }] })).usage!;
      const key = `${who}|${model}`;
      const entry = used.get(key) ?? { prompt: 0, completion: 0, requests: 0 };
      entry.prompt += usage.prompt_tokens;
      entry.completion += usage.completion_tokens;
      entry.requests += 1;
      used.set(key, entry);
    }
    await h.gateway.services.audit!.recorder.flush();
    dir = await mkdtemp(join(tmpdir(), 'modelgate-usage-cli-'));
    configFile = join(dir, 'modelgate.yaml');
    await writeFile(configFile, stringify({ storage: { driver: 'sqlite', sqlite: { path: h.gateway.services.config.storage.sqlite.path } }, usage: { currency: 'EUR', costs: COSTS } }));
  });
  after(async () => {
    await h.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function usageApi(user: string, query: string): Promise<Response> {
    return fetch(`${h.url}/v1/usage?${query}`, { headers: { authorization: `Bearer ${await h.userToken(user)}` } });
  }

  test('an auditor gets everyone, by subject and model, with costs', async () => {
    const response = await usageApi('carol', 'by=subject,model&since=1h');
    assert.equal(response.status, 200);
    const report = (await response.json()) as UsageReport;
    assert.equal(report.currency, 'EUR');
    const aliceChat = report.rows.find((r) => r.subject === 'alice@example.com' && r.model === 'demo-chat')!;
    const expected = used.get('alice|demo-chat')!;
    assert.equal(aliceChat.requests, 2);
    assert.equal(aliceChat.prompt_tokens, expected.prompt);
    assert.equal(aliceChat.completion_tokens, expected.completion);
    assert.equal(aliceChat.total_tokens, expected.prompt + expected.completion);
    assert.equal(aliceChat.cost, Math.round(((expected.prompt * 1 + expected.completion * 2) / 1000) * 1e6) / 1e6);
    const embed = report.rows.find((r) => r.subject === 'alice@example.com' && r.model === 'demo-embed')!;
    assert.equal(embed.cost, 0, 'a model without a price costs nothing');
    assert.ok(report.rows.some((r) => r.model === 'demo-chat' && r.subject !== 'alice@example.com'), 'the service account is there too');
    assert.equal(report.total.requests, 4);
  });

  test('by group: a session counts once in each of its groups', async () => {
    const report = (await (await usageApi('carol', 'by=group')).json()) as UsageReport;
    const engineering = report.rows.find((r) => r.group === 'engineering')!;
    const mlPlatform = report.rows.find((r) => r.group === 'ml-platform')!;
    assert.equal(engineering.requests, 4, 'alice and the batch service are both in engineering');
    assert.equal(mlPlatform.requests, 3, 'only alice is in ml-platform');
  });

  test('anyone else sees only their own usage, and may not ask for someone else', async () => {
    const report = (await (await usageApi('alice', 'by=subject')).json()) as UsageReport;
    assert.deepEqual(
      report.rows.map((r) => r.subject),
      ['alice@example.com'],
    );
    const refused = await usageApi('alice', 'subject=someone-else');
    assert.equal(refused.status, 403);
    assert.equal((await errorOf(refused)).code, 'usage_of_others');
    const bad = await usageApi('carol', 'by=colour');
    assert.equal(bad.status, 400);
    assert.equal((await errorOf(bad)).code, 'invalid_dimension');
  });

  test('modelgate usage prints the same numbers as a table, JSON and CSV', async () => {
    const api = (await (await usageApi('carol', 'by=group,model&since=1h')).json()) as UsageReport;
    const json = JSON.parse((await cli(['--config', configFile, '--by', 'group,model', '--since', '1h', '--json'])).out) as UsageReport;
    assert.deepEqual(json.rows, api.rows);

    const csv = (await cli(['--config', configFile, '--by', 'model', '--csv'])).out.trim().split('\n');
    assert.equal(csv[0], 'model,requests,limited,prompt_tokens,completion_tokens,total_tokens,estimated_requests,cost');
    assert.match(csv.find((l) => l.startsWith('demo-chat,'))!, /^demo-chat,3,0,\d+,\d+,\d+,0,[\d.]+$/);

    const table = await cli(['--config', configFile, '--by', 'subject']);
    assert.equal(table.code, 0);
    assert.match(table.out, /SUBJECT\s+REQUESTS\s+LIMITED\s+PROMPT\s+COMPLETION\s+TOTAL\s+COST \(EUR\)/);
    assert.match(table.out, /alice@example\.com\s+3\s+0\s+\d+/);
    assert.doesNotMatch(table.out, /~/, 'the model server reported every count: nothing is marked estimated');

    const wrong = await cli(['--config', configFile, '--by', 'colour']);
    assert.equal(wrong.code, 2);
  });
});

describe('usage of one person signed in two ways', () => {
  // The console's browser session calls the APIs with a gateway-issued token
  // (issuer: the gateway, `idp`: the IdP); scripts use the IdP's token. Both
  // are the same person, and must see the same usage: their own.
  let h: Harness;
  const browserToken = async (user: string): Promise<string> => {
    const sub = decodeJwt(await h.userToken(user)).sub!;
    const { email, groups } = DEMO_USERS.find((u) => u.id === user)!;
    return (await h.gateway.services.identity.gatewayTokens.mint({ subject: sub, email, groups, origin: h.idp.issuer })).token;
  };
  const call = async (token: string, model: string): Promise<void> => {
    const client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: token, maxRetries: 0 });
    if (model === 'demo-embed') await client.embeddings.create({ model, input: 'embed me' });
    else await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hello' }] });
  };
  const report = async (token: string): Promise<UsageReport> => {
    const response = await fetch(`${h.url}/v1/usage?by=subject,model&since=1h`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(response.status, 200, await response.clone().text());
    return (await response.json()) as UsageReport;
  };

  before(async () => {
    h = await startHarness({ configure: (input) => void (input.identity!.gateway_tokens = { lifetime: '10m' }) });
    // Alice: one call with her IdP token, one from her browser session. Bob (embeddings only): the same. A service: one.
    await call(await h.userToken('alice'), 'demo-chat');
    await call(await browserToken('alice'), 'demo-chat');
    await call(await h.userToken('bob'), 'demo-embed');
    await call(await browserToken('bob'), 'demo-embed');
    await call(await h.serviceToken('batch-summariser'), 'demo-chat');
    await h.gateway.services.audit!.recorder.flush();
  });
  after(() => h.close());

  for (const [user, model] of [['alice', 'demo-chat'], ['bob', 'demo-embed']] as const) {
    test(`${user} sees the calls made both ways, in the browser session and with the API token; never anyone else's`, async () => {
      // Sessions are recorded under the IdP that vouched for the person (a gateway token's `idp`), so both
      // identities of the person name the same (issuer, subject).
      for (const token of [await browserToken(user), await h.userToken(user)]) {
        const seen = await report(token);
        assert.deepEqual(seen.rows.map((r) => [r.subject, r.model, r.requests]), [[`${user}@example.com`, model, 2]]);
        assert.equal(seen.total.requests, 2);
      }
    });
  }

  test('an auditor still sees everyone', async () => {
    assert.equal((await report(await h.userToken('carol'))).total.requests, 5);
  });
});

/** `modelgate usage ARGS`; a usage error is exit code 2, as main.ts makes it. */
async function cli(args: string[]): Promise<{ code: number; out: string }> {
  return runCli(usageCommand, args).catch((err: unknown) => (err instanceof UsageError ? { code: 2, out: '' } : Promise.reject(err)));
}
