// The deployment files parse, and everything they tell modelgate is real:
// their configuration passes the gateway's own schema, and every command
// line uses an existing command and existing flags. (No helm or hadolint on
// this machine: templates are checked for what they must contain.)
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parse as parseYaml, stringify } from 'yaml';
import { agentCommand } from '../../src/cli/agent.js';
import type { Command } from '../../src/cli/command.js';
import { gatewayCommand } from '../../src/cli/gateway.js';
import { chooseWorkers } from '../../src/cli/workers.js';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';

const DEPLOY = new URL('../../deploy/', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, DEPLOY), 'utf8');
const ROUTING_SECRET = 'routing-secret-from-the-environment-0123456789';
const ENV = {
  MODELGATE_PUBLIC_URL: 'https://gateway.example.com',
  OIDC_ISSUER: 'https://idp.example.com/',
  DATABASE_URL: 'postgres://u:p@db:5432/modelgate',
  VLLM_API_KEY: 'k',
  MODELGATE_ROUTING_SECRET: ROUTING_SECRET,
  POD_IP: '10.1.2.3',
};
const COMMANDS: Record<string, Command> = { gateway: gatewayCommand, agent: agentCommand };

/** Every `--flag` of a modelgate command line is one the command declares. */
function checkCommandLine(args: string[], where: string): void {
  const [name, ...rest] = args;
  const command = COMMANDS[name!];
  assert.ok(command, `${where}: unknown command "${name}"`);
  for (const arg of rest) {
    if (!arg.startsWith('--')) continue;
    const flag = arg.slice(2).split('=')[0]!;
    assert.ok(flag in command.options, `${where}: "${name}" has no --${flag}`);
  }
}

/**
 * agents.routing is there, its secret comes from the environment (the raw
 * file says `${MODELGATE_ROUTING_SECRET}`, never a value), and every core
 * can be used: no state is process-local and workers reach each other's agents.
 */
function checkRouting(config: Config, raw: unknown, where: string): void {
  const routing = config.agents?.routing;
  assert.ok(routing, `${where}: agents.routing is configured`);
  assert.equal(routing.secret, ROUTING_SECRET, `${where}: the routing secret is substituted from the environment`);
  assert.equal((raw as { agents: { routing: { secret: string } } }).agents.routing.secret, '${MODELGATE_ROUTING_SECRET}', `${where}: the routing secret is never inline`);
  assert.deepEqual(chooseWorkers(undefined, config, 4), { workers: 4 }, `${where}: one worker per core, no process-local state`);
}

