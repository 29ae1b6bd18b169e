// `modelgate revoke-tokens`: refuses gateway-issued tokens from now on, for
// one subject or for everyone, by writing the revocation into the shared
// identity state that every gateway instance reads (within its
// gateway_tokens.sync_interval).
import { GatewaySigningKeys } from '../identity/signing-keys.js';
import { GatewayTokens } from '../identity/gateway-tokens.js';
import { openIdentityState } from '../identity/state/open-identity-state.js';
import { loadConfigOrReport } from './config-file.js';
import { configOption, UsageError, type Command } from './command.js';
import { EXIT_CONFIG } from './gateway.js';

export const revokeTokensCommand: Command = {
  name: 'revoke-tokens',
  summary: 'Revoke gateway-issued tokens of one subject, or all of them; replace leaked signing keys.',
  usage: 'modelgate revoke-tokens --config modelgate.yaml (--subject alice@example.com | --all | --replace-keys)',
  options: {
    config: configOption('The gateway configuration (for identity.state)'),
    subject: { type: 'string', description: 'Revoke this subject’s tokens', valueName: 'subject' },
    all: { type: 'boolean', description: 'Revoke every gateway-issued token issued so far' },
    'replace-keys': { type: 'boolean', description: 'Delete every signing key and start a new one (after a key leak)' },
  },
  async run(values) {
    const subject = typeof values.subject === 'string' ? values.subject : undefined;
    const replaceKeys = Boolean(values['replace-keys']);
    if ([subject !== undefined, Boolean(values.all), replaceKeys].filter(Boolean).length !== 1) {
      throw new UsageError('give exactly one of --subject, --all and --replace-keys');
    }
    const config = await loadConfigOrReport(String(values.config));
    if (!config) return EXIT_CONFIG;
    const { identity } = config;
    if (identity.state.store === 'memory') {
      console.error('modelgate revoke-tokens: identity.state is "memory", which only the running gateway holds; use sqlite or postgres to revoke from outside.');
      return EXIT_CONFIG;
    }
    const state = await openIdentityState(identity.state);
    try {
      const keys = new GatewaySigningKeys(state, identity.gateway_tokens, identity.gateway_tokens.lifetime + identity.clock_skew);
      const tokens = new GatewayTokens(() => config.server.public_url ?? '', keys, state, identity.gateway_tokens, identity.gateway_tokens.lifetime + identity.clock_skew);
      if (subject) await tokens.revokeSubject(subject);
      else if (replaceKeys) await tokens.replaceAllKeys();
      else await tokens.revokeAll();
    } finally {
      await state.close();
    }
    const seconds = Math.ceil(identity.gateway_tokens.sync_interval / 1000);
    const what = subject ? `the gateway-issued tokens of ${subject}` : replaceKeys ? 'every signing key (a new one signs from now on)' : 'every gateway-issued token';
    console.log(`Revoked ${what}; every gateway instance refuses the old tokens within ${seconds}s.`);
    return 0;
  },
};
