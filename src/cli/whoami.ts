// `modelgate whoami`: who the gateway thinks you are, and what you may use.
import { CredentialStore, defaultProfileName, ProfileNotFoundError } from './credential-store.js';
import type { Command } from './command.js';
import { paint } from './paint.js';
import { SessionExpiredError, TokenSource } from './token-source.js';

interface WhoamiResponse {
  subject: string;
  issuer: string;
  email?: string;
  name?: string;
  groups: string[];
  expires_at: number;
  models: Array<{ model: string; connection: string }>;
  error?: { message: string };
}

export const whoamiCommand: Command = {
  name: 'whoami',
  summary: 'Show your subject, groups and the models you may use.',
  usage: 'modelgate whoami [--profile name] [--json]',
  options: {
    profile: { type: 'string', short: 'p', description: 'Profile ($MODELGATE_PROFILE)', valueName: 'name' },
    json: { type: 'boolean', description: 'Print the raw JSON' },
  },
  async run(values) {
    const source = new TokenSource(new CredentialStore(), String(values.profile ?? defaultProfileName()));
    let profile;
    let token;
    try {
      profile = await source.profileData();
      token = await source.bearer();
    } catch (err) {
      if (!(err instanceof SessionExpiredError || err instanceof ProfileNotFoundError)) throw err;
      console.error(`modelgate whoami: ${err.message}`);
      return 1;
    }
    const response = await fetch(new URL('/auth/whoami', profile.gateway), { headers: { authorization: `Bearer ${token}` } });
    const me = (await response.json()) as WhoamiResponse;
    if (!response.ok) {
      console.error(`modelgate whoami: ${me.error?.message ?? `the gateway answered HTTP ${response.status}`}`);
      return 1;
    }
    if (values.json) {
      console.log(JSON.stringify(me, null, 2));
      return 0;
    }
    const expires = new Date(me.expires_at * 1000).toISOString();
    console.log(
      [
        `${paint.bold('subject')}  ${me.subject}${me.email ? ` <${me.email}>` : ''}`,
        `${paint.bold('issuer')}   ${me.issuer}`,
        `${paint.bold('groups')}   ${me.groups.length > 0 ? me.groups.join(', ') : '(none)'}`,
        `${paint.bold('gateway')}  ${profile.gateway}  (token valid until ${expires})`,
        `${paint.bold('models')}   ${me.models.length > 0 ? me.models.map((m) => `${m.model} (${m.connection})`).join(', ') : '(none: ask an administrator for access)'}`,
      ].join('\n'),
    );
    return 0;
  },
};
