// The guardrails policy schema: defaults, what is rejected and why, and the
// standalone policy file form.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { INJECTION_THRESHOLD } from '../../src/detect/injection/score.js';
import { scannerOptionsFor } from '../../src/policy/guardrails.js';
import { guardrailsSchema, policyFileSchema, unknownConnectionReferences, type GuardrailsPolicyInput } from '../../src/policy/guardrails-schema.js';

const messages = (input: unknown): string[] => {
  const result = guardrailsSchema.safeParse(input);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('guardrails schema', () => {
  test('an empty section is valid and allows everything', () => {
    const policy = guardrailsSchema.parse({});
    assert.deepEqual(policy, { masking: { hash_length: 8, keep_last: 4 }, dictionaries: [], patterns: [], input: [], limits: [], output: [] });
  });

  test('a full policy file parses, with selectors resolved and defaults filled in', () => {
    const file = parseYaml(`
guardrails:
  masking:
    hash_key: "0123456789abcdef0123456789abcdef"
  dictionaries:
    - name: codenames
      terms: [bluebird, nightjar]
  patterns:
    - name: ticket_id
      regex: 'TCK-\\d{6}'
      max_length: 10
  input:
    - name: no-secrets
      detect: [secrets]
      action: block
    - name: mask-pii
      detect: [pii, dictionary.codenames, custom.ticket_id]
      action: mask
      strategy: hash
      groups: [contractors]
    - name: injection
      detect: [injection]
      action: require_approval
      threshold: 0.8
      roles: [user, tool]
  limits:
    - name: sizes
      max_prompt_chars: 20000
      max_tokens: 4096
      denied_params: [logit_bias]
      connections: [vllm]
  output:
    - name: out-pii
      mask: { types: [EMAIL, CREDIT_CARD], strategy: partial }
      end_stream_on: [PRIVATE_KEY]
`);
    const { guardrails } = policyFileSchema.parse(file);
    assert.deepEqual(guardrails.input[0]?.detect, [{ kind: 'category', category: 'secret' }]);
    assert.deepEqual(guardrails.input[1]?.detect, [
      { kind: 'category', category: 'pii' },
      { kind: 'rule', rule: 'dictionary.codenames' },
      { kind: 'rule', rule: 'custom.ticket_id' },
    ]);
    assert.equal(guardrails.input[0]?.strategy, 'placeholder');
    assert.equal(guardrails.input[2]?.threshold, 0.8);
    assert.equal(guardrails.input[0]?.threshold, INJECTION_THRESHOLD, "the detector's own default threshold");
    assert.equal(guardrails.output[0]?.mask?.strategy, 'partial');
    assert.equal(guardrails.patterns[0]?.flags, '');
    assert.deepEqual(scannerOptionsFor(guardrails), {
      dictionaries: { codenames: ['bluebird', 'nightjar'] },
      customPatterns: { ticket_id: { pattern: 'TCK-\\d{6}', flags: '', maxLength: 10, confidence: 0.8 } },
    });
  });

  test('mistakes are reported at their path, in words that say what to do', () => {
    const cases: Array<[GuardrailsPolicyInput | Record<string, unknown>, RegExp]> = [
      [{ input: [{ name: 'r', detect: ['EMAILS'], action: 'block' }] }, /input\.0\.detect\.0: "EMAILS" is not something to detect/],
      [{ input: [{ name: 'r', detect: ['injection'], action: 'mask' }] }, /input\.0\.action: a prompt injection cannot be masked/],
      [{ input: [{ name: 'r', detect: ['pii'], action: 'block', strategy: 'hash' }] }, /input\.0\.strategy: `strategy` applies only to `action: mask`/],
      [{ input: [{ name: 'r', detect: ['pii'], action: 'flag', threshold: 0.5 }] }, /input\.0\.threshold/],
      [{ input: [{ name: 'r', detect: ['pii'], action: 'mask', strategy: 'hash' }] }, /masking\.hash_key: the hash strategy needs a secret key/],
      [{ masking: { hash_key: 'short' } }, /masking\.hash_key: use at least 32 characters/],
      [{ input: [{ name: 'r', detect: ['dictionary.nope'], action: 'flag' }] }, /input\.0\.detect\.0: no dictionary named "nope"/],
      [{ patterns: [{ name: 'p', regex: '(', max_length: 5 }] }, /patterns\.0\.regex: RE2 cannot compile it/],
      [{ patterns: [{ name: 'p', regex: 'a*', max_length: 5 }] }, /patterns\.0\.regex: the pattern matches the empty string/],
      [{ patterns: [{ name: 'p', regex: 'a(?=b)', max_length: 5 }] }, /patterns\.0\.regex: lookahead and lookbehind are not supported/],
      [{ patterns: [{ name: 'p', regex: 'a', max_length: 5, flags: 'g' }] }, /patterns\.0\.regex: unsupported flags "g"/],
      [{ patterns: [{ name: 'p', regex: 'a' }] }, /patterns\.0\.max_length/],
      [{ limits: [{ name: 'l' }] }, /a limit rule must set/],
      [{ output: [{ name: 'o' }] }, /an output rule must set `mask` or `end_stream_on`/],
      [{ output: [{ name: 'o', end_stream_on: ['injection'] }] }, /injection applies to input only/],
      [
        { input: [{ name: 'same', detect: ['pii'], action: 'flag' }], output: [{ name: 'same', end_stream_on: ['secrets'] }] },
        /output\.0\.name: rule name "same" is already used by input\[0\]/,
      ],
      [{ input: [{ name: 'r', detect: ['pii'], action: 'flag', unknown: 1 }] }, /Unrecognized key/i],
    ];
    for (const [input, expected] of cases) {
      const problems = messages(input);
      assert.ok(problems.some((p) => expected.test(p)), `${JSON.stringify(input)} → ${JSON.stringify(problems)}`);
    }
  });

  test('connection names are checked against the configured connections', () => {
    const policy = guardrailsSchema.parse({ input: [{ name: 'r', detect: ['pii'], action: 'flag', connections: ['vllm', '*', 'typo'] }] });
    assert.deepEqual(unknownConnectionReferences(policy, new Set(['vllm'])), [{ path: ['input', 0, 'connections', 2], message: 'unknown connection "typo"' }]);
  });
});
