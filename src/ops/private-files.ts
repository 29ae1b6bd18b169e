// State on disk holds the gateway's signing keys (identity state) and
// people's prompts (recordings, reviews): only the gateway's own user may
// read it. New directories are made 0700 and new database files 0600 (SQLite
// gives its -wal and -shm files the database file's mode); existing ones that
// are more open are reported at start-up, not silently changed.
import { closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

/** Makes the directory of a SQLite file (0700) and the file itself (0600) when they do not exist yet. */
export function preparePrivateFile(path: string): void {
  if (path === ':memory:' || path.startsWith('file:')) return;
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  // 'a' creates without truncating; the mode applies only when the file is new.
  closeSync(openSync(path, 'a', 0o600));
}

/** Every path of a SQLite database (directory, file, -wal, -shm) that group or others can read, with its mode. */
export function tooOpen(path: string): Array<{ path: string; mode: string }> {
  if (path === ':memory:' || path.startsWith('file:')) return [];
  const found: Array<{ path: string; mode: string }> = [];
  for (const candidate of [dirname(path), path, `${path}-wal`, `${path}-shm`]) {
    let mode: number;
    try {
      mode = statSync(candidate).mode & 0o777;
    } catch {
      continue; // not there (yet)
    }
    if (mode & 0o077) found.push({ path: candidate, mode: `0${mode.toString(8)}` });
  }
  return found;
}
