// The binary array parameters the PostgreSQL store sends its batches in
// (src/audit/pg-binary.ts), read back by the real server: every element type,
// NULLs, an empty array, the edges of bigint, text beyond ASCII.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { binaryArray } from '../../src/audit/pg-binary.js';
import { PG_URL } from './fixtures.js';

describe('binary array parameters on postgres', () => {
  let client: pg.Client;
  before(async () => {
    client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
  });
  after(() => client.end());

  // Elements as the server reads them, in text form (so bigint and bytea compare exactly).
  const roundTrip = async (type: Parameters<typeof binaryArray>[0], values: unknown[]): Promise<Array<string | null>> => {
    const { rows } = await client.query<{ v: string | null }>(`SELECT v::text AS v FROM unnest($1::${type}[]) WITH ORDINALITY AS t(v, i) ORDER BY i`, [binaryArray(type, values)]);
    return rows.map((r) => r.v);
  };

  test('integers of each width, with NULLs and the edges of a safe bigint', async () => {
    assert.deepEqual(await roundTrip('bigint', [0, 1, -1, 2 ** 32, -(2 ** 32) - 5, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, null]), [
      '0', '1', '-1', '4294967296', '-4294967301', '9007199254740991', '-9007199254740991', null,
    ]);
    assert.deepEqual(await roundTrip('integer', [2147483647, -2147483648, null, 7]), ['2147483647', '-2147483648', null, '7']);
    assert.deepEqual(await roundTrip('smallint', [0, 1, -32768, null]), ['0', '1', '-32768', null]);
  });

  test('text beyond ASCII, an empty string, a lone surrogate as U+FFFD, and bytea with zero bytes', async () => {
    assert.deepEqual(await roundTrip('text', ['é ü 漢字 🙂', '', 'odd\ud800one', null, '{"a":"\\"quoted\\""}']), ['é ü 漢字 🙂', '', 'odd\ufffdone', null, '{"a":"\\"quoted\\""}']);
    assert.deepEqual(await roundTrip('bytea', [new Uint8Array([0, 255, 10]), Buffer.alloc(0), null, Buffer.from('abc').subarray(1)]), ['\\x00ff0a', '\\x', null, '\\x6263']);
  });

  test('an empty array has no rows', async () => {
    assert.deepEqual(await roundTrip('text', []), []);
    assert.deepEqual(await roundTrip('bigint', []), []);
  });

  test('a number that is not an integer is refused, as its text form would be', () => {
    assert.throws(() => binaryArray('integer', [1.5]), /not an integer/);
    assert.throws(() => binaryArray('bigint', [2 ** 60]), /not an integer/);
  });
});
