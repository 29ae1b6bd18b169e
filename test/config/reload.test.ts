// Live reload against a real gateway: a valid file changes access rules,
// guardrails and connections for new requests; an invalid one is refused
// with the start-up file:line message and changes nothing; and reloads in
// the middle of many streams fail none of them.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { stringify } from 'yaml';
import { ConfigError, loadConfigFile } from '../../src/config/load.js';
import { ConfigReloader, type ReloadOutcome } from '../../src/config/reload.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { errorOf, postJson, startHarness, type Harness } from '../helpers/harness.js';

const chat = (content: string) => ({ model: 'demo-chat', messages: [{ role: 'user', content }] });

describe('configuration reload', () => {
  let h: Harness;
  let input: ConfigInput;
  let dir: string;
  let file: string;
  let reloader: ConfigReloader;

  before(async () => {
    h = await startHarness({
      model: { chunkDelayMs: 10, replyWords: 60 },
      configure: (i) => {
        input = structuredClone(i);
      },
    });
    dir = await mkdtemp(join(tmpdir(), 'modelgate-reload-'));
    file = join(dir, 'modelgate.yaml');
    // The file the gateway would have started from; the harness picked port 0.
    await writeFile(file, stringify(input));
    reloader = new ConfigReloader(h.gateway, file);
  });
  after(async () => {
    reloader?.close();
    await h?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function reloadWith(change: (config: ConfigInput) => void): Promise<ReloadOutcome> {
    const next = structuredClone(input);
    change(next);
    await writeFile(file, stringify(next));
    const outcome = await reloader.reload('test');
    assert.ok(!(outcome instanceof ConfigError), `reload applied: ${String(outcome)}`);
    return outcome;
  }

  const reloads = async (result: string): Promise<number> => {
    const metric = await h.gateway.services.metrics.configReloads.get();
    return metric.values.find((v) => v.labels.result === result)?.value ?? 0;
  };

  test('a valid file changes access rules and guardrails for the next request, and is counted', async () => {
    const bob = await h.userToken('bob');
    assert.equal((await postJson(`${h.url}/v1/embeddings`, bob, { model: 'demo-embed', input: 'x' })).status, 200, 'before: contractors may embed');
    const applied = await reloads('applied');

    const outcome = await reloadWith((c) => {
      c.access = c.access!.filter((rule) => !rule.groups?.includes('contractors'));
      c.guardrails!.dictionaries = [...(c.guardrails!.dictionaries ?? []), { name: 'embargo', terms: ['zanzibar'] }];
      c.guardrails!.input = [...(c.guardrails!.input ?? []), { name: 'embargo-rule', detect: ['dictionary.embargo'], action: 'block' }];
    });
    assert.deepEqual(outcome, { applied: ['access', 'guardrails'], needsRestart: [] });
    assert.equal(await reloads('applied'), applied + 1);

    const refused = await postJson(`${h.url}/v1/embeddings`, bob, { model: 'demo-embed', input: 'x' });
    assert.equal(refused.status, 403, 'after: the rule is gone');
    const blocked = await postJson(`${h.url}/v1/chat/completions`, await h.userToken('alice'), chat('the zanzibar plan'));
    assert.equal(blocked.status, 403);
    assert.match((await errorOf(blocked)).message, /embargo-rule/);
  });

  test('connections change too: a new model is served, a removed one is gone', async () => {
    await reloadWith((c) => {
      c.connections![0]!.models = [{ name: 'demo-chat', aliases: ['demo', 'demo-renamed'] }];
    });
    const alice = await h.userToken('alice');
    assert.equal((await postJson(`${h.url}/v1/chat/completions`, alice, { ...chat('hi'), model: 'demo-renamed' })).status, 200);
    const gone = await postJson(`${h.url}/v1/embeddings`, alice, { model: 'demo-embed', input: 'x' });
    assert.equal(gone.status, 404);
    assert.equal((await errorOf(gone)).code, 'model_not_found');
  });

  test('sections bound to open state are reported as needing a restart, and keep their old settings', async () => {
    const before = h.gateway.services.config.server.max_body_bytes;
    const outcome = await reloadWith((c) => {
      c.server = { ...c.server, max_body_bytes: '1kb' };
    });
    assert.deepEqual(outcome.needsRestart, ['server']);
    assert.equal(h.gateway.services.config.server.max_body_bytes, before);
  });

  test('an invalid file is refused with the start-up file:line message, counted, and changes nothing', async () => {
    await reloadWith(() => {});
    const rejected = await reloads('rejected');
    const broken = stringify(input).replace(/^access:/m, 'acess:');
    await writeFile(file, broken);
    const atStartUp = await loadConfigFile(file).then(
      () => assert.fail('the broken file validated'),
      (err: unknown) => err as ConfigError,
    );
    const outcome = await reloader.reload('test');
    assert.ok(outcome instanceof ConfigError);
    assert.equal(outcome.message, atStartUp.message, 'the same message as at start-up');
    assert.match(outcome.message, /modelgate\.yaml:\d+:\d+: /);
    assert.equal(await reloads('rejected'), rejected + 1);
    // Still the old rules: alice chats, bob embeds.
    assert.equal((await postJson(`${h.url}/v1/chat/completions`, await h.userToken('alice'), chat('hi'))).status, 200);
    assert.equal((await postJson(`${h.url}/v1/embeddings`, await h.userToken('bob'), { model: 'demo-embed', input: 'x' })).status, 200);
  });

  test('reloads during 24 streams, replacing the connection each time, fail none of them', async () => {
    await reloadWith(() => {});
    const client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: await h.userToken('alice'), maxRetries: 0 });
    const streams = Array.from({ length: 24 }, async (_, i) => {
      const stream = await client.chat.completions.create({ ...chat(`stream ${i}`), model: 'demo-chat', stream: true } as OpenAI.ChatCompletionCreateParamsStreaming);
      let text = '';
      let finish: string | null | undefined;
      for await (const part of stream) {
        text += part.choices[0]?.delta.content ?? '';
        finish ??= part.choices[0]?.finish_reason;
      }
      return { text, finish };
    });
    // Each reload changes the connection's settings, so its pool is replaced under the running streams.
    for (let n = 0; n < 6; n++) {
      await new Promise((r) => setTimeout(r, 50));
      const outcome = await reloadWith((c) => {
        c.connections![0]!.timeouts = { idle: `${130 + n}s` };
      });
      assert.deepEqual(outcome.applied, ['connections']);
    }
    const results = await Promise.allSettled(streams);
    const failed = results.filter((r) => r.status === 'rejected');
    assert.deepEqual(failed, [], 'zero failed streams');
    for (const r of results) {
      const { text, finish } = (r as PromiseFulfilledResult<{ text: string; finish: string | null | undefined }>).value;
      assert.equal(finish, 'stop', 'every stream ran to its end');
      assert.ok(text.split(' ').length >= 50, 'with the whole reply');
    }
  });
});
