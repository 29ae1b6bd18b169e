// Configuration of session recording: where the audit trail lives
// (`storage`) and what goes into it (`recording`). The lead mounts these
// into the main schema; `loadAuditSettings` reads just these sections, so
// audit tooling does not need the gateway's upstream secrets.
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { byteSize, duration } from '../config/fields.js';

/** A retention period, or `forever` (kept until deleted by hand). Output: milliseconds, or null for forever. */
const retentionPeriod = z.union([z.literal('forever').transform(() => null), duration]);

const sqlIdentifier = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'use lower-case letters, digits and _ (a PostgreSQL identifier)');

export const storageSchema = z
  .object({
    driver: z.enum(['sqlite', 'postgres']).default('sqlite'),
    sqlite: z
      .object({
        path: z.string().min(1).default('.modelgate/modelgate.db'),
        /**
         * `full` fsyncs the WAL on every commit, so a recorded request survives
         * power loss; `normal` survives a crash of the gateway but not of the
         * machine, and is much cheaper on slow disks.
         */
        synchronous: z.enum(['full', 'normal']).default('full'),
        busy_timeout: duration.prefault('5s'),
      })
      .strict()
      .prefault({}),
    postgres: z
      .object({
        url: z.string().regex(/^postgres(?:ql)?:\/\//, 'must be a postgres:// URL'),
        pool_size: z.number().int().min(2).max(200).default(10),
        /** Schema holding the audit tables; created if missing. Default: the connection's search_path (usually `public`). */
        schema: sqlIdentifier.optional(),
        connect_timeout: duration.prefault('5s'),
        statement_timeout: duration.prefault('30s'),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((storage, ctx) => {
    if (storage.driver === 'postgres' && !storage.postgres) {
      ctx.addIssue({ code: 'custom', path: ['postgres'], message: 'driver "postgres" needs `postgres.url`' });
    }
  })
  .prefault({});

const encryptionKey = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'use letters, digits and . _ - (at most 64 characters)'),
    /** Base64 of 32 random bytes, e.g. `${MODELGATE_RECORDING_KEY}` (`openssl rand -base64 32`). */
    key: z.string().refine((k) => Buffer.from(k, 'base64').length === 32 && /^[A-Za-z0-9+/]+={0,2}$/.test(k), {
      message: 'must be 32 bytes, base64-encoded (openssl rand -base64 32)',
    }),
  })
  .strict();

export const recordingSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Record request and response bodies; false keeps metadata only. */
    bodies: z.boolean().default(true),
    /** Longer bodies, and longer streamed responses, are cut here with a truncation marker. */
    max_body_bytes: byteSize.prefault('1mb'),
    /** Stored bodies are split into parts of this size; a stream's buffered chunks are flushed at this size. */
    chunk_bytes: byteSize.prefault('64kb'),
    /** Buffered stream chunks are flushed at least this often, so a crash loses at most this much. */
    chunk_flush_interval: duration.prefault('1s'),
    /** Group commit window: writes arriving within it share one transaction and one fsync. */
    commit_interval: duration.prefault('2ms'),
    /** Beyond this many bytes waiting to be committed, new sessions are refused (503) instead of queueing unboundedly. */
    max_pending_bytes: byteSize.prefault('64mb'),
    /** A gateway instance that has not checked in for this long is presumed dead; its open sessions are marked incomplete. */
    recovery_lease: duration.prefault('15s'),
    retention: z
      .object({
        default: retentionPeriod.prefault('90d'),
        sweep_interval: duration.prefault('5m'),
        /** Sessions deleted per transaction; small batches keep the chain lock short. */
        batch_size: z.number().int().min(1).max(10_000).default(100),
      })
      .strict()
      .prefault({}),
    encryption: z
      .object({
        /** The first key encrypts; every listed key decrypts (rotation: prepend the new key, keep the old ones). */
        keys: z.array(encryptionKey).min(1, 'list at least one key'),
      })
      .strict()
      .superRefine((e, ctx) => {
        const seen = new Set<string>();
        e.keys.forEach((k, i) => {
          if (seen.has(k.id)) ctx.addIssue({ code: 'custom', path: ['keys', i, 'id'], message: `duplicate key id "${k.id}"` });
          seen.add(k.id);
        });
      })
      .optional(),
    /** Members of these groups see and manage every session; everyone else sees only their own. */
    auditor_groups: z.array(z.string().min(1)).default([]),
  })
  .strict()
  .prefault({});

