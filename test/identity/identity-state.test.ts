// One contract, three stores: memory, SQLite and the real PostgreSQL. Every
// property several gateway instances rely on is checked on each.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import type { IdentityState, StoredSigningKey } from '../../src/identity/state/identity-state.js';
import { openIdentityState } from '../../src/identity/state/open-identity-state.js';
import { eventually } from '../agent/helpers.js';
import { PG_URL } from '../helpers/postgres.js';
import { postgresThroughRelay } from '../helpers/tcp-relay.js';


/** A throwaway schema per test run, so concurrent test files never share identity tables. */
export async function postgresSchema(): Promise<{ schema: string; drop: () => Promise<void> }> {
  const schema = `identity_test_${randomBytes(6).toString('hex')}`;
  return {
    schema,
    async drop() {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}

function key(kid: string, activatesAt: number): StoredSigningKey {
  return { kid, alg: 'ES256', privateJwk: { kty: 'EC', kid, d: 'private' }, publicJwk: { kty: 'EC', kid }, createdAt: 1, activatesAt };
}

const stores: Array<[string, () => Promise<{ open: () => Promise<IdentityState>; cleanUp: () => Promise<void> }>]> = [
  ['memory', async () => {
    const state = await openIdentityState({ store: 'memory' });
    return { open: async () => state, cleanUp: async () => {} };
  }],
  ['sqlite', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'modelgate-identity-'));
    const path = join(dir, 'identity.db');
    return { open: () => openIdentityState({ store: 'sqlite', path }), cleanUp: () => rm(dir, { recursive: true, force: true }) };
  }],
  ['postgres', async () => {
    const { schema, drop } = await postgresSchema();
    return { open: () => openIdentityState({ store: 'postgres', url: PG_URL, schema, pool_size: 2 }), cleanUp: drop };
  }],
];

