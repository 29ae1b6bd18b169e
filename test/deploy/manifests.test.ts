// The deployment files parse, and everything they tell modelgate is real:
// their configuration passes the gateway's own schema, and every command
// line uses an existing command and existing flags. helm and hadolint are not
// in this machine's package sources (`apt-cache policy helm hadolint`: no
// candidate), so the chart is rendered here by helm-render.ts, strict about
// every `.Values` path, and the objects it yields are checked against each
// other and against the configuration the pods get.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parse as parseYaml, parseAllDocuments, stringify } from 'yaml';
import { agentCommand } from '../../src/cli/agent.js';
import type { Command } from '../../src/cli/command.js';
import { gatewayCommand } from '../../src/cli/gateway.js';
import { chooseWorkers } from '../../src/cli/workers.js';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { HelmChart } from './helm-render.js';

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
    // The addon that gives memory back after a burst (src/ops/native-memory.ts): built by package.json's install
    // script, which `npm ci --ignore-scripts` skipped, and carried to where dist/ops loads it from.
    assert.match(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).scripts.install, /node-gyp rebuild --directory native\/release-memory/);
    assert.match(dockerfile, /^COPY native \.\/native$/m);
    assert.match(dockerfile, /&& npm run install$/m);
    assert.match(dockerfile, /^COPY --from=build .*\/app\/native\/release-memory\/build\/Release\/release_memory\.node \.\/native\/release-memory\/build\/Release\/$/m);
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

  test('Helm: every template renders with the chart values (each .Values path exists), parses, and the objects agree with each other and with the config the pods get', () => {
    const dir = 'helm/modelgate/';
    const files = Object.fromEntries(readdirSync(new URL(`${dir}templates/`, DEPLOY)).map((f) => [f, read(`${dir}templates/${f}`)]));
    const chart = new HelmChart(files);
    const meta = parseYaml(read(`${dir}Chart.yaml`)) as Record<string, unknown>;
    // Helm hands Chart.yaml to templates with capitalised keys (.Chart.AppVersion).
    const chartRoot = Object.fromEntries(Object.entries(meta).map(([k, v]) => [k[0]!.toUpperCase() + k.slice(1), v]));
    type K8s = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; spec?: any; data?: Record<string, string>; stringData?: Record<string, string> };
    const render = (change: (values: any) => void = () => {}): K8s[] => {
      const values = parseYaml(read(`${dir}values.yaml`)) as any;
      change(values);
      const objects: K8s[] = [];
      for (const file of Object.keys(files).filter((f) => !f.endsWith('.tpl'))) {
        for (const doc of parseAllDocuments(chart.render(file, { Values: values, Release: { Name: 'rel' }, Chart: chartRoot }))) {
          assert.deepEqual(doc.errors, [], `${file} renders to YAML`);
          const object = doc.toJS() as K8s | null;
          if (object === null) continue;
          assert.ok(object.apiVersion && object.kind && object.metadata?.name, `${file}: apiVersion, kind and metadata.name`);
          objects.push(object);
        }
      }
      return objects;
    };
    const find = (objects: K8s[], kind: string, name?: string) => objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
    const subset = (small: Record<string, string>, big: Record<string, string>) => Object.entries(small).every(([k, v]) => big[k] === v);

    for (const variant of [
      { workers: 1, autoscaling: true, example: false, agent: true },
      { workers: 2, autoscaling: false, example: true, agent: false },
    ]) {
      const objects = render((v) => {
        v.gateway.workers = variant.workers;
        v.gateway.autoscaling.enabled = variant.autoscaling;
        v.secrets.createExample = variant.example;
        v.agent.enabled = variant.agent;
      });
      const where = JSON.stringify(variant);
      const values = parseYaml(read(`${dir}values.yaml`)) as any;
      const [configMap] = find(objects, 'ConfigMap');
      const config = parseConfig(configMap!.data!['modelgate.yaml']!, `${where} ConfigMap`, ENV);
      const [gateway, ...otherGateways] = find(objects, 'Deployment').filter((d) => d.spec.template.metadata.labels['app.kubernetes.io/component'] === 'gateway');
      assert.ok(gateway && otherGateways.length === 0, `${where}: one gateway Deployment`);
      const pod = gateway.spec.template;
      const container = pod.spec.containers[0];
      const ports = new Map<string, number>(container.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]));

      // Selectors select the gateway's pods.
      assert.ok(subset(gateway.spec.selector.matchLabels, pod.metadata.labels), `${where}: the Deployment selects its pods`);
      const [service] = find(objects, 'Service');
      assert.ok(subset(service!.spec.selector, pod.metadata.labels), `${where}: the Service selects the gateway pods`);
      for (const p of service!.spec.ports) assert.ok(ports.has(p.targetPort), `${where}: Service targetPort ${p.targetPort} is a container port`);
      const [pdb] = find(objects, 'PodDisruptionBudget');
      assert.ok(subset(pdb!.spec.selector.matchLabels, pod.metadata.labels), `${where}: the PDB covers the gateway pods`);
      // The HPA owns the replica count when on.
      const hpa = find(objects, 'HorizontalPodAutoscaler');
      assert.equal(hpa.length, variant.autoscaling ? 1 : 0);
      if (variant.autoscaling) assert.deepEqual([hpa[0]!.spec.scaleTargetRef.kind, hpa[0]!.spec.scaleTargetRef.name], ['Deployment', gateway.metadata.name]);
      assert.equal(gateway.spec.replicas, variant.autoscaling ? undefined : values.gateway.replicas, `${where}: replicas set only without the HPA`);

      // The container listens where the configuration says, one routing port per worker, and its probes use its ports.
      assert.equal(ports.get('http'), config.server.port);
      assert.equal(ports.get('agents'), config.agents!.listen.port);
      for (let i = 0; i < variant.workers; i++) assert.equal(ports.get(`routing-${i}`), config.agents!.routing!.listen.port + i, `${where}: worker ${i}'s routing port`);
      assert.equal(ports.has(`routing-${variant.workers}`), false);
      assert.deepEqual([container.readinessProbe.httpGet.path, ports.has(container.readinessProbe.httpGet.port)], ['/readyz', true]);
      assert.ok(ports.has(container.livenessProbe.httpGet.port));
      checkCommandLine(container.args, `${where} gateway args`);
      assert.equal(container.args[container.args.indexOf('--workers') + 1], String(variant.workers));
      assert.ok(pod.spec.terminationGracePeriodSeconds * 1000 > config.server.shutdown_grace, `${where}: the pod outlives the drain`);

      // Every mount has its volume; the config file is the ConfigMap's; TLS files sit in mounted Secrets.
      const volumes = new Map<string, any>(pod.spec.volumes.map((v: { name: string }) => [v.name, v]));
      const mounts = container.volumeMounts as Array<{ name: string; mountPath: string; subPath?: string }>;
      for (const m of mounts) assert.ok(volumes.has(m.name), `${where}: volume ${m.name}`);
      const configMount = mounts.find((m) => m.name === 'config')!;
      assert.equal(volumes.get('config').configMap.name, configMap!.metadata.name);
      assert.equal(container.args[container.args.indexOf('--config') + 1], configMount.mountPath);
      const secretMount = (file: string) => mounts.find((m) => file.startsWith(`${m.mountPath}/`) && volumes.get(m.name)?.secret);
      for (const file of [config.agents!.tls!.cert_file, config.agents!.tls!.key_file, config.agents!.routing!.tls!.cert_file, config.agents!.routing!.tls!.key_file, config.agents!.routing!.tls!.ca_file!]) {
        assert.ok(secretMount(file), `${where}: ${file} is in a mounted Secret`);
      }
      assert.equal(container.envFrom[0].secretRef.name, values.secrets.env);

      // The example Secret, when rendered, has every variable the configuration reads from the environment.
      const secrets = find(objects, 'Secret');
      assert.equal(secrets.length, variant.example ? 1 : 0);
      if (variant.example) {
        const wanted = [...configMap!.data!['modelgate.yaml']!.matchAll(/\$\{([A-Z_]+)\}/g)].map((m) => m[1]!).filter((n) => n !== 'POD_IP');
        for (const name of new Set(wanted)) assert.ok(secrets[0]!.stringData![name], `${where}: the example Secret sets ${name}`);
        assert.ok(secrets[0]!.stringData!.MODELGATE_ROUTING_SECRET!.length >= 32);
      }

      // The agent serves the agent-served connections with its key from the named Secret.
      const agent = find(objects, 'Deployment').find((d) => d.spec.template.metadata.labels['app.kubernetes.io/component'] === 'agent');
      assert.equal(Boolean(agent), variant.agent);
      if (agent) {
        const agentContainer = agent.spec.template.spec.containers[0];
        checkCommandLine(agentContainer.args, `${where} agent args`);
        const served = agentContainer.args.flatMap((a: string, i: number) => (agentContainer.args[i - 1] === '--serve' ? [a.split('=')[0]] : []));
        assert.deepEqual(served, config.connections.filter((c) => c.targets[0]!.via === 'agent').map((c) => c.name));
        const keyFile = agentContainer.args[agentContainer.args.indexOf('--key-file') + 1];
        const keyMount = agentContainer.volumeMounts.find((m: { mountPath: string }) => keyFile.startsWith(`${m.mountPath}/`));
        const keyVolume = agent.spec.template.spec.volumes.find((v: { name: string }) => v.name === keyMount.name);
        assert.equal(keyVolume.secret.secretName, values.agent.keySecret);
        assert.ok(subset(agent.spec.selector.matchLabels, agent.spec.template.metadata.labels));
      }
    }
    // The renderer is strict: a template naming a setting values.yaml does not have fails, as a typo in the chart would.
    assert.throws(() => new HelmChart({ 't.yaml': 'x: {{ .Values.gateway.routingPorts }}' }).render('t.yaml', { Values: parseYaml(read(`${dir}values.yaml`)) }), /no "routingPorts"/);
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
