// The same audit suite runs against both stores: each fixture gives a fresh,
// isolated database (a temp SQLite file; a PostgreSQL schema of its own), a
// way to open production-like store handles on it, and raw SQL access for
// tampering the way a database operator could.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { recordingSchema, storageSchema, type RecordingConfig, type StorageConfig } from '../../src/audit/config.js';
import type { ApprovalRecord, DecisionRecord, Recorder } from '../../src/audit/recorder.js';
import type { EndState, TokenUsage } from '../../src/audit/events.js';
import { openStore, type AuditStore } from '../../src/audit/store.js';
import type { Principal } from '../../src/identity/principal.js';
import { PG_URL } from '../helpers/postgres.js';

export { PG_URL };

export interface RawDb {
  /** `?` placeholders on both drivers. */
  query<T = Record<string, unknown>>(sql: string, ...params: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export interface StoreFixture {
  driver: 'sqlite' | 'postgres';
  storage: StorageConfig;
  /** A new store handle; SQLite can run in a worker thread as in the gateway (slower to start under tsx). */
  open(thread?: 'main' | 'worker'): Promise<AuditStore>;
  raw: RawDb;
  cleanup(): Promise<void>;
}

export interface FixtureFactory {
  driver: 'sqlite' | 'postgres';
  create(): Promise<StoreFixture>;
}

export const STORE_FIXTURES: readonly FixtureFactory[] = [
  {
    driver: 'sqlite',
    async create() {
      const dir = await mkdtemp(join(tmpdir(), 'modelgate-audit-'));
      const storage = storageSchema.parse({ driver: 'sqlite', sqlite: { path: join(dir, 'audit.db'), synchronous: 'normal' } });
      const first = await openStore(storage); // creates the schema before the raw handle looks
      await first.close();
      const db = new Database(storage.sqlite.path);
      const raw: RawDb = {
        async query<T>(sql: string, ...params: unknown[]) {
          const statement = db.prepare(sql);
          return (statement.reader ? statement.all(...params) : (statement.run(...params), [])) as T[];
        },
        async close() {
          db.close();
        },
      };
      return {
        driver: 'sqlite',
        storage,
        open: (thread = 'main') => openStore(storage, { thread }),
        raw,
        async cleanup() {
          if (db.open) db.close();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    driver: 'postgres',
    async create() {
      const schema = `mgtest_${process.pid}_${randomBytes(4).toString('hex')}`;
      const storage = storageSchema.parse({ driver: 'postgres', postgres: { url: PG_URL, schema, pool_size: 4 } });
      const first = await openStore(storage);
      await first.close();
      const client = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
      await client.connect();
      const raw: RawDb = {
        async query<T>(sql: string, ...params: unknown[]) {
          let i = 0;
          const result = await client.query(sql.replace(/\?/g, () => `$${++i}`), params);
          return result.rows as T[];
        },
        async close() {
          await client.end();
        },
      };
      return {
        driver: 'postgres',
        storage,
        open: (thread = 'main') => openStore(storage, { thread }),
        raw,
        async cleanup() {
          await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
          await client.end().catch(() => {});
        },
      };
    },
  },
];

export function recording(overrides: Record<string, unknown> = {}): RecordingConfig {
  return recordingSchema.parse({ commit_interval: '2ms', ...overrides });
}

export function principal(subject = 'alice', groups: string[] = ['engineering']): Principal {
  return { issuer: 'https://idp.example', subject, email: `${subject}@example.com`, groups, expiresAt: Math.floor(Date.now() / 1000) + 600 };
}

export const KEY_A = { id: 'k2025', key: randomBytes(32).toString('base64') };
export const KEY_B = { id: 'k2026', key: randomBytes(32).toString('base64') };

let counter = 0;
export function requestId(): string {
  return `req_${process.pid}_${Date.now().toString(36)}_${(counter++).toString(36)}`;
}

export function chatBody(content: string, stream = true): Record<string, unknown> {
  return { model: 'demo-chat', stream, messages: [{ role: 'user', content }] };
}

export function sseChunk(text: string): string {
  return `data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: text } }] })}\n\n`;
}

export interface SessionScript {
  id?: string;
  subject?: string;
  groups?: string[];
  connection?: string;
  model?: string;
  prompt?: string;
  forwardedPrompt?: string;
  /** Response chunk texts, streamed 10 ms apart. */
  reply?: string[];
  receivedAt?: number;
  decisions?: DecisionRecord[];
  approval?: ApprovalRecord;
  /** False leaves the session open. */
  end?: EndState | false;
  /** Default: 3 prompt and 3 completion tokens, as reported by the model server. */
  usage?: TokenUsage;
}

/** Records one complete session the way the pipeline would, and returns its id. */
export async function recordSession(recorder: Recorder, script: SessionScript = {}): Promise<string> {
  const id = script.id ?? requestId();
  const prompt = script.prompt ?? 'Say hello';
  const writer = await recorder.beginSession({
    id,
    receivedAt: script.receivedAt ?? Date.now(),
    principal: principal(script.subject ?? 'alice', script.groups ?? ['engineering']),
    clientIp: '10.0.0.7',
    userAgent: 'test-agent/1.0',
    connection: script.connection ?? 'local',
    model: script.model ?? 'demo-chat',
    operation: 'chat',
    stream: true,
    requestBody: chatBody(prompt),
  });
  for (const d of script.decisions ?? []) writer.decision(d);
  if (script.approval) writer.approval(script.approval);
  await writer.forwarded(chatBody(script.forwardedPrompt ?? prompt), 'demo-chat-upstream');
  (script.reply ?? ['Hello', ' there', '!']).forEach((text, i) => writer.chunk(sseChunk(text), 10 * (i + 1)));
  if (script.end !== false) await writer.end({ state: script.end ?? 'completed', status: 200, latencyMs: 50, usage: script.usage ?? { prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 } });
  else await writer.flush();
  return id;
}
