// Configuration of agent-served connections: validated at start-up, naming the bad key.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { configSchema, type ConfigInput } from '../../src/config/schema.js';
import { devConfigInput } from '../../src/dev/dev-config.js';

function withAgent(change: (input: ConfigInput) => void): ReturnType<typeof configSchema.safeParse> {
  const input = devConfigInput({ host: '127.0.0.1', port: 0, issuer: 'http://127.0.0.1:1/', modelUrl: 'http://127.0.0.1:2', dataDir: '/tmp/x' });
  const demo = input.connections![0]! as Record<string, unknown>;
  delete demo.url;
  demo.targets = [{ via: 'agent' }];
  input.agents = {};
  change(input);
  return configSchema.safeParse(input);
}

const problems = (result: ReturnType<typeof configSchema.safeParse>) => (result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));

describe('agents configuration', () => {
  test('a connection served via agent, with the agents section on loopback, is valid', () => {
    const result = withAgent(() => {});
    assert.equal(result.success, true, problems(result).join('\n'));
    assert.equal(result.data!.agents!.listen.host, '127.0.0.1');
  });

  test('via agent without an agents section names the connection', () => {
    assert.match(problems(withAgent((i) => delete i.agents)).join('\n'), /connections\.0\.targets: connection "demo" is served via agent/);
  });

  test('cleartext tunnels off loopback are refused; with TLS they are fine', () => {
    assert.match(problems(withAgent((i) => (i.agents = { listen: { host: '0.0.0.0' } }))).join('\n'), /agents\.tls: .*cleartext is allowed only on loopback/);
    assert.equal(withAgent((i) => (i.agents = { listen: { host: '0.0.0.0' }, tls: { cert_file: 'c.pem', key_file: 'k.pem' } })).success, true);
  });

  test('a via-agent target stands alone and has no url', () => {
    assert.match(problems(withAgent((i) => ((i.connections![0] as Record<string, unknown>).targets = [{ via: 'agent' }, { url: 'http://127.0.0.1:3' }]))).join('\n'), /stands alone/);
    assert.match(problems(withAgent((i) => ((i.connections![0] as Record<string, unknown>).targets = [{ via: 'agent', url: 'http://127.0.0.1:3' }]))).join('\n'), /either `url` or `via: agent`/);
  });

  test('queue bounds have defaults and accept durations', () => {
    const result = withAgent((i) => Object.assign(i.connections![0]!, { max_queued: 10, queue_timeout: '2s' }));
    assert.equal(result.data!.connections[0]!.max_queued, 10);
    assert.equal(result.data!.connections[0]!.queue_timeout, 2000);
  });

  test('cleartext routing off loopback is refused; routing needs a long secret, and an advertised address when bound to every interface', () => {
    const secret = 'x'.repeat(32);
    assert.equal(withAgent((i) => (i.agents = { routing: { secret } })).success, true);
    assert.match(problems(withAgent((i) => (i.agents = { routing: { secret: 'short' } }))).join('\n'), /agents\.routing\.secret: must be at least 32 characters/);
    assert.match(problems(withAgent((i) => (i.agents = { routing: { secret, listen: { host: '10.0.0.5' } } }))).join('\n'), /agents\.routing\.tls: .*needs TLS/);
    assert.match(
      problems(withAgent((i) => (i.agents = { routing: { secret, listen: { host: '0.0.0.0' }, tls: { cert_file: 'c', key_file: 'k' } } }))).join('\n'),
      /agents\.routing\.advertise_url: .*need advertise_url/,
    );
    assert.match(problems(withAgent((i) => (i.agents = { routing: { secret, lease: '100ms' } }))).join('\n'), /agents\.routing\.lease: must be at least 1s/);
    assert.match(problems(withAgent((i) => (i.agents = { routing: { secret, extra: 1 } as never }))).join('\n'), /agents\.routing/);
  });
});
