// The recording and storage config schemas, and reading them from a
// gateway config file without needing the gateway's other secrets.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { AuditConfigError, connectionRecordingSchema, loadAuditSettings, recordingSchema, storageSchema } from '../../src/audit/config.js';
import { KEY_A } from './fixtures.js';

describe('recording config', () => {
  test('defaults: SQLite with full fsync, recording on, bodies on, 90-day retention, 2 ms group commit', () => {
    const storage = storageSchema.parse(undefined);
    assert.deepEqual(storage.sqlite, { path: '.modelgate/modelgate.db', synchronous: 'full', busy_timeout: 5000 });
    assert.equal(storage.driver, 'sqlite');
    const recording = recordingSchema.parse(undefined);
    assert.equal(recording.enabled, true);
    assert.equal(recording.bodies, true);
    assert.equal(recording.commit_interval, 2);
    assert.equal(recording.max_body_bytes, 1024 * 1024);
    assert.equal(recording.chunk_bytes, 64 * 1024);
    assert.deepEqual(recording.retention, { default: 90 * 86_400_000, sweep_interval: 300_000, batch_size: 100 });
    assert.equal(recording.encryption, undefined);
  });

  test('human units, "forever", and per-connection overrides', () => {
    const recording = recordingSchema.parse({ max_body_bytes: '256kb', commit_interval: '5ms', retention: { default: 'forever' } });
    assert.equal(recording.max_body_bytes, 256 * 1024);
    assert.equal(recording.retention.default, null);
    assert.deepEqual(connectionRecordingSchema.parse({ bodies: false, retention: '7d' }), { bodies: false, retention: 7 * 86_400_000 });
    assert.throws(() => connectionRecordingSchema.parse({ bodys: false }));
  });

  test('encryption keys must be 32 bytes of base64 with unique ids', () => {
    assert.ok(recordingSchema.parse({ encryption: { keys: [KEY_A] } }).encryption);
    assert.throws(() => recordingSchema.parse({ encryption: { keys: [{ id: 'short', key: Buffer.alloc(16).toString('base64') }] } }), /32 bytes/);
    assert.throws(() => recordingSchema.parse({ encryption: { keys: [KEY_A, KEY_A] } }), /duplicate key id/);
    assert.throws(() => recordingSchema.parse({ encryption: { keys: [] } }), /at least one key/);
  });

  test('postgres needs a URL; the schema name must be a plain identifier', () => {
    assert.throws(() => storageSchema.parse({ driver: 'postgres' }), /postgres\.url/);
    assert.throws(() => storageSchema.parse({ driver: 'postgres', postgres: { url: 'postgres://x/y', schema: 'audit; DROP TABLE x' } }));
    const pg = storageSchema.parse({ driver: 'postgres', postgres: { url: 'postgres://u@h/db', schema: 'audit' } });
    assert.equal(pg.postgres?.pool_size, 10);
  });

  test('loadAuditSettings reads storage, recording and connection overrides, substituting only their ${ENV}', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'modelgate-auditcfg-'));
    try {
      const file = join(dir, 'modelgate.yaml');
      await writeFile(
        file,
        [
          'identity: { issuers: [{ issuer: "https://idp", audience: x }] }',
          'connections:',
          '  - { name: gpu, url: "http://h", api_key: "${NOT_SET_ANYWHERE}", models: [{ name: m }], recording: { bodies: false, retention: 30d } }',
          '  - { name: cpu, url: "http://h", models: [{ name: n }] }',
          'storage: { driver: postgres, postgres: { url: "${AUDIT_PG_URL:-postgres://localhost/audit}" } }',
          'recording: { encryption: { keys: [{ id: k1, key: "${AUDIT_KEY}" }] } }',
        ].join('\n'),
      );
      const settings = await loadAuditSettings(file, { AUDIT_KEY: KEY_A.key });
      assert.equal(settings.storage.postgres?.url, 'postgres://localhost/audit');
      assert.equal(settings.recording.encryption?.keys[0]?.key, KEY_A.key);
      assert.deepEqual([...settings.connections], [['gpu', { bodies: false, retention: 30 * 86_400_000 }]]);
      await assert.rejects(loadAuditSettings(file, {}), (err: unknown) => err instanceof AuditConfigError && /AUDIT_KEY is not set/.test(err.message));
      await assert.rejects(loadAuditSettings(join(dir, 'missing.yaml')), /cannot read/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
