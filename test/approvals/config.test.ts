// The `approvals:` section and the approval keys of guardrail rules: safe
// defaults, and errors that name the bad key and its line.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, parseConfig } from '../../src/config/load.js';

const base = `
identity:
  issuers:
    - issuer: https://idp.example.com
      audience: modelgate
connections:
  - name: vllm
    url: http://127.0.0.1:8000
    models:
      - name: llama
`;

function problemsOf(text: string): string[] {
  try {
    parseConfig(text, 'modelgate.yaml', {});
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  return assert.fail('expected a ConfigError');
}

describe('approvals configuration', () => {
  test('defaults: a minute of waiting, one approver from `approvers`, an hour to decide', () => {
    const { approvals } = parseConfig(base, 'modelgate.yaml', {});
    assert.equal(approvals.wait, 60_000);
    assert.deepEqual(approvals.approvers, ['approvers']);
    assert.equal(approvals.required_approvals, 1);
    assert.equal(approvals.expires_after, 3_600_000);
    assert.equal(approvals.keepalive_interval, 15_000);
    assert.deepEqual(approvals.webhooks, []);
  });

  test('an unsigned JSON webhook is refused', () => {
    const [problem] = problemsOf(`${base}approvals:\n  webhooks:\n    - url: https://hooks.example.com/x\n`);
    assert.match(problem!, /approvals\.webhooks\[0\]\.secret: a `json` webhook must be signed/);
  });

  test('unknown keys, bad durations, a review URL without {id}, and unknown connections are named', () => {
    const problems = problemsOf(
      `${base}approvals:\n  wiat: 5s\n  expires_after: soon\n  review_url: https://console.example.com/reviews\n`,
    );
    const text = problems.join('\n');
    assert.match(text, /modelgate\.yaml:\d+:\d+: approvals\.wiat: unknown key "wiat"/);
    assert.match(text, /approvals\.expires_after: "soon" is not a duration/);
    assert.match(text, /approvals\.review_url: must contain \{id\}/);
    const [unknown] = problemsOf(`${base}approvals:\n  access_requests:\n    connections: [nope]\n`);
    assert.match(unknown!, /approvals\.access_requests\.connections\[0\]: unknown connection "nope"/);
  });

  test('approvers and required_approvals belong to require_approval rules only', () => {
    const [problem] = problemsOf(`${base}guardrails:\n  input:\n    - name: r\n      detect: [secrets]\n      action: block\n      required_approvals: 2\n`);
    assert.match(problem!, /guardrails\.input\[0\]\.required_approvals: `required_approvals` applies only to `action: require_approval`/);
    const ok = parseConfig(`${base}guardrails:\n  input:\n    - name: r\n      detect: [secrets]\n      action: require_approval\n      approvers: [security]\n      required_approvals: 2\n`, 'modelgate.yaml', {});
    assert.deepEqual(ok.guardrails.input[0]!.approvers, ['security']);
  });
});
