// Identity configuration mistakes are start-up errors with the key path,
// not surprises at the first login.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfig } from '../../src/config/load.js';

const base = `
identity:
  issuers:
    - { issuer: https://idp.example.com, audience: modelgate }
connections:
  - { name: c, url: "http://127.0.0.1:1", models: [{ name: m }] }
`;

function problems(extra: string): string {
  try {
    parseConfig(base.replace('identity:\n', `identity:\n${extra}`), 'modelgate.yaml');
    return '';
  } catch (err) {
    return (err as Error).message;
  }
}

describe('identity configuration', () => {
  test('defaults: memory state, 1 h gateway tokens rotating daily, 1 h sessions', () => {
    const config = parseConfig(base, 'modelgate.yaml');
    assert.deepEqual(config.identity.state, { store: 'memory' });
    assert.equal(config.identity.gateway_tokens.lifetime, 3_600_000);
    assert.equal(config.identity.gateway_tokens.key_rotation, 86_400_000);
    assert.equal(config.identity.web.session_lifetime, 3_600_000);
    assert.equal(config.identity.login, undefined);
  });

  test('the login issuer must be a trusted issuer', () => {
    assert.match(problems('  login: { issuer: https://other.example.com }\n'), /identity\.login\.issuer: "https:\/\/other\.example\.com" is not one of identity\.issuers/);
  });

  test('the web OIDC issuer must be a trusted issuer', () => {
    assert.match(
      problems('  web: { oidc: { issuer: https://other.example.com, client_id: c, client_secret: s } }\n'),
      /identity\.web\.oidc\.issuer: .* is not one of identity\.issuers/,
    );
  });

  test('max_token_lifetime below 1 h: gateway tokens default to it instead of failing on a key the file does not have', () => {
    const config = parseConfig(base.replace('identity:\n', 'identity:\n  max_token_lifetime: 15m\n'), 'modelgate.yaml');
    assert.equal(config.identity.gateway_tokens.lifetime, 15 * 60_000);
  });

  test('gateway tokens may not outlive what the gateway itself accepts', () => {
    assert.match(problems('  gateway_tokens: { lifetime: 2h }\n'), /identity\.gateway_tokens\.lifetime: is longer than identity\.max_token_lifetime/);
  });

  test('the gateway signs only with an algorithm it accepts', () => {
    assert.match(problems('  algorithms: [RS256]\n'), /identity\.gateway_tokens\.algorithm: ES256 is not in identity\.algorithms/);
  });

  test('pre-publication must be shorter than rotation', () => {
    assert.match(problems('  gateway_tokens: { key_rotation: 10m, key_prepublish: 10m }\n'), /key_prepublish: must be shorter than key_rotation/);
  });

  test('a PostgreSQL schema name is an identifier, never SQL', () => {
    assert.match(problems('  state: { store: postgres, url: "postgres://x", schema: "public; drop table x" }\n'), /identity\.state\.schema/);
  });

  test('unknown keys in the new sections are errors', () => {
    assert.match(problems('  gateway_tokens: { lifetme: 1h }\n'), /unknown key "lifetme"/);
  });
});