/** Per-connection override, mounted as `connections[].recording`. */
export const connectionRecordingSchema = z
  .object({
    bodies: z.boolean().optional(),
    retention: retentionPeriod.optional(),
  })
  .strict();

export type StorageConfig = z.output<typeof storageSchema>;
export type RecordingConfig = z.output<typeof recordingSchema>;
export type ConnectionRecordingConfig = z.output<typeof connectionRecordingSchema>;
export type EncryptionKeyConfig = NonNullable<RecordingConfig['encryption']>['keys'][number];

/** Recording overrides by connection name. */
export type ConnectionRecordingMap = ReadonlyMap<string, ConnectionRecordingConfig>;

/** What the audit CLI needs from a gateway config file. */
export interface AuditSettings {
  storage: StorageConfig;
  recording: RecordingConfig;
  connections: ConnectionRecordingMap;
}

const auditFileSchema = z.object({
  storage: storageSchema,
  recording: recordingSchema,
  connections: z
    .array(z.object({ name: z.string(), recording: connectionRecordingSchema.optional() }).loose())
    .default([]),
});

export class AuditConfigError extends Error {}

/**
 * Reads `storage`, `recording` and `connections[].recording` from a gateway
 * config file, substituting `${ENV}` references only inside those sections.
 */
export async function loadAuditSettings(path: string, env: NodeJS.ProcessEnv = process.env): Promise<AuditSettings> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new AuditConfigError(`${path}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  let document: unknown;
  try {
    document = parseYaml(text) ?? {};
  } catch (err) {
    throw new AuditConfigError(`${path}: YAML syntax: ${(err as Error).message.split('\n')[0]}`);
  }
  const root = (typeof document === 'object' && document !== null ? document : {}) as Record<string, unknown>;
  const missing: string[] = [];
  const storage = substituteEnv(root.storage, env, 'storage', missing);
  const recording = substituteEnv(root.recording, env, 'recording', missing);
  const connections = Array.isArray(root.connections)
    ? root.connections.map((c, i) => {
        const entry = (c ?? {}) as Record<string, unknown>;
        return { name: entry.name, recording: substituteEnv(entry.recording, env, `connections[${i}].recording`, missing) };
      })
    : [];
  if (missing.length > 0) throw new AuditConfigError(missing.map((m) => `${path}: ${m}`).join('\n'));
  const result = auditFileSchema.safeParse({ storage, recording, connections });
  if (!result.success) {
    throw new AuditConfigError(result.error.issues.map((i) => `${path}: ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n'));
  }
  return {
    storage: result.data.storage,
    recording: result.data.recording,
    connections: new Map(result.data.connections.filter((c) => c.recording).map((c) => [c.name, c.recording!])),
  };
}

/** `${NAME}`, `${NAME:-default}` and `$${` (a literal `${`), as in the gateway's loader; only in string values. */
function substituteEnv(value: unknown, env: NodeJS.ProcessEnv, path: string, missing: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (whole, escaped, name: string, fallback: string | undefined) => {
      if (escaped) return whole.slice(1);
      const found = env[name];
      if (found !== undefined && found !== '') return found;
      if (fallback !== undefined) return fallback;
      missing.push(`${path}: environment variable ${name} is not set`);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, `${path}[${i}]`, missing));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteEnv(v, env, `${path}.${k}`, missing)]));
  }
  return value;
}
