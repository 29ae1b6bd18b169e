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
import { parseConfig } from '../../src/config/load.js';

const DEPLOY = new URL('../../deploy/', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, DEPLOY), 'utf8');
const ENV = { MODELGATE_PUBLIC_URL: 'https://gateway.example.com', OIDC_ISSUER: 'https://idp.example.com/', DATABASE_URL: 'postgres://u:p@db:5432/modelgate', VLLM_API_KEY: 'k' };
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

describe('deployment files', () => {
  test('the example configuration passes the gateway schema', () => {
    const config = parseConfig(read('modelgate.yaml'), 'deploy/modelgate.yaml', ENV);
    assert.equal(config.connections[0]!.targets[0]!.via, 'agent');
    assert.equal(config.agents!.listen.port, 8443);
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
    const compose = parseYaml(read('compose.yaml')) as { services: Record<string, { command?: string[]; ports?: string[]; networks?: string[] }>; networks: Record<string, { internal?: boolean } | null> };
    assert.deepEqual(Object.keys(compose.services).sort(), ['agent', 'gateway', 'model', 'postgres']);
    checkCommandLine(compose.services.gateway!.command!, 'compose gateway');
    checkCommandLine(compose.services.agent!.command!, 'compose agent');
    assert.equal(compose.networks.model?.internal, true);
    assert.equal(compose.services.model!.ports, undefined, 'the model publishes no port');
    assert.equal(compose.services.agent!.ports, undefined, 'the agent publishes no port');
  });

  test('Helm: values parse, the embedded config passes the schema, templates hold readiness, PDB, HPA, Secrets and the agent', () => {
    const chart = parseYaml(read('helm/modelgate/Chart.yaml')) as { apiVersion: string; name: string };
    assert.equal(chart.apiVersion, 'v2');
    const values = parseYaml(read('helm/modelgate/values.yaml')) as { config: unknown; agent: { serve: Array<{ name: string }> } };
    const config = parseConfig(stringify(values.config), 'values.yaml#config', ENV);
    assert.deepEqual(values.agent.serve.map((s) => s.name), config.connections.filter((c) => c.targets[0]!.via === 'agent').map((c) => c.name));
    const templates = Object.fromEntries(readdirSync(new URL('helm/modelgate/templates/', DEPLOY)).map((f) => [f, read(`helm/modelgate/templates/${f}`)]));
    assert.match(templates['gateway-deployment.yaml']!, /readinessProbe:\s*\n\s*httpGet: \{ path: \/readyz/);
    assert.match(templates['gateway-deployment.yaml']!, /secretRef/);
    assert.match(templates['pdb.yaml']!, /kind: PodDisruptionBudget/);
    assert.match(templates['hpa.yaml']!, /kind: HorizontalPodAutoscaler/);
    assert.match(templates['agent-deployment.yaml']!, /secretName: \{\{ \.Values\.agent\.keySecret \}\}/);
    const agentArgs = [...templates['agent-deployment.yaml']!.matchAll(/^\s+- (--[a-z-]+)$/gm)].map((m) => m[1]!);
    checkCommandLine(['agent', ...agentArgs], 'helm agent');
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
