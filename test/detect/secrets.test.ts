import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { base62, crc32 } from '../../src/detect/secrets/crc32.js';
import { BASE62, BASE64, randomChars, spansOf, valuesOf } from './helpers.js';

const jwtPart = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
const JWT = `${jwtPart({ alg: 'RS256', typ: 'JWT' })}.${jwtPart({ sub: 'alice', iat: 1700000000 })}.${randomChars(BASE62, 43, 1)}`;

describe('provider keys', () => {
  const cases: Array<[string, string, string]> = [
    ['AWS_ACCESS_KEY', 'AKIA5T66TBPVOMYZAWKP', 'The key AKIA5T66TBPVOMYZAWKP was found.'],
    ['GITHUB_TOKEN', `ghp_${randomChars(BASE62, 36, 2)}`, 'export GH=%s'],
    ['GITHUB_TOKEN', `github_pat_${randomChars(BASE62, 22, 3)}_${randomChars(BASE62, 59, 4)}`, 'token %s'],
    ['GITLAB_TOKEN', `glpat-${randomChars(BASE62, 20, 5)}`, 'CI_TOKEN=%s'],
    ['SLACK_TOKEN', `xoxb-123456789012-1234567890123-${randomChars(BASE62, 24, 6)}`, 'bot %s'],
    ['STRIPE_KEY', `sk_live_${randomChars(BASE62, 24, 7)}`, 'stripe: %s'],
    ['STRIPE_KEY', `rk_live_${randomChars(BASE62, 24, 8)}`, 'restricted %s'],
    ['OPENAI_KEY', `sk-proj-${randomChars(`${BASE62}_-`, 48, 9)}`, 'OPENAI_API_KEY=%s'],
    ['OPENAI_KEY', `sk-${randomChars(BASE62, 20, 10)}T3BlbkFJ${randomChars(BASE62, 20, 11)}`, 'key=%s'],
    ['ANTHROPIC_KEY', `sk-ant-api03-${randomChars(`${BASE62}_-`, 93, 12)}AA`, 'client = Anthropic(api_key="%s")'],
    ['GOOGLE_API_KEY', `AIza${randomChars(`${BASE62}_-`, 35, 13)}`, 'maps key %s in config.js'],
    ['AZURE_KEY', `${randomChars(BASE64, 86, 14)}==`, 'DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=%s;EndpointSuffix=core.windows.net'],
    ['AZURE_KEY', `abc8Q~${randomChars(`${BASE62}_~.-`, 34, 15)}`, 'client secret %s'],
    ['JWT', JWT, 'Authorization: Bearer %s'],
  ];
  for (const [type, secret, template] of cases) {
    it(`finds ${type} ${secret.slice(0, 12)}...`, () => {
      assert.deepEqual(valuesOf(template.replace('%s', secret), type as never), [secret]);
    });
  }

  it('boosts a GitHub token whose CRC-32 checksum holds', () => {
    const body = randomChars(BASE62, 30, 20);
    const token = `ghp_${body}${base62(crc32(body), '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 6)}`;
    const [span] = spansOf(`t=${token}`, 'GITHUB_TOKEN');
    assert.equal(span?.validator, 'prefix+crc32');
    assert.equal(span?.confidence, 0.99);
  });
});

describe('AWS secret access key', () => {
  const secret = randomChars(BASE64, 40, 21);
  it('is found next to its name', () => {
    assert.deepEqual(valuesOf(`aws_secret_access_key = ${secret}`, 'AWS_SECRET_KEY'), [secret]);
    assert.deepEqual(valuesOf(`{"SecretAccessKey": "${secret}"}`, 'AWS_SECRET_KEY'), [secret]);
  });
  it('is found right after an access key id', () => {
    assert.deepEqual(valuesOf(`AKIA5T66TBPVOMYZAWKP,${secret}`, 'AWS_SECRET_KEY'), [secret]);
  });
  it('is not any 40-character string: git SHAs and unnamed strings are left alone', () => {
    assert.deepEqual(valuesOf(`Commit ${randomChars('0123456789abcdef', 40, 22)} touched the parser, see ${secret}`, 'AWS_SECRET_KEY'), []);
    assert.deepEqual(valuesOf(`aws_secret_access_key = ${randomChars('0123456789abcdef', 40, 23)}`, 'AWS_SECRET_KEY'), []);
  });
});

describe('JWT', () => {
  it('needs a JSON header with an algorithm', () => {
    const fake = `eyJ${randomChars(BASE62, 30, 24)}.eyJ${randomChars(BASE62, 30, 25)}.${randomChars(BASE62, 30, 26)}`;
    assert.deepEqual(valuesOf(`Bearer ${fake}`, 'JWT'), []);
  });
  it('accepts an unsigned token only with alg none', () => {
    const none = `${jwtPart({ alg: 'none' })}.${jwtPart({ sub: 'x' })}.`;
    assert.deepEqual(valuesOf(`t ${none} end`, 'JWT'), [none]);
  });
});

