// Versioned schema migrations, one list for both drivers. A migration is
// never edited once released; changes are new versions. Each driver records
// applied versions in `audit_migrations` and applies the rest in order, in
// one transaction per version.
import { v1Postgres, v1Sqlite } from './v1-initial.js';
import { v2Postgres, v2Sqlite } from './v2-search.js';
import { v3Postgres, v3Sqlite } from './v3-estimated-usage.js';
import { v4Postgres, v4Sqlite } from './v4-flagged.js';
import { v5Postgres, v5Sqlite } from './v5-search-by-session.js';
import { v6Postgres, v6Sqlite } from './v6-sessions-instance.js';
import { v7Postgres, v7Sqlite } from './v7-sessions-room.js';

export interface Migration {
  version: number;
  name: string;
  sqlite: string;
  postgres: string;
}

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'initial', sqlite: v1Sqlite, postgres: v1Postgres },
  // Replaced by v5 (kept: a migration is never edited once released).
  { version: 2, name: 'search', sqlite: v2Sqlite, postgres: v2Postgres },
  { version: 3, name: 'estimated usage', sqlite: v3Sqlite, postgres: v3Postgres },
  { version: 4, name: 'flagged', sqlite: v4Sqlite, postgres: v4Postgres },
  // Sessions recorded before it are indexed by the first `indexEnded` passes after it (search_head starts at 0).
  { version: 5, name: 'search by session, after the commit', sqlite: v5Sqlite, postgres: v5Postgres },
  // Session ends become HOT updates on PostgreSQL (no index entries).
  { version: 6, name: 'sessions by instance', sqlite: v6Sqlite, postgres: v6Postgres },
  // Room on each sessions page for its rows' ends: they stay HOT under load.
  { version: 7, name: 'sessions room for ends', sqlite: v7Sqlite, postgres: v7Postgres },
];

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
