import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfigFile, parseConfig } from '../../src/config/load.js';

const minimal = `
identity:
  issuers:
    - issuer: https://idp.example.com
      audience: modelgate
connections:
  - name: vllm
    url: http://127.0.0.1:8000
    api_key: \${VLLM_KEY}
    models:
      - name: llama
access:
  - groups: [engineering]
    connections: [vllm]
`;

function problemsOf(text: string, env: Record<string, string> = { VLLM_KEY: 'k' }): string[] {
  try {
    parseConfig(text, 'modelgate.yaml', env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('configuration loading', () => {
  test('a minimal config gets safe defaults', () => {
    const config = parseConfig(minimal, 'modelgate.yaml', { VLLM_KEY: 'secret' });
    assert.equal(config.server.port, 8080);
    assert.equal(config.server.max_body_bytes, 4 * 1024 * 1024);
    assert.deepEqual(config.identity.algorithms, ['RS256', 'PS256', 'ES256', 'EdDSA']);
    assert.equal(config.identity.max_token_lifetime, 3_600_000);
    assert.equal(config.identity.issuers[0]!.require_groups, true);
    assert.deepEqual(config.identity.issuers[0]!.audience, ['modelgate']);
    assert.deepEqual(config.connections[0]!.targets, [{ url: 'http://127.0.0.1:8000', weight: 1 }]);
    assert.deepEqual(config.connections[0]!.credential, { header: 'authorization', value: 'Bearer secret' });
    assert.equal(config.connections[0]!.timeouts.idle, 120_000);
  });

  test('${ENV} substitution, defaults and escapes', () => {
    const text = minimal.replace('http://127.0.0.1:8000', '${UPSTREAM:-http://127.0.0.1:9000}').replace('${VLLM_KEY}', () => '"$${NOT_A_VAR}"');
    const config = parseConfig(text, 'modelgate.yaml', {});
    assert.equal(config.connections[0]!.targets[0]!.url, 'http://127.0.0.1:9000');
    assert.equal(config.connections[0]!.credential!.value, 'Bearer ${NOT_A_VAR}');
  });

  test('a missing environment variable names the key and line', () => {
    const [problem] = problemsOf(minimal, {});
    assert.equal(problem, 'modelgate.yaml:9:14: connections[0].api_key: environment variable VLLM_KEY is not set');
  });

  test('a secret containing YAML syntax cannot change the structure', () => {
    const config = parseConfig(minimal, 'modelgate.yaml', { VLLM_KEY: 'x\nadmin: true\n  - name: evil' });
    assert.equal(config.connections[0]!.credential!.value, 'Bearer x\nadmin: true\n  - name: evil');
  });

  test('an invalid value names the key and its line', () => {
    const problems = problemsOf(minimal.replace('http://127.0.0.1:8000', 'ftp://nope'));
    assert.deepEqual(problems, ['modelgate.yaml:8:10: connections[0].url: must be an http:// or https:// URL']);
  });

  test('an unknown key is named', () => {
    const problems = problemsOf(minimal.replace('    api_key:', '    api_kye: x\n    api_key:'));
    assert.deepEqual(problems, ['modelgate.yaml:9:14: connections[0].api_kye: unknown key "api_kye"']);
  });

  test('a bad duration is explained', () => {
    const problems = problemsOf(minimal.replace('identity:\n', 'identity:\n  clock_skew: soon\n'));
    assert.match(problems[0]!, /^modelgate\.yaml:3:15: identity\.clock_skew: "soon" is not a duration/);
  });

  test('HMAC and none are not accepted algorithms', () => {
    const problems = problemsOf(minimal.replace('identity:\n', 'identity:\n  algorithms: [RS256, HS256]\n'));
    assert.match(problems[0]!, /identity\.algorithms\[1\]/);
  });

  test('cross-references: access to an unknown connection, duplicate model names', () => {
    const text = minimal.replace('connections: [vllm]', 'connections: [vlm]') + `  - groups: [x]\n    connections: [vllm]\n`;
    assert.match(problemsOf(text)[0]!, /access\[0\]\.connections\[0\]: unknown connection "vlm"/);
    const duplicate = minimal.replace('      - name: llama', '      - name: llama\n      - name: other\n        aliases: [llama]');
    assert.match(problemsOf(duplicate)[0]!, /already served/);
  });

  test('a YAML syntax error points at its line', () => {
    assert.match(problemsOf('identity: [\n')[0]!, /^modelgate\.yaml:\d+:\d+: YAML syntax/);
  });

  test('url and targets are exclusive', () => {
    const text = minimal.replace('    url: http://127.0.0.1:8000', '    url: http://127.0.0.1:8000\n    targets: [{url: http://127.0.0.1:8001}]');
    assert.match(problemsOf(text)[0]!, /exactly one of `url` or `targets`/);
  });

  test('the shipped example validates', async () => {
    const path = fileURLToPath(new URL('../../examples/modelgate.yaml', import.meta.url));
    const config = await loadConfigFile(path, {
      VLLM_API_KEY: 'a',
      TGI_KEY: 'b',
      SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T0/B0/x',
      MODELGATE_WEBHOOK_SECRET: 'example-webhook-secret-0123456789',
    });
    assert.equal(config.connections.length, 3);
    assert.equal(config.approvals.webhooks.length, 2);
    assert.equal(config.connections[0]!.targets.length, 2);
  });

  test('an unreadable file is reported by path', async () => {
    await assert.rejects(loadConfigFile('/nonexistent/modelgate.yaml'), /\/nonexistent\/modelgate\.yaml: cannot read the file \(ENOENT\)/);
  });
});
