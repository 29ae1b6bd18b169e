// Limits through a whole gateway, one suite run twice: on the in-memory
// store and on the real Redis at 127.0.0.1:6379 (a fresh key prefix per
// test). Every limit kind, the headers OpenAI clients read, settlement with
// real usage, a burst of 50 against a limit of 10, budgets with their
// webhook, two gateway processes sharing one Redis, and Redis unreachable.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import OpenAI from 'openai';
import type { ConfigInput } from '../../src/config/schema.js';
import { devConfigInput } from '../../src/dev/dev-config.js';
import type { UsageReport } from '../../src/usage/report.js';
import { errorOf, postJson, startHarness, type Harness, type HarnessOptions } from '../helpers/harness.js';

type LimitsInput = NonNullable<ConfigInput['limits']>;
type StoreName = 'memory' | 'redis';

const REDIS_URL = 'redis://127.0.0.1:6379';

function limitsFor(store: StoreName, limits: Omit<LimitsInput, 'store' | 'redis'>): LimitsInput {
  return { store, ...(store === 'redis' && { redis: { url: REDIS_URL, key_prefix: `test:${randomUUID()}:` } }), ...limits };
}

async function withGateway(limits: LimitsInput, run: (h: Harness) => Promise<void>, options: HarnessOptions & { usage?: ConfigInput['usage'] } = {}): Promise<void> {
  const h = await startHarness({
    ...options,
    configure: (input) => {
      input.limits = limits;
      if (options.usage) input.usage = options.usage;
      options.configure?.(input);
    },
  });
  try {
    await run(h);
  } finally {
    await h.close();
  }
}

const chat = (content = 'hi', extra: Record<string, unknown> = {}) => ({ model: 'demo-chat', messages: [{ role: 'user', content }], ...extra });

