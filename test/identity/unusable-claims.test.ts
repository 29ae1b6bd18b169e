// Identity claims the audit trail cannot record: a NUL character (PostgreSQL
// refuses NUL in text) or a value longer than an index entry holds (subjects,
// emails and groups are indexed). A session carrying one failed the whole
// group commit it shared, so every caller recorded alongside the attacker got
// 503 recording_unavailable. The token is refused instead, naming the claim,
// and nobody else's request is touched.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { importJWK, SignJWT } from 'jose';
import pg from 'pg';
import { errorOf, postJson, startHarness, type Harness } from '../helpers/harness.js';
import { PG_URL } from '../helpers/postgres.js';

describe('claims the audit trail cannot record (recording on PostgreSQL)', () => {
  const schema = `mgtest_claims_${process.pid}_${randomBytes(4).toString('hex')}`;
  let h: Harness;
  before(async () => {
    h = await startHarness({
      configure(input) {
        input.storage = { driver: 'postgres', postgres: { url: PG_URL, schema } };
      },
    });
  });
  after(async () => {
    await h.close();
    const client = new pg.Client(PG_URL);
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });

  async function tokenWith(subject: string, claims: Record<string, unknown>): Promise<string> {
    const key = h.idp.signingKeys[0]!;
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ groups: ['engineering'], ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: key.kid! })
      .setIssuer(h.idp.issuer).setAudience('modelgate').setSubject(subject).setIssuedAt(now).setExpirationTime(now + 300)
      .sign(await importJWK(key, 'RS256'));
  }

  const chat = (token: string, content: string) => postJson(`${h.url}/v1/chat/completions`, token, { model: 'demo-chat', messages: [{ role: 'user', content }] });

  for (const [where, subject, claims, claim] of [
    ['NUL in the name', 'mallory', { name: 'Mal\u0000lory' }, 'name'],
    ['NUL in the email', 'mallory', { email: 'mallory@example.com\u0000' }, 'email'],
    ['NUL in a group', 'mallory', { groups: ['engineering', 'eng\u0000ineering'] }, 'groups'],
    ['NUL in the subject', 'mal\u0000lory', {}, 'sub'],
    ['an email of 3 KB', 'mallory', { email: `${'m'.repeat(3000)}@example.com` }, 'email'],
    ['a group of 3 KB', 'mallory', { groups: ['engineering', randomBytes(1500).toString('hex')] }, 'groups'],
    ['a subject of 1,025 bytes', 'é'.repeat(512) + 'x', {}, 'sub'],
  ] as const) {
    test(`${where}: the token is refused naming the claim, and callers recorded alongside are served`, async () => {
      const seen = h.model.received.length;
      const evil = await tokenWith(subject, claims);
      const good = await tokenWith('bob', {});
      const responses = await Promise.all([
        ...Array.from({ length: 4 }, (_, i) => chat(evil, `mallory ${i}`)),
        ...Array.from({ length: 8 }, (_, i) => chat(good, `bob ${i}`)),
      ]);
      const [refused, served] = [responses.slice(0, 4), responses.slice(4)];
      assert.deepEqual(served.map((r) => r.status), Array(8).fill(200));
      for (const response of refused) {
        assert.equal(response.status, 401);
        const error = await errorOf(response);
        assert.equal(error.code, 'token_claim_invalid');
        assert.ok(error.message.includes(`"${claim}"`), error.message);
      }
      const prompts = h.model.received.slice(seen).map((r) => JSON.stringify(r.body));
      assert.ok(!prompts.some((p) => p.includes('mallory')), 'no prompt of the refused token reached the model');
    });
  }
});