describe('private keys', () => {
  const body = Array.from({ length: 6 }, (_, i) => randomChars(BASE64, 64, 30 + i)).join('\n');
  const pem = `-----BEGIN RSA PRIVATE KEY-----\n${body}\n-----END RSA PRIVATE KEY-----`;
  it('reports the whole PEM block', () => {
    assert.deepEqual(valuesOf(`Here is the deploy key:\n${pem}\nuse it carefully.`, 'PRIVATE_KEY'), [pem]);
  });
  it('reports OpenSSH keys quoted in JSON with escaped newlines', () => {
    const quoted = pem.replaceAll('RSA', 'OPENSSH').replaceAll('\n', '\\n');
    assert.deepEqual(valuesOf(`{"key": "${quoted}"}`, 'PRIVATE_KEY'), [quoted]);
  });
  it('reports a truncated key up to the end of its body', () => {
    const truncated = `-----BEGIN PRIVATE KEY-----\n${body}`;
    assert.deepEqual(valuesOf(`${truncated}\n\nThat is all I have.`, 'PRIVATE_KEY'), [truncated]);
  });
  it('ignores placeholders and public keys', () => {
    assert.deepEqual(valuesOf('-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----', 'PRIVATE_KEY'), []);
    assert.deepEqual(valuesOf(`-----BEGIN PUBLIC KEY-----\n${body}\n-----END PUBLIC KEY-----`, 'PRIVATE_KEY'), []);
  });
});

describe('generic secrets', () => {
  it('reports high-entropy values assigned to secret-like keys', () => {
    assert.deepEqual(valuesOf('DB_PASSWORD=Xy7!kq9#Lm2$vB', 'GENERIC_SECRET'), ['Xy7!kq9#Lm2$vB']);
    assert.deepEqual(valuesOf('{"client_secret": "d8f7a6s5d4f3g2h1"}', 'GENERIC_SECRET'), ['d8f7a6s5d4f3g2h1']);
    assert.deepEqual(valuesOf('api_key: 9fJ2kLq8ZpX4', 'GENERIC_SECRET'), ['9fJ2kLq8ZpX4']);
  });
  it('reports credentials in Authorization headers and URLs', () => {
    assert.deepEqual(valuesOf('Authorization: Basic dXNlcjpzM2NyM3RQYXNz', 'GENERIC_SECRET'), ['dXNlcjpzM2NyM3RQYXNz']);
    assert.deepEqual(valuesOf('DATABASE_URL=postgres://app:s3cr3t-Pa55@db.internal:5432/app', 'GENERIC_SECRET'), ['s3cr3t-Pa55']);
  });
  it('does not report low-entropy values such as password=changeme', () => {
    assert.deepEqual(valuesOf('password=changeme', 'GENERIC_SECRET'), []);
    assert.deepEqual(valuesOf('password: aaaaaaaa1', 'GENERIC_SECRET'), []);
  });
  it('does not report references, placeholders, calls or prose', () => {
    const text = [
      'password = os.environ["DB_PASSWORD"]', 'token: ${GITHUB_TOKEN}', 'secret=<your-secret-here>', 'api_key = get_api_key()',
      'password = new_password', 'The password: it is the one I sent you', 'max_tokens: 4096', 'https://user:password@example.com',
    ].join('\n');
    assert.deepEqual(valuesOf(text, 'GENERIC_SECRET'), []);
  });
  it('skips names that describe a secret rather than hold one, and enum values', () => {
    const text = "token_endpoint_auth_method: 'client_secret_basic'\npassword_hash = 'x8Fq2Lm9Zp4W'\nmaxTokens: 40960000";
    assert.deepEqual(valuesOf(text, 'GENERIC_SECRET'), []);
  });
  it('stops a bare value at brackets, as in a Markdown badge URL', () => {
    assert.deepEqual(valuesOf('[![cov](https://codecov.io/gh/a/b/badge.svg?token=yZL6LtXkOA)](https://codecov.io)', 'GENERIC_SECRET'), ['yZL6LtXkOA']);
  });
  it('does not report stand-in passwords in documentation URLs', () => {
    assert.deepEqual(valuesOf("parse('postgres://someuser:somepassword@localhost/db') and redis://:authpassword@127.0.0.1", 'GENERIC_SECRET'), []);
  });
  it('leaves a provider key to its specific rule', () => {
    const key = `sk_live_${randomChars(BASE62, 24, 40)}`;
    assert.deepEqual(valuesOf(`STRIPE_SECRET_KEY=${key}`, 'STRIPE_KEY'), [key]);
    assert.deepEqual(valuesOf(`STRIPE_SECRET_KEY=${key}`, 'GENERIC_SECRET'), []);
  });
});

describe('near-misses', () => {
  it('does not flag git SHAs, UUIDs, versions, order numbers or placeholder keys', () => {
    const text = [
      `Commit ${randomChars('0123456789abcdef', 40, 50)} touched the parser.`,
      'Ticket id 3f2b1c4d-8e9a-4b7c-9d1e-2f3a4b5c6d7e closed.',
      'Build v2.14.3 fixed the regression.',
      'Order ORD-20240117 shipped today.',
      'Use a placeholder like sk-... or AKIA... or ghp_xxx or YOUR_API_KEY in docs.',
      `ghp_${'x'.repeat(36)} and AKIAXXXXXXXXXXXXXXXX and sk_live_${'0'.repeat(24)} and AKIAIOSFODNN7EXAMPLE`,
    ].join(' ');
    assert.deepEqual(valuesOf(text, 'GITHUB_TOKEN').concat(valuesOf(text, 'AWS_ACCESS_KEY'), valuesOf(text, 'STRIPE_KEY'), valuesOf(text, 'OPENAI_KEY')), []);
    assert.deepEqual(valuesOf(text, 'GENERIC_SECRET'), []);
    assert.deepEqual(valuesOf(text, 'IP_ADDRESS'), []);
    assert.deepEqual(valuesOf(text, 'PHONE'), []);
  });
});