for (const [kind, setUp] of stores) {
  describe(`identity state: ${kind}`, () => {
    const opened: IdentityState[] = [];
    let cleanUp = async () => {};
    let open: () => Promise<IdentityState>;
    /** Two handles on the same store, as two gateway instances would have. */
    async function twoInstances(): Promise<[IdentityState, IdentityState]> {
      if (opened.length === 0) {
        const store = await setUp();
        open = store.open;
        cleanUp = store.cleanUp;
      }
      while (opened.length < 2) opened.push(await open());
      return [opened[0]!, opened[1]!];
    }
    after(async () => {
      for (const state of new Set(opened)) await state.close();
      await cleanUp();
    });

    test('init is idempotent, and both instances see one set of tables', async () => {
      const [a, b] = await twoInstances();
      await a.init();
      await b.init();
      assert.equal(a.kind, kind);
    });

    test('signing keys: one winner per activation time, ordered, deletable', async () => {
      const [a, b] = await twoInstances();
      assert.equal(await a.addSigningKey(key('k1', 1000)), true);
      assert.equal(await b.addSigningKey(key('k2', 1000)), false, 'a second key for the same moment loses');
      assert.equal(await b.addSigningKey(key('k3', 500)), true);
      const keys = await a.signingKeys();
      assert.deepEqual(keys.map((k) => k.kid), ['k3', 'k1']);
      assert.deepEqual(keys[1]!.privateJwk, { kty: 'EC', kid: 'k1', d: 'private' });
      await b.deleteSigningKey('k3');
      assert.deepEqual((await a.signingKeys()).map((k) => k.kid), ['k1']);
    });

    test('revocations keep the later cut-off and expire', async () => {
      const [a, b] = await twoInstances();
      await a.revoke({ scope: 'subject:alice', revokedBefore: 200, expiresAt: 10_000 });
      await b.revoke({ scope: 'subject:alice', revokedBefore: 100, expiresAt: 5_000 });
      await b.revoke({ scope: 'all', revokedBefore: 50, expiresAt: 2_000 });
      const now = await a.revocations(1_000);
      assert.deepEqual(now.find((r) => r.scope === 'subject:alice'), { scope: 'subject:alice', revokedBefore: 200, expiresAt: 10_000 });
      assert.ok(now.some((r) => r.scope === 'all'));
      assert.deepEqual((await a.revocations(3_000)).map((r) => r.scope), ['subject:alice'], 'expired revocations are not returned');
      await a.purgeExpired(20_000);
      assert.deepEqual(await b.revocations(0), []);
    });

    test('service keys: stored, listed newest first, replaced (an earlier end kept) and revoked across instances', async () => {
      const [a, b] = await twoInstances();
      const record = (id: string, name: string, created: number, expires: number) => ({
        id, name, groups: ['notebooks'], owner: { issuer: 'https://idp', subject: 'erin', email: 'erin@example.com' },
        hash: 'ab'.repeat(32), created_at: created, expires_at: expires, replaced_by: null, revoked_at: null,
      });
      await a.insertServiceKey(record('0000000000000001', 'nb', 1_000, 100_000));
      await a.insertServiceKey(record('0000000000000002', 'nb', 2_000, 50_000));
      await a.insertServiceKey(record('0000000000000003', 'other', 3_000, 100_000));
      assert.deepEqual((await b.serviceKey('0000000000000001'))?.owner, { issuer: 'https://idp', subject: 'erin', email: 'erin@example.com' });
      assert.deepEqual((await b.serviceKeys()).map((r) => r.id), ['0000000000000003', '0000000000000002', '0000000000000001']);
      // A rotation at 10s: the other keys of "nb" end at 60s, but one already ending at 50s keeps its earlier end.
      const newKey = record('0000000000000004', 'nb', 10_000, 500_000);
      await a.insertServiceKey(newKey);
      assert.equal(await b.replaceServiceKeys('nb', newKey.id, 60_000, 10_000), 1);
      assert.equal((await a.serviceKey('0000000000000001'))?.expires_at, 60_000);
      assert.equal((await a.serviceKey('0000000000000001'))?.replaced_by, newKey.id);
      assert.equal((await a.serviceKey('0000000000000002'))?.expires_at, 50_000);
      assert.equal((await a.serviceKey(newKey.id))?.expires_at, 500_000);
      // Revoking one key, then the rest; keys already ended are not counted.
      assert.equal(await b.revokeServiceKeys('nb', 20_000, '0000000000000001'), 1);
      assert.equal(await b.revokeServiceKeys('nb', 55_000), 1, 'only the new key was still live at 55s');
      assert.equal((await a.serviceKey(newKey.id))?.revoked_at, 55_000);
      assert.equal((await a.serviceKey('0000000000000002'))?.revoked_at, null);
      assert.equal((await a.serviceKey('0000000000000003'))?.revoked_at, null, 'other identities are untouched');
      assert.equal(await a.serviceKey('ffffffffffffffff'), undefined);
    });

    test('records: put, get, expiry, and take is single-use across instances', async () => {
      const [a, b] = await twoInstances();
      await a.put('oidc_login', 'state-1', '{"x":1}', 5_000);
      assert.equal(await b.get('oidc_login', 'state-1', 1_000), '{"x":1}');
      assert.equal(await b.get('oidc_login', 'state-1', 5_000), undefined, 'expired at expiresAt');
      assert.equal(await b.get('session', 'state-1', 1_000), undefined, 'kinds are separate namespaces');
      const taken = await Promise.all([a.take('oidc_login', 'state-1', 1_000), b.take('oidc_login', 'state-1', 1_000)]);
      assert.deepEqual(taken.filter((v) => v !== undefined), ['{"x":1}'], 'exactly one instance gets it');
      await a.put('session', 's', 'v', 5_000);
      await b.delete('session', 's');
      assert.equal(await a.get('session', 's', 0), undefined);
    });

    test('putIfAbsent is the replay check: only the first of concurrent inserts wins, until expiry', async () => {
      const [a, b] = await twoInstances();
      const results = await Promise.all([
        a.putIfAbsent('saml_assertion', 'id-1', '1', 5_000, 1_000),
        b.putIfAbsent('saml_assertion', 'id-1', '1', 5_000, 1_000),
        a.putIfAbsent('saml_assertion', 'id-1', '1', 5_000, 1_000),
      ]);
      assert.deepEqual(results.filter(Boolean).length, 1);
      assert.equal(await b.putIfAbsent('saml_assertion', 'id-1', '1', 9_000, 4_999), false);
      assert.equal(await b.putIfAbsent('saml_assertion', 'id-1', '1', 9_000, 5_000), true, 'an expired record no longer blocks');
      await a.purgeExpired(10_000);
      assert.equal(await a.get('saml_assertion', 'id-1', 0), undefined);
    });
  });
}

// Several gateway processes keep signing keys and revocations in PostgreSQL
// (`--workers` needs it), so a PostgreSQL restart reaches every one of them:
// found by the multi-process fault harness, where it crashed the gateway's
// workers (an idle pool client's error had no listener).
describe('identity state: PostgreSQL restarted or silent', () => {
  test('a restart drops the idle connections: the process stays up, calls fail while it is away and work once it is back', async () => {
    const { relay, storage, cleanup } = await postgresThroughRelay('identity_restart');
    const state = await openIdentityState({ store: 'postgres', url: storage.postgres.url, schema: storage.postgres.schema, pool_size: 2 });
    try {
      await state.init();
      // Two at once: two pooled clients, idle when the server goes.
      await Promise.all([state.signingKeys(), state.revocations(0)]);
      relay.cut();
      await assert.rejects(state.signingKeys());
      relay.restore();
      await eventually(async () => (await state.signingKeys().then(() => true, () => false)), 'identity state answers again');
    } finally {
      await state.close();
      await cleanup();
    }
  });

  test('a server that accepts connections and never answers fails the call: no request waits on it forever', async () => {
    const accepted = new Set<Socket>();
    const silent = createServer((socket) => void accepted.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const url = `postgres://postgres@127.0.0.1:${(silent.address() as AddressInfo).port}/test`;
    try {
      const deadline = new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 30_000).unref());
      const opening = openIdentityState({ store: 'postgres', url, schema: 'never_created', pool_size: 1 });
      assert.equal(await Promise.race([opening.then(() => 'answered', () => 'failed'), deadline]), 'failed');
    } finally {
      for (const socket of accepted) socket.destroy();
      await new Promise((r) => silent.close(r));
    }
  });
});
