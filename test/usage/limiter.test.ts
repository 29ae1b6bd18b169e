// The limiter on its own, with the in-memory store and a mock clock: which
// calls a rule applies to (its subjects, groups, connections and models are
// matched from sets compiled once), and a long call's concurrency slot kept
// leased by the shared renewal timer until it finishes.
import assert from 'node:assert/strict';
import { afterEach, describe, mock, test } from 'node:test';
import { CostTable } from '../../src/usage/costs.js';
import { limitsSchema, usageSchema } from '../../src/usage/config.js';
import { MemoryLimitStore } from '../../src/usage/limit-store.js';
import { Limiter, type LimitRequest } from '../../src/usage/limiter.js';

const usage = { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2, estimated: false };
let n = 0;

function call(over: { subject?: string; groups?: readonly string[]; connection?: string; model?: string } = {}): LimitRequest {
  return {
    principal: { issuer: 'https://idp.example', subject: over.subject ?? 'alice', groups: [...(over.groups ?? ['engineering'])], expiresAt: 0 },
    connection: over.connection ?? 'local',
    model: over.model ?? 'chat',
    requestId: `r${n++}`,
    promptEstimate: 1,
    maxTokens: 1,
  };
}

function limiter(rules: unknown[], extra: Record<string, unknown> = {}): Limiter {
  return new Limiter(limitsSchema.parse({ rules, ...extra }), new CostTable(usageSchema.parse({})), new MemoryLimitStore(() => Date.now()), {}, () => Date.now());
}

/** Admitted (true) or refused with 429 (false). */
async function admitted(l: Limiter, request: LimitRequest): Promise<boolean> {
  try {
    await (await l.admit(request)).finish(usage, 0);
    return true;
  } catch (err) {
    if ((err as { status?: number }).status === 429) return false;
    throw err;
  }
}

describe('which calls a rule applies to', () => {
  for (const [what, rule, matching, other] of [
    ['subjects', { subjects: ['bob'] }, { subject: 'bob' }, { subject: 'alice' }],
    ['groups', { groups: ['contractors'] }, { groups: ['x', 'contractors'] }, { groups: ['engineering'] }],
    ['connections', { connections: ['gpu'] }, { connection: 'gpu' }, { connection: 'local' }],
    ['models', { models: ['big'] }, { model: 'big' }, { model: 'chat' }],
  ] as const) {
    test(`by ${what}: the matching call is limited, another is not counted`, async () => {
      const l = limiter([{ name: 'one', per: [], requests_per_minute: 1, ...rule }]);
      assert.equal(await admitted(l, call(matching)), true);
      for (let i = 0; i < 3; i++) assert.equal(await admitted(l, call(other)), true, `${JSON.stringify(other)} is outside the rule`);
      assert.equal(await admitted(l, call(matching)), false, 'the second matching call is refused');
    });
  }
});

describe('concurrency leases', () => {
  afterEach(() => mock.timers.reset());

  test('a call longer than the lease keeps its slot while it runs, and frees it when it finishes', async () => {
    mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_000_000 });
    const l = limiter([{ name: 'one-at-once', concurrent_requests: 1 }], { concurrency_lease: '3s' });
    const long = await l.admit(call());
    for (let s = 0; s < 10; s++) {
      mock.timers.tick(1000);
      await Promise.resolve();
    }
    assert.equal(await admitted(l, call()), false, 'ten seconds on, past three leases, the running call still holds the slot');
    await long.finish(usage, 0);
    assert.equal(await admitted(l, call()), true);
  });

  test('a slot nobody renews (its gateway died) expires with its lease', async () => {
    mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_000_000 });
    const l = limiter([{ name: 'one-at-once', concurrent_requests: 1 }], { concurrency_lease: '3s' });
    const orphan = await l.admit(call());
    l.leases.delete(orphan); // as if its process had stopped renewing
    mock.timers.tick(3001);
    assert.equal(await admitted(l, call()), true);
  });
});
