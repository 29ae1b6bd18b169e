// The fingerprint is what ties an approval to its request: anything that
// changes what the model would be asked, or by whom, must change it; a
// client serialising the same JSON differently must not.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canonicalJson, requestFingerprint, type FingerprintInput } from '../../src/approvals/fingerprint.js';

const base: FingerprintInput = {
  issuer: 'https://idp.example.com',
  subject: 'alice',
  connection: 'vllm-prod',
  model: 'llama-70b',
  operation: 'chat',
  body: {
    model: 'llama-70b',
    messages: [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'summarise the merger memo' },
    ],
    temperature: 0.2,
    max_tokens: 256,
    tools: [{ type: 'function', function: { name: 'search', parameters: { type: 'object', properties: { q: { type: 'string' } } } } }],
    stream: false,
  },
};

const fp = (input: FingerprintInput): string => requestFingerprint(input);
const withBody = (change: (body: Record<string, unknown>) => void): FingerprintInput => {
  const body = structuredClone(base.body) as Record<string, unknown>;
  change(body);
  return { ...base, body };
};

describe('requestFingerprint', () => {
  const changes: Array<[string, FingerprintInput]> = [
    ['issuer', { ...base, issuer: 'https://other-idp.example.com' }],
    ['subject', { ...base, subject: 'bob' }],
    ['connection', { ...base, connection: 'vllm-staging' }],
    ['model', { ...base, model: 'llama-8b' }],
    ['operation', { ...base, operation: 'completion' }],
    ['the model as sent (an alias)', withBody((b) => (b.model = 'llama'))],
    ['the user prompt', withBody((b) => ((b.messages as Array<{ content: string }>)[1]!.content = 'summarise the merger memo.'))],
    ['the system prompt', withBody((b) => ((b.messages as Array<{ content: string }>)[0]!.content = 'be verbose'))],
    ['a role', withBody((b) => ((b.messages as Array<{ role: string }>)[0]!.role = 'user'))],
    ['message order', withBody((b) => (b.messages as unknown[]).reverse())],
    ['an added message', withBody((b) => (b.messages as unknown[]).push({ role: 'user', content: 'and more' }))],
    ['temperature', withBody((b) => (b.temperature = 0.3))],
    ['temperature removed', withBody((b) => delete b.temperature)],
    ['max_tokens', withBody((b) => (b.max_tokens = 4096))],
    ['tools', withBody((b) => ((b.tools as Array<{ function: { name: string } }>)[0]!.function.name = 'delete_everything'))],
    ['tools removed', withBody((b) => delete b.tools)],
    ['a tool parameter schema', withBody((b) => ((b.tools as Array<{ function: { parameters: { properties: Record<string, unknown> } } }>)[0]!.function.parameters.properties.path = { type: 'string' }))],
    ['stream', withBody((b) => (b.stream = true))],
    ['an unknown parameter', withBody((b) => (b.seed = 7))],
    ['a number for its string', withBody((b) => (b.max_tokens = '256'))],
    ['null for absent', withBody((b) => (b.user = null))],
  ];
  for (const [what, changed] of changes) {
    test(`changes with ${what}`, () => assert.notEqual(fp(changed), fp(base)));
  }

  test('all those changes give distinct fingerprints', () => {
    const all = new Set(changes.map(([, input]) => fp(input)));
    assert.equal(all.size, changes.length);
  });

  test('does not change with key order, at any depth', () => {
    const body = base.body as Record<string, unknown>;
    const reordered = Object.fromEntries(Object.entries(body).reverse());
    reordered.messages = (body.messages as Array<Record<string, unknown>>).map((m) => Object.fromEntries(Object.entries(m).reverse()));
    reordered.tools = JSON.parse(JSON.stringify(body.tools, (_k, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).reverse()) : v)));
    assert.equal(fp({ ...base, body: reordered }), fp(base));
  });

  test('does not change with how the JSON was spaced (it is parsed first)', () => {
    const spaced = JSON.parse(JSON.stringify(base.body, null, 4)) as unknown;
    assert.equal(fp({ ...base, body: spaced }), fp(base));
  });

  test('is stable for the same input', () => {
    assert.equal(fp(structuredClone(base)), fp(base));
    assert.match(fp(base), /^[A-Za-z0-9_-]{43}$/, 'a base64url SHA-256');
  });

  test('fields cannot be shifted into one another', () => {
    // Joined naively, "a|bc" and "ab|c" would collide.
    assert.notEqual(fp({ ...base, issuer: 'https://idp.example.com/a', subject: 'lice' }), fp({ ...base, issuer: 'https://idp.example.com/', subject: 'alice' }));
    assert.notEqual(fp({ ...base, connection: 'vllm', model: '-prodllama-70b' }), fp(base));
  });

  test('canonicalJson sorts keys at every level and keeps array order', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [2, 1], c: null } }), '{"a":{"c":null,"d":[2,1]},"b":1}');
  });
});
