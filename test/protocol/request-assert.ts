// Assertion helpers shared by the request-parser tests.

import assert from 'node:assert/strict';
import { GatewayError } from '../../src/http/errors.js';
import { getAtPath } from '../../src/protocol/body-path.js';
import type { ModelRequest } from '../../src/protocol/types.js';

/** Asserts `parse` refuses with a 400 carrying `code` and `param`. */
export function assertBadRequest(parse: () => unknown, code: string, param: string | undefined, label: string): void {
  assert.throws(parse, (err: unknown) => {
    assert.ok(err instanceof GatewayError, `${label}: expected a GatewayError, got ${String(err)}`);
    assert.equal(err.status, 400, label);
    assert.equal(err.type, 'invalid_request_error', label);
    assert.equal(err.code, code, `${label}: ${err.message}`);
    assert.equal(err.param, param, `${label}: ${err.message}`);
    assert.ok(err.message.length > 0, label);
    return true;
  });
}

/** Every field's path must lead to exactly its text (or, for free-form values, their JSON). */
export function assertFieldPathsResolve(request: ModelRequest): void {
  for (const field of request.fields) {
    const value = getAtPath(request.body, field.path);
    const text = field.encoding === 'json' ? JSON.stringify(value) : value;
    assert.equal(text, field.text, `field at ${JSON.stringify(field.path)}`);
  }
}
