// Where the CLI keeps a person's tokens: one JSON file per gateway profile in
// the user's config directory, mode 0600 in a 0700 directory, written
// atomically. A lock file serialises refreshes across processes: refresh
// tokens rotate, and two processes spending the same one would look like
// theft to the IdP, which then revokes the whole login.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { GatewayDiscovery } from '../web/well-known.js';

export interface StoredTokens {
  /** What the CLI sends as the bearer token (the access token, or the ID token for Google). */
  bearer: string;
  /** Epoch seconds. */
  expiresAt: number;
  refreshToken?: string;
  accessToken: string;
  idToken?: string;
}

export interface Profile {
  gateway: string;
  login: NonNullable<GatewayDiscovery['login']>;
  tokens: StoredTokens;
}

const PROFILE_NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** A lock older than this belongs to a process that died mid-refresh. */
const STALE_LOCK_MS = 30_000;

export function defaultProfileName(env: NodeJS.ProcessEnv = process.env): string {
  return env.MODELGATE_PROFILE || 'default';
}

/** $MODELGATE_CONFIG_DIR, else the platform's per-user config directory. */
export function configDirectory(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MODELGATE_CONFIG_DIR) return env.MODELGATE_CONFIG_DIR;
  if (process.platform === 'win32' && env.APPDATA) return join(env.APPDATA, 'modelgate');
  if (process.platform === 'darwin') return join(homedir(), 'Library', 'Application Support', 'modelgate');
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'modelgate');
}

export class ProfileNotFoundError extends Error {
  constructor(readonly profile: string) {
    super(`Not logged in (profile "${profile}"). Run: modelgate login --gateway <url>`);
  }
}

export class CredentialStore {
  constructor(readonly directory: string = configDirectory()) {}

  private path(profile: string, suffix = '.json'): string {
    if (!PROFILE_NAME.test(profile)) throw new Error(`invalid profile name "${profile}": use letters, digits, . _ -`);
    return join(this.directory, 'profiles', `${profile}${suffix}`);
  }

  async read(profile: string): Promise<Profile> {
    try {
      return JSON.parse(await readFile(this.path(profile), 'utf8')) as Profile;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ProfileNotFoundError(profile);
      throw err;
    }
  }

  async write(profile: string, value: Profile): Promise<void> {
    const target = this.path(profile);
    const folder = join(this.directory, 'profiles');
    await mkdir(folder, { recursive: true, mode: 0o700 });
    await chmod(folder, 0o700);
    // Written whole under a temporary name and renamed: a reader never sees half a file.
    const temporary = `${target}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(temporary, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
    await chmod(temporary, 0o600);
    await rename(temporary, target);
  }

  async remove(profile: string): Promise<boolean> {
    const target = this.path(profile);
    const existed = await stat(target).then(() => true, () => false);
    await rm(target, { force: true });
    return existed;
  }

  /** Runs `work` while holding the profile's lock; waits for another process's refresh to finish. */
  async withLock<T>(profile: string, work: () => Promise<T>, timeoutMs = STALE_LOCK_MS + 5_000): Promise<T> {
    const lock = this.path(profile, '.lock');
    await mkdir(join(this.directory, 'profiles'), { recursive: true, mode: 0o700 });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const handle = await open(lock, 'wx', 0o600);
        await handle.writeFile(String(process.pid));
        await handle.close();
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const age = await stat(lock).then((s) => Date.now() - s.mtimeMs, () => 0);
        if (age > STALE_LOCK_MS) await rm(lock, { force: true });
        else if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}; remove it if no modelgate process is running`);
        else await new Promise((resolve) => setTimeout(resolve, 25 + Math.random() * 50));
      }
    }
    try {
      return await work();
    } finally {
      await rm(lock, { force: true });
    }
  }
}