describe('deployment files', () => {
  test('the example configuration passes the gateway schema', () => {
    const config = parseConfig(read('modelgate.yaml'), 'deploy/modelgate.yaml', ENV);
    assert.equal(config.connections[0]!.targets[0]!.via, 'agent');
    assert.equal(config.agents!.listen.port, 8443);
    // Loopback: the workers of one host (compose, systemd) route to each other without TLS.
    assert.equal(config.agents!.routing!.listen.host, '127.0.0.1');
    checkRouting(config, parseYaml(read('modelgate.yaml')), 'deploy/modelgate.yaml');
  });

  test('the Dockerfile is multi-stage, builds the native modules, and runs as non-root', () => {
    const dockerfile = read('Dockerfile');
    assert.equal(dockerfile.match(/^FROM /gm)!.length, 2);
    assert.match(dockerfile, /npm rebuild better-sqlite3 re2/);
    assert.match(dockerfile, /^USER node$/m);
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
    checkCommandLine(cmd, 'Dockerfile CMD');
  });

  test('compose: gateway, PostgreSQL, and an agent beside the model on a network with no way in', () => {
    const compose = parseYaml(read('compose.yaml')) as {
      services: Record<string, { command?: string[]; ports?: string[]; networks?: string[]; environment?: Record<string, string>; volumes?: string[] }>;
      networks: Record<string, { internal?: boolean } | null>;
    };
    assert.deepEqual(Object.keys(compose.services).sort(), ['agent', 'gateway', 'model', 'postgres']);
    checkCommandLine(compose.services.gateway!.command!, 'compose gateway');
    checkCommandLine(compose.services.agent!.command!, 'compose agent');
    assert.equal(compose.networks.model?.internal, true);
    assert.equal(compose.services.model!.ports, undefined, 'the model publishes no port');
    assert.equal(compose.services.agent!.ports, undefined, 'the agent publishes no port');
    // The gateway runs the config checked above, with the routing secret from the operator's environment, and publishes no routing port.
    const gateway = compose.services.gateway!;
    assert.ok(gateway.volumes!.includes('./modelgate.yaml:/etc/modelgate/modelgate.yaml:ro'));
    assert.match(gateway.environment!.MODELGATE_ROUTING_SECRET!, /^\$\{MODELGATE_ROUTING_SECRET:\?[^}]+\}$/);
    assert.ok(!gateway.ports!.some((p) => p.includes('8444')), 'the routing listener is not published');
  });

  test('Helm: values parse, the embedded config passes the schema, templates hold readiness, PDB, HPA, Secrets and the agent', () => {
    const chart = parseYaml(read('helm/modelgate/Chart.yaml')) as { apiVersion: string; name: string };
    assert.equal(chart.apiVersion, 'v2');
    const values = parseYaml(read('helm/modelgate/values.yaml')) as {
      config: unknown;
      agent: { serve: Array<{ name: string }> };
      gateway: { workers: number; routingPort: number };
      secrets: { env: string; routingTls: string };
    };
    const config = parseConfig(stringify(values.config), 'values.yaml#config', ENV);
    checkRouting(config, values.config, 'values.yaml#config');
    assert.deepEqual(values.agent.serve.map((s) => s.name), config.connections.filter((c) => c.targets[0]!.via === 'agent').map((c) => c.name));
    const templates = Object.fromEntries(readdirSync(new URL('helm/modelgate/templates/', DEPLOY)).map((f) => [f, read(`helm/modelgate/templates/${f}`)]));
    assert.match(templates['gateway-deployment.yaml']!, /readinessProbe:\s*\n\s*httpGet: \{ path: \/readyz/);
    assert.match(templates['gateway-deployment.yaml']!, /secretRef/);
    assert.match(templates['pdb.yaml']!, /kind: PodDisruptionBudget/);
    assert.match(templates['hpa.yaml']!, /kind: HorizontalPodAutoscaler/);
    assert.match(templates['agent-deployment.yaml']!, /secretName: \{\{ \.Values\.agent\.keySecret \}\}/);
    const agentArgs = [...templates['agent-deployment.yaml']!.matchAll(/^\s+- (--[a-z-]+)$/gm)].map((m) => m[1]!);
    checkCommandLine(['agent', ...agentArgs], 'helm agent');

    // Routing between pods: the gateway's command line, the pod IP it advertises, the secret from the env Secret, TLS from its own Secret.
    const deployment = templates['gateway-deployment.yaml']!;
    checkCommandLine(JSON.parse(/args: (\[.*\])$/m.exec(deployment)![1]!.replace(/\{\{ [^}]+ \}\}/g, '1')) as string[], 'helm gateway');
    const routing = config.agents!.routing!;
    assert.equal(routing.advertise_url, `https://${ENV.POD_IP}:${routing.listen.port}`);
    assert.match(deployment, /- name: POD_IP\s*\n\s*valueFrom: \{ fieldRef: \{ fieldPath: status\.podIP \} \}/);
    assert.equal(values.gateway.routingPort, routing.listen.port, 'the pod declares the port routing listens on');
    assert.match(deployment, /containerPort: \{\{ add \$\.Values\.gateway\.routingPort \$i \}\}/, 'one routing port per worker');
    assert.match(deployment, /secretRef: \{ name: \{\{ \.Values\.secrets\.env \}\} \}/, 'MODELGATE_ROUTING_SECRET comes from the env Secret');
    const mount = /\{ name: routing-tls, mountPath: (\S+), readOnly: true \}/.exec(deployment)![1]!;
    for (const file of [routing.tls!.cert_file, routing.tls!.key_file, routing.tls!.ca_file!]) assert.ok(file.startsWith(`${mount}/`), `${file} is in the routing-tls volume`);
    assert.match(deployment, /- name: routing-tls\s*\n\s*secret: \{ secretName: \{\{ \.Values\.secrets\.routingTls \}\} \}/);
    assert.ok(routing.tls!.server_name, 'pods are reached by IP: certificates are checked against one name');
    assert.ok(!templates['service.yaml']!.includes(String(routing.listen.port)) && !templates['service.yaml']!.includes('routing'), 'no Service exposes the routing listener');
    assert.match(templates['secret.yaml']!, /MODELGATE_ROUTING_SECRET: \{\{ randAlphaNum 48 \| quote \}\}/, 'the example Secret makes a random routing secret');
  });

  test('systemd units and nginx examples use real commands and flags', () => {
    for (const unit of ['systemd/modelgate.service', 'systemd/modelgate-agent.service']) {
      const exec = /^ExecStart=\S+ \S+modelgate\.js (.*)$/m.exec(read(unit))![1]!.split(/\s+/);
      checkCommandLine(exec, unit);
    }
    assert.match(read('nginx/modelgate.conf'), /proxy_buffering off;/);
    assert.match(read('nginx/modelgate-agents.stream.conf'), /^stream \{/m);
  });
});
