// The sessions HTTP API: users see their own sessions, auditors see and
// manage all; errors are OpenAI-style JSON. The server below mounts the
// handler the way the gateway does: authenticate, then hand over.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { handleSessionsApi } from '../../src/audit/api.js';
import { Recorder } from '../../src/audit/recorder.js';
import { SessionArchive } from '../../src/audit/sessions.js';
import type { AuditStore } from '../../src/audit/store.js';
import { verify } from '../../src/audit/verify.js';
import { asGatewayError } from '../../src/http/errors.js';
import { sendError } from '../../src/http/send.js';
import { KEY_A, principal, recordSession, recording, STORE_FIXTURES, type StoreFixture } from './fixtures.js';

const AUDITORS = ['audit'];
const config = recording({ encryption: { keys: [KEY_A] }, auditor_groups: AUDITORS });

for (const factory of STORE_FIXTURES) {
  describe(`sessions API on ${factory.driver}`, () => {
    let fx: StoreFixture;
    let store: AuditStore;
    let server: Server;
    let base: string;
    const ids: Record<string, string> = {};

    before(async () => {
      fx = await factory.create();
      store = await fx.open();
      const recorder = await Recorder.open(store, config);
      ids.alice = await recordSession(recorder, { subject: 'alice', prompt: 'alice asks about CANARY-ALICE' });
      ids.alice2 = await recordSession(recorder, { subject: 'alice', prompt: 'second', reply: ['a', 'b'] });
      ids.bob = await recordSession(recorder, { subject: 'bob', prompt: 'bob asks' });
      await recorder.close({ closeStore: false });
      const archive = new SessionArchive(store, config);
      server = createServer((req, res) => {
        const who = String(req.headers['x-test-user'] ?? 'alice');
        const caller = principal(who, who === 'auditor' ? ['audit'] : ['engineering']);
        handleSessionsApi(req, res, { archive, principal: caller, auditorGroups: AUDITORS }).then(
          (handled) => {
            if (!handled) res.writeHead(404).end();
          },
          (err: unknown) => sendError(res, asGatewayError(err)),
        );
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    });
    after(async () => {
      server.close();
      await store.close();
      await fx.cleanup();
    });

    const call = async (user: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any; text: string }> => {
      const res = await fetch(base + path, {
        method,
        headers: { 'x-test-user': user, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: res.status, json, text };
    };

    test('users list only their own sessions; auditors list all', async () => {
      const mine = await call('alice', 'GET', '/v1/sessions');
      assert.equal(mine.status, 200);
      assert.deepEqual(mine.json.data.map((s: { id: string }) => s.id).sort(), [ids.alice, ids.alice2].sort());
      assert.deepEqual((await call('alice', 'GET', '/v1/sessions?user=bob')).json.data, [], 'a user filter cannot widen the view');
      // Other tests in this suite record sessions of their own (other subjects), so
      // the auditor's view is checked for containing these and for paging it all.
      const all = (await call('auditor', 'GET', '/v1/sessions?limit=100')).json.data.map((s: { id: string }) => s.id);
      for (const id of [ids.alice, ids.alice2, ids.bob]) assert.ok(all.includes(id), `auditor sees ${id}`);
      const paged: string[] = [];
      let cursor = '';
      do {
        const page = await call('auditor', 'GET', `/v1/sessions?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        assert.ok(page.json.data.length <= 2);
        paged.push(...page.json.data.map((s: { id: string }) => s.id));
        cursor = page.json.has_more ? page.json.next_cursor : '';
      } while (cursor);
      assert.deepEqual(paged, all, 'keyset pages of 2 walk the same list, in order, without gaps or repeats');
      const search = await call('auditor', 'GET', '/v1/sessions?q=canary-alice');
      assert.equal(search.status, 400, 'encrypted content is never indexed, so text search is refused');
      assert.equal(search.json.error.code, 'search_unavailable');
      assert.match(search.json.error.message, /encryption is on/);
    });

    test('show and replay decrypt; another user\'s session is a 404', async () => {
      const shown = await call('alice', 'GET', `/v1/sessions/${ids.alice}`);
      assert.equal(shown.status, 200);
      assert.match(JSON.stringify(shown.json.request.body), /CANARY-ALICE/);
      const stored = await fx.raw.query<{ data: Uint8Array }>('SELECT content AS data FROM events WHERE content IS NOT NULL');
      assert.ok(stored.length > 0 && !stored.some((r) => Buffer.from(r.data).includes('CANARY-ALICE')), 'ciphertext only in the database');
      const replay = await call('alice', 'GET', `/v1/sessions/${ids.alice2}/replay`);
      assert.deepEqual(replay.json.chunks.map((c: { offset_ms: number; text: string }) => [c.offset_ms, c.text]), [[10, 'a'], [20, 'b']]);
      const foreign = await call('alice', 'GET', `/v1/sessions/${ids.bob}`);
      assert.equal(foreign.status, 404);
      assert.deepEqual(Object.keys(foreign.json.error).sort(), ['code', 'message', 'param', 'type']);
      assert.equal(foreign.json.error.code, 'session_not_found');
      assert.equal((await call('auditor', 'GET', `/v1/sessions/${ids.bob}`)).status, 200);
    });

    test('destructive operations are for auditors only', async () => {
      for (const [method, path] of [
        ['POST', `/v1/sessions/${ids.alice}/redact`],
        ['POST', `/v1/sessions/${ids.alice}/hold`],
        ['DELETE', `/v1/sessions/${ids.alice}`],
        ['GET', '/v1/sessions/export?since=1h'],
        ['POST', '/v1/sessions/redact'],
      ] as const) {
        const res = await call('alice', method, path, method === 'POST' ? {} : undefined);
        assert.equal(res.status, 403, `${method} ${path}`);
        assert.equal(res.json.error.code, 'auditor_required');
      }
    });

    test('auditors hold, redact, delete and export; the chain still verifies', async () => {
      // Sessions of its own (erin, frank), so the other tests' sessions stay as seeded.
      const recorder = await Recorder.open(store, config);
      const erin = await recordSession(recorder, { subject: 'erin', prompt: 'erin asks about CANARY-ERIN' });
      const erin2 = await recordSession(recorder, { subject: 'erin', prompt: 'erin again' });
      const frank = await recordSession(recorder, { subject: 'frank', prompt: 'frank asks' });
      await recorder.close({ closeStore: false });

      const held = await call('auditor', 'POST', `/v1/sessions/${frank}/hold`, { hold: true, reason: 'case 7' });
      assert.deepEqual(held.json, { id: frank, legal_hold: true });
      const refused = await call('auditor', 'DELETE', `/v1/sessions/${frank}`);
      assert.equal(refused.status, 409);
      assert.equal(refused.json.error.code, 'session_on_legal_hold');
      assert.equal((await call('auditor', 'POST', `/v1/sessions/${frank}/redact`, {})).json.error.code, 'session_on_legal_hold');

      const redacted = await call('auditor', 'POST', `/v1/sessions/${erin}/redact`, { pattern: 'CANARY-\\w+', reason: 'leaked' });
      assert.equal(redacted.status, 200);
      assert.match(JSON.stringify((await call('erin', 'GET', `/v1/sessions/${erin}`)).json.request.body), /erin asks about \[redacted\]/);
      assert.equal((await call('auditor', 'POST', `/v1/sessions/${erin}/redact`, { pattern: '(' })).json.error.code, 'invalid_pattern');

      const exported = await call('auditor', 'GET', '/v1/sessions/export?since=1h');
      const lines = exported.text.trim().split('\n').map((l) => JSON.parse(l) as { kind: string });
      assert.ok(lines.some((l) => l.kind === 'legal_hold') && lines.some((l) => l.kind === 'redaction'));

      assert.deepEqual((await call('auditor', 'DELETE', `/v1/sessions/${erin2}`)).json, { id: erin2, deleted: true });
      assert.equal((await call('auditor', 'GET', `/v1/sessions/${erin2}`)).status, 404);
      const erased = await call('auditor', 'POST', '/v1/sessions/redact', { subject: 'erin', reason: 'erasure' });
      assert.deepEqual(erased.json, { redacted: [erin], held: [], open: [] });
      assert.deepEqual((await verify(store)).problems, []);
    });

    test('bad parameters are 400s with the offending parameter named', async () => {
      const res = await call('auditor', 'GET', '/v1/sessions?decision=maybe');
      assert.equal(res.status, 400);
      assert.equal(res.json.error.param, 'decision');
      assert.equal((await call('auditor', 'GET', '/v1/sessions?since=yesterday-ish')).json.error.param, 'since');
      assert.equal((await call('auditor', 'GET', '/v1/sessions?cursor=bm9wZQ')).json.error.code, 'invalid_cursor');
      assert.equal((await call('auditor', 'PUT', '/v1/sessions')).status, 405);
    });
  });
}
