// How each worker of `gateway --workers N` routes: which plan it gets from
// the configuration and its slot, and, with agents.routing, the port it
// listens on and the address it advertises (the configured ones + its slot).
// The process-level proof is workers.test.ts.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import type { AgentHub } from '../../src/agent/hub.js';
import { AgentRouter, routingPlan, type WorkerSlot } from '../../src/agent/router.js';
import { configSchema, type Config } from '../../src/config/schema.js';
import { devConfigInput } from '../../src/dev/dev-config.js';
import { createLogger } from '../../src/ops/logger.js';

const SECRET = 's'.repeat(40);

/** A port that was free a moment ago. */
const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
const worker = (slot: number, count = 2): WorkerSlot => ({ slot, count, siblingSecret: 'primary-made-secret-'.padEnd(43, 'x') });

function config(change: (input: Record<string, any>) => void = () => {}): Config {
  const input = devConfigInput({ host: '127.0.0.1', port: 0, issuer: 'http://127.0.0.1:1/', modelUrl: 'http://127.0.0.1:2', dataDir: '/tmp/modelgate-worker-routing' }) as Record<string, any>;
  delete input.connections[0].url;
  input.connections[0].targets = [{ via: 'agent' }];
  input.agents = { listen: { host: '127.0.0.1', port: 0 } };
  change(input);
  return configSchema.parse(input);
}
const plan = (c: Config, w?: WorkerSlot) => routingPlan(c.agents, c.storage, c.connections, w);

describe('routing between workers', () => {
  test('without agents.routing: a worker of several on SQLite (a file) routes over loopback with its primary\'s secret; nothing otherwise', () => {
    const sibling = plan(config(), worker(1))!;
    assert.deepEqual(sibling.config.listen, { host: '127.0.0.1', port: 0 });
    assert.equal(sibling.config.secret, worker(1).siblingSecret);
    assert.equal(sibling.portOffset, 0, 'a free port each');
    assert.equal(plan(config()), undefined, 'one process: nothing to route to');
    assert.equal(plan(config(), worker(0, 1)), undefined, 'one worker');
    assert.equal(plan(config((c) => (c.storage = { driver: 'postgres', postgres: { url: 'postgres://127.0.0.1/x' } })), worker(1)), undefined, 'PostgreSQL spans hosts: agents.routing is needed');
    assert.equal(plan(config((c) => (c.storage = { sqlite: { path: ':memory:' } })), worker(1)), undefined, 'SQLite in memory is not shared');
    assert.equal(plan(config((c) => (c.connections[0] = { name: 'demo', url: 'http://127.0.0.1:2', models: [{ name: 'demo-chat' }] })), worker(1)), undefined, 'no agent-served connection');
  });

  test('with agents.routing: the configured settings, shifted by the worker\'s slot', () => {
    const routed = config((c) => (c.agents.routing = { secret: SECRET, listen: { port: 9444 } }));
    assert.deepEqual(plan(routed, worker(3, 4)), { config: routed.agents!.routing, portOffset: 3 });
    assert.deepEqual(plan(routed), { config: routed.agents!.routing, portOffset: 0 });
  });

  test('worker i listens on the configured port + i and advertises the advertised port + i', async () => {
    const base = await freePort();
    const routed = config((c) => (c.agents.routing = { secret: SECRET, listen: { host: '127.0.0.1', port: base - 1 }, advertise_url: 'https://gw-1.internal:8444/' }));
    const quietHub = { onChange: () => undefined, held: () => new Map() } as unknown as AgentHub;
    const storage = config((c) => (c.storage = { sqlite: { path: ':memory:' } })).storage;
    const router = new AgentRouter({ hub: quietHub, config: routed.agents!.routing!, portOffset: 1, storage, connections: routed.connections, log: createLogger('silent') });
    try {
      assert.equal(await router.start(), 'https://gw-1.internal:8445');
      // The listener is the worker's own, at the configured port + 1.
      const answer = await fetch(`http://127.0.0.1:${base}/v1/internal/agent-route`, { method: 'POST', body: '{}' });
      assert.equal(answer.status, 403);
    } finally {
      await router.close();
    }
  });
});
