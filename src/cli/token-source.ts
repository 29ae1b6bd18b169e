// A fresh bearer token for a profile: the stored one while it is valid for a
// while longer, else a refreshed one. Refreshes are serialised across
// processes by the store's lock, and a process that waited for the lock
// first looks whether the one before it already refreshed.
import { CredentialStore, type Profile } from './credential-store.js';
import { describeOAuthError, refreshTokens } from './oauth-login.js';

export interface FreshTokenOptions {
  /** Refresh when the token expires within this many seconds. */
  minValiditySeconds?: number;
  /** Refresh even if the stored token looks valid (the gateway refused it). */
  force?: boolean;
  /** When forcing, the token the caller saw refused: if the stored one differs, another process already refreshed. */
  refusedToken?: string;
}

export class SessionExpiredError extends Error {
  constructor(profile: string, gateway: string, cause?: unknown) {
    super(
      `Your login for profile "${profile}" has expired (${describeOAuthError(cause)}). Run: modelgate login --gateway ${gateway}${profile === 'default' ? '' : ` --profile ${profile}`}`,
      { cause },
    );
  }
}

export class TokenSource {
  constructor(
    private readonly store: CredentialStore,
    readonly profile: string,
  ) {}

  async profileData(): Promise<Profile> {
    return this.store.read(this.profile);
  }

  async bearer(options: FreshTokenOptions = {}): Promise<string> {
    const minValidity = options.minValiditySeconds ?? 60;
    const usable = (p: Profile) =>
      p.tokens.expiresAt - Math.floor(Date.now() / 1000) >= minValidity && (!options.force || (options.refusedToken !== undefined && p.tokens.bearer !== options.refusedToken));

    const current = await this.store.read(this.profile);
    if (usable(current) && !options.force) return current.tokens.bearer;
    return this.store.withLock(this.profile, async () => {
      const latest = await this.store.read(this.profile);
      if (usable(latest)) return latest.tokens.bearer;
      let tokens;
      try {
        tokens = await refreshTokens(latest);
      } catch (err) {
        throw new SessionExpiredError(this.profile, latest.gateway, err);
      }
      await this.store.write(this.profile, { ...latest, tokens });
      return tokens.bearer;
    });
  }
}