for (const store of ['memory', 'redis'] as const) {
  describe(`limits on the ${store} store`, () => {
    test('requests per minute: remaining counts down on every response; the next is refused with 429, OpenAI headers and the limit named', async () => {
      await withGateway(limitsFor(store, { rules: [{ name: 'three-a-minute', requests_per_minute: 3 }] }), async (h) => {
        const token = await h.userToken('alice');
        for (const remaining of [2, 1, 0]) {
          const response = await postJson(`${h.url}/v1/chat/completions`, token, chat());
          assert.equal(response.status, 200);
          assert.equal(response.headers.get('x-ratelimit-limit-requests'), '3');
          assert.equal(response.headers.get('x-ratelimit-remaining-requests'), String(remaining));
          assert.match(response.headers.get('x-ratelimit-reset-requests')!, /^\d+(m\d+)?s$/);
          await response.text();
        }
        const refused = await postJson(`${h.url}/v1/chat/completions`, token, chat());
        assert.equal(refused.status, 429);
        assert.equal(refused.headers.get('x-ratelimit-remaining-requests'), '0');
        const retryAfter = Number(refused.headers.get('retry-after'));
        assert.ok(retryAfter >= 1 && retryAfter <= 120, `retry-after ${retryAfter}`);
        const error = await errorOf(refused);
        assert.equal(error.code, 'rate_limit_exceeded');
        assert.match(error.message, /"three-a-minute".*3 requests per minute/);
        assert.match(error.message, /at \d{4}-\d\d-\d\dT/);

        // Per subject by default: someone else is not affected.
        const other = await postJson(`${h.url}/v1/chat/completions`, await h.serviceToken('batch-summariser'), chat());
        assert.equal(other.status, 200);
        await other.text();

        // Recorded like any refusal: a session that ended refused, naming the limit, and counted in usage.
        const audit = h.gateway.services.audit!;
        await audit.recorder.flush();
        const refusedId = refused.headers.get('x-request-id')!;
        const detail = (await audit.archive.show(refusedId))!;
        assert.ok(detail, 'the refused request has a session');
        assert.equal(detail.session.state, 'refused');
        assert.equal(detail.session.status, 429);
        assert.equal(detail.session.error_code, 'rate_limit_exceeded');
        assert.equal(detail.forwarded, undefined, 'nothing was forwarded');
        assert.equal(detail.session.bodies, false, 'metadata only: a flood of refused calls stores no prompts');
        assert.equal(detail.request.body, undefined);
        assert.equal(detail.limit?.limit, 'three-a-minute');
        assert.equal(detail.limit?.kind, 'requests_per_minute');
        assert.equal(detail.limit?.code, 'rate_limit_exceeded');
        assert.match(detail.limit?.scope ?? '', /^subject=/);
        assert.match(detail.limit?.resets_at ?? '', /^\d{4}-\d\d-\d\dT/);
        const usage = await fetch(`${h.url}/v1/usage?by=subject&since=1h`, { headers: { authorization: `Bearer ${token}` } });
        const [own] = ((await usage.json()) as UsageReport).rows;
        assert.deepEqual([own?.requests, own?.limited], [4, 1], 'three admitted and one refused by the limit');
      });
    });

    test('a burst of 50 concurrent requests against a limit of 10 lets exactly 10 through', async () => {
      await withGateway(limitsFor(store, { rules: [{ name: 'ten', requests_per_minute: 10 }] }), async (h) => {
        const token = await h.userToken('alice');
        const statuses = await Promise.all(
          Array.from({ length: 50 }, async () => {
            const response = await postJson(`${h.url}/v1/chat/completions`, token, chat());
            await response.text();
            return response.status;
          }),
        );
        assert.equal(statuses.filter((s) => s === 200).length, 10);
        assert.equal(statuses.filter((s) => s === 429).length, 40);
      });
    });

    test('concurrent requests: streams hold their slot until they end, then free it', async () => {
      await withGateway(
        limitsFor(store, { rules: [{ name: 'ten-at-once', concurrent_requests: 10 }] }),
        async (h) => {
          const client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: await h.userToken('alice'), maxRetries: 0 });
          const outcomes = await Promise.all(
            Array.from({ length: 50 }, async () => {
              try {
                const stream = await client.chat.completions.create({ ...chat('slow stream'), stream: true } as OpenAI.ChatCompletionCreateParamsStreaming);
                for await (const _ of stream);
                return 200;
              } catch (err) {
                assert.ok(err instanceof OpenAI.RateLimitError, String(err));
                assert.equal((err.error as { code?: string }).code, 'concurrency_limit_exceeded');
                return 429;
              }
            }),
          );
          assert.equal(outcomes.filter((s) => s === 200).length, 10);
          // Every stream has ended: every slot is free again.
          const response = await postJson(`${h.url}/v1/chat/completions`, await h.userToken('alice'), chat());
          assert.equal(response.status, 200);
          assert.equal(response.headers.get('x-ratelimit-remaining-concurrent-requests'), '9');
          await response.text();
        },
        // Each stream lasts seconds, far longer than admitting 50 requests takes.
        { model: { chunkDelayMs: 150, replyWords: 30 } },
      );
    });

    test('tokens per minute: checked with prompt estimate + max_tokens, settled with the real usage', async () => {
      await withGateway(limitsFor(store, { rules: [{ name: 'tpm', tokens_per_minute: 300 }] }), async (h) => {
        const token = await h.userToken('alice');
        // 250 + the prompt fits 300 once; without settling, the second would not.
        for (let i = 0; i < 2; i++) {
          const response = await postJson(`${h.url}/v1/chat/completions`, token, chat('hi', { max_tokens: 250 }));
          assert.equal(response.status, 200, `call ${i + 1}`);
          const body = (await response.json()) as { usage: { total_tokens: number } };
          assert.ok(body.usage.total_tokens < 40);
        }
        const tooMuchNow = await postJson(`${h.url}/v1/chat/completions`, token, chat('hi', { max_tokens: 290 }));
        assert.equal(tooMuchNow.status, 429);
        assert.equal((await errorOf(tooMuchNow)).code, 'rate_limit_exceeded');
        assert.equal(tooMuchNow.headers.get('x-ratelimit-limit-tokens'), '300');

        const never = await postJson(`${h.url}/v1/chat/completions`, token, chat('hi', { max_tokens: 400 }));
        assert.equal(never.status, 429);
        assert.equal(never.headers.get('x-should-retry'), 'false');
        assert.equal(never.headers.get('retry-after'), null);
        assert.equal((await errorOf(never)).code, 'request_exceeds_limit');
      });
    });

    for (const kind of ['tokens_per_day', 'tokens_per_month'] as const) {
      test(`${kind}: counted across calls and named when exceeded`, async () => {
        await withGateway(limitsFor(store, { default_max_tokens: 50, rules: [{ name: `${kind}-rule`, [kind]: 120 }] }), async (h) => {
          const token = await h.userToken('alice');
          const first = await postJson(`${h.url}/v1/chat/completions`, token, chat());
          assert.equal(first.status, 200);
          assert.equal(first.headers.get('x-ratelimit-limit-tokens'), '120');
          const used = ((await first.json()) as { usage: { total_tokens: number } }).usage.total_tokens;
          // The remaining header reflects what the next call may spend: 120 − reservation of this one.
          const refused = await postJson(`${h.url}/v1/chat/completions`, token, chat('hi', { max_tokens: 120 - used - 1 }));
          assert.equal(refused.status, 429);
          const error = await errorOf(refused);
          assert.match(error.message, new RegExp(`"${kind}-rule".*120 tokens per (day|30 days)`));
        });
      });
    }

    test('rules combine: per group, shared by its members, on top of per subject', async () => {
      await withGateway(
        limitsFor(store, {
          rules: [
            { name: 'per-person', requests_per_minute: 5 },
            { name: 'engineering-shared', groups: ['engineering'], per: ['group'], requests_per_minute: 3 },
          ],
        }),
        async (h) => {
          const alice = await h.userToken('alice');
          const bot = await h.serviceToken('batch-summariser');
          const statuses = [];
          for (const token of [alice, bot, alice, bot]) {
            const response = await postJson(`${h.url}/v1/chat/completions`, token, chat());
            statuses.push(response.status);
            if (response.status === 429) assert.match((await errorOf(response)).message, /engineering-shared/);
            else await response.text();
          }
          assert.deepEqual(statuses, [200, 200, 200, 429]);
        },
      );
    });

    test('a request one limit refuses is charged to none of the others', async () => {
      await withGateway(
        limitsFor(store, {
          rules: [
            { name: 'loose', requests_per_minute: 3 },
            { name: 'chat-once', models: ['demo-chat'], per: ['model'], requests_per_minute: 1 },
          ],
        }),
        async (h) => {
          const token = await h.userToken('alice');
          const embed = async () => {
            const response = await postJson(`${h.url}/v1/embeddings`, token, { model: 'demo-embed', input: 'x' });
            await response.text();
            return response;
          };
          assert.equal((await embed()).headers.get('x-ratelimit-remaining-requests'), '2');
          const first = await postJson(`${h.url}/v1/chat/completions`, token, chat());
          assert.equal(first.status, 200);
          await first.text();
          const refused = await postJson(`${h.url}/v1/chat/completions`, token, chat());
          assert.equal(refused.status, 429);
          assert.match((await errorOf(refused)).message, /chat-once/);
          const last = await embed();
          assert.equal(last.status, 200, 'the refused call was charged to "loose" too');
          assert.equal(last.headers.get('x-ratelimit-remaining-requests'), '0');
        },
      );
    });

    test('budgets: cost per 1k tokens, a soft threshold that calls the webhook once, a hard one that refuses', async () => {
      const alerts: unknown[] = [];
      const hook = await listen((body) => alerts.push(body));
      try {
        await withGateway(
          limitsFor(store, { default_max_tokens: 0, budgets: [{ group: 'engineering', monthly: 0.1, soft: 0.5, webhook: { url: hook.url } }] }),
          async (h) => {
            const token = await h.userToken('alice');
            const statuses: number[] = [];
            for (let i = 0; i < 8; i++) {
              const response = await postJson(`${h.url}/v1/chat/completions`, token, chat());
              statuses.push(response.status);
              if (response.status === 429) {
                const error = await errorOf(response);
                assert.equal(error.code, 'budget_exceeded');
                assert.match(error.message, /budget:engineering/);
                const retryAfter = Number(response.headers.get('retry-after'));
                assert.ok(retryAfter > 0 && retryAfter <= 31 * 86400);
                break;
              }
              assert.ok(response.headers.get('x-modelgate-budget-remaining'));
              await response.text();
              await new Promise((r) => setTimeout(r, 50)); // settlement is after the response
            }
            // 12 completion tokens at 3 per 1k = 0.036 a call (+ prompt): the third crosses 0.1.
            assert.deepEqual(statuses, [200, 200, 200, 429]);
            for (let i = 0; i < 50 && alerts.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
            assert.equal(alerts.length, 1);
            assert.equal((alerts[0] as { group: string }).group, 'engineering');
            const metrics = await (await fetch(`${h.url}/metrics`)).text();
            const spent = Number(/modelgate_cost_total\{connection="demo",model="demo-chat",group="engineering"\} ([\d.]+)/.exec(metrics)![1]);
            assert.ok(spent >= 0.1 && spent < 0.15, `spent ${spent}`);
          },
          { usage: { costs: [{ models: ['demo-chat'], per_1k_prompt_tokens: 3, per_1k_completion_tokens: 3 }] } },
        );
      } finally {
        await hook.close();
      }
    });
  });
}

