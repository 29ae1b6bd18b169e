// `modelgate token`: prints a fresh access token and nothing else, for
// OPENAI_API_KEY=$(modelgate token).
import { CredentialStore, defaultProfileName, ProfileNotFoundError } from './credential-store.js';
import type { Command } from './command.js';
import { SessionExpiredError, TokenSource } from './token-source.js';

export const tokenCommand: Command = {
  name: 'token',
  summary: 'Print a fresh access token (OPENAI_API_KEY=$(modelgate token)).',
  usage: 'modelgate token [--profile name] [--min-validity 300]',
  options: {
    profile: { type: 'string', short: 'p', description: 'Profile ($MODELGATE_PROFILE)', valueName: 'name' },
    'min-validity': { type: 'string', description: 'Refresh unless the token stays valid this many seconds', default: '300', valueName: 'seconds' },
  },
  async run(values) {
    const source = new TokenSource(new CredentialStore(), String(values.profile ?? defaultProfileName()));
    try {
      console.log(await source.bearer({ minValiditySeconds: Number(values['min-validity']) }));
      return 0;
    } catch (err) {
      if (!(err instanceof SessionExpiredError || err instanceof ProfileNotFoundError)) throw err;
      console.error(`modelgate token: ${err.message}`);
      return 1;
    }
  },
};