describe('limit decisions in the access log', () => {
  test('each request line names its usage and limit decision', async () => {
    const logs: string[] = [];
    await withGateway(
      limitsFor('memory', { rules: [{ name: 'one', requests_per_minute: 1 }] }),
      async (h) => {
        const token = await h.userToken('alice');
        for (let i = 0; i < 2; i++) await (await postJson(`${h.url}/v1/chat/completions`, token, chat())).text();
        await new Promise((r) => setTimeout(r, 50));
      },
      { logs },
    );
    const requests = logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request' && l.path === '/v1/chat/completions');
    assert.equal(requests.length, 2);
    assert.equal(requests[0]!.limits, 'allowed');
    assert.ok((requests[0]!.usage as { completion: number }).completion > 0);
    assert.equal(requests[1]!.limits, 'refused');
    assert.equal(requests[1]!.code, 'rate_limit_exceeded');
    assert.equal(requests[1]!.usage, undefined);
  });
});

describe('limits on Redis shared by several gateways', () => {
  const children: ChildProcess[] = [];
  after(() => {
    for (const child of children) child.kill('SIGTERM');
  });

  test('two gateway processes sharing one Redis enforce one limit together, sequentially and under a burst of 50 split between them', async () => {
    const limits = limitsFor('redis', {
      rules: [
        { name: 'shared-five', groups: ['ml-platform'], requests_per_minute: 5 },
        { name: 'burst-ten', groups: ['ci'], requests_per_minute: 10 },
      ],
    });
    await withGateway(limits, async (h) => {
      const dataDir = await mkdtemp(join(tmpdir(), 'modelgate-child-'));
      try {
        const input = devConfigInput({ host: '127.0.0.1', port: 0, issuer: h.idp.issuer, modelUrl: h.model.url, dataDir }) as ConfigInput;
        input.limits = limits;
        const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'gateway-child.ts')], {
          env: { ...process.env, MODELGATE_CHILD_CONFIG: JSON.stringify(input) },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        children.push(child);
        const line = await new Promise<string>((resolve, reject) => {
          createInterface({ input: child.stdout! }).once('line', resolve);
          child.once('exit', (code) => reject(new Error(`child gateway exited with ${code}`)));
        });
        const other = (JSON.parse(line) as { url: string }).url;
        const token = await h.userToken('alice');
        const statuses: number[] = [];
        for (let i = 0; i < 8; i++) {
          const response = await postJson(`${i % 2 === 0 ? h.url : other}/v1/chat/completions`, token, chat());
          statuses.push(response.status);
          await response.text();
        }
        assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);

        // 50 at once, every other one to the other process: one atomic decision each, on Redis.
        const ci = await h.serviceToken('ci-bot');
        const burst = await Promise.all(
          Array.from({ length: 50 }, async (_, i) => {
            const response = await postJson(`${i % 2 === 0 ? h.url : other}/v1/chat/completions`, ci, chat());
            await response.text();
            return response.status;
          }),
        );
        assert.equal(burst.filter((s) => s === 200).length, 10, JSON.stringify(burst));
        assert.equal(burst.filter((s) => s === 429).length, 40);
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  });

  test('Redis unreachable: a fail-closed limit answers 503, a fail-open one lets the request through and counts it', async () => {
    const unreachable = 'redis://127.0.0.1:1';
    await withGateway(
      { store: 'redis', redis: { url: unreachable, timeout: '100ms' }, rules: [{ name: 'strict', requests_per_minute: 100 }] },
      async (h) => {
        const response = await postJson(`${h.url}/v1/chat/completions`, await h.userToken('alice'), chat());
        assert.equal(response.status, 503);
        assert.equal(response.headers.get('retry-after'), '1');
        const error = await errorOf(response);
        assert.equal(error.code, 'limits_unavailable');
        assert.match(error.message, /"strict"/);
      },
    );
    await withGateway(
      { store: 'redis', redis: { url: unreachable, timeout: '100ms' }, rules: [{ name: 'lenient', requests_per_minute: 100, on_store_failure: 'open' }] },
      async (h) => {
        const response = await postJson(`${h.url}/v1/chat/completions`, await h.userToken('alice'), chat());
        assert.equal(response.status, 200);
        await response.text();
        const metrics = await (await fetch(`${h.url}/metrics`)).text();
        assert.match(metrics, /modelgate_limit_store_failures_total\{outcome="open"\} 1/);
      },
    );
  });
});

/** A webhook receiver on loopback. */
async function listen(onBody: (body: unknown) => void): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString('utf8')));
    req.on('end', () => {
      onBody(JSON.parse(text));
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hook`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
