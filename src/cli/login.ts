// `modelgate login` and `modelgate logout`: sign in to a gateway's identity
// provider and keep the tokens in the user's config directory; sign out by
// revoking them at the IdP and deleting them.
import { spawn } from 'node:child_process';
import { CredentialStore, defaultProfileName, ProfileNotFoundError } from './credential-store.js';
import { UsageError, type Command } from './command.js';
import { login, LoginError, revokeTokens, type LoginInteraction } from './oauth-login.js';
import { paint } from './paint.js';

const profileOption = {
  profile: { type: 'string', short: 'p', description: 'Profile to store the login under ($MODELGATE_PROFILE)', valueName: 'name' },
} as const;

export const loginCommand: Command = {
  name: 'login',
  summary: 'Sign in to a gateway (device code or browser) and store the tokens.',
  usage: 'modelgate login --gateway https://llm.example.com [--profile name] [--device | --browser]',
  options: {
    gateway: { type: 'string', short: 'g', description: 'The gateway URL', valueName: 'url' },
    ...profileOption,
    device: { type: 'boolean', description: 'Use the device flow: enter a code on any device' },
    browser: { type: 'boolean', description: 'Use the browser on this machine (authorization code + PKCE)' },
    'no-browser': { type: 'boolean', description: 'Print the sign-in URL instead of opening a browser' },
    port: { type: 'string', description: 'Loopback port for the browser flow (0 picks one)', default: '0', valueName: 'port' },
  },
  async run(values) {
    const gateway = typeof values.gateway === 'string' ? values.gateway : undefined;
    if (!gateway) throw new UsageError('--gateway is required, e.g. modelgate login --gateway https://llm.example.com');
    if (values.device && values.browser) throw new UsageError('choose one of --device and --browser');
    const profile = String(values.profile ?? defaultProfileName());
    const store = new CredentialStore();
    const interaction: LoginInteraction = {
      showDeviceCode({ verificationUri, verificationUriComplete, userCode }) {
        console.error(`To sign in, open ${paint.cyan(verificationUriComplete ?? verificationUri)}`);
        console.error(`and enter the code ${paint.bold(userCode)} if asked. Waiting…`);
      },
      openBrowser(url) {
        console.error(`Opening your browser to sign in. If it does not open, visit:\n  ${url}`);
        if (!values['no-browser']) openInBrowser(url);
      },
    };
    try {
      const signedIn = await login(gateway, interaction, {
        ...(values.device ? { flow: 'device' as const } : values.browser || values['no-browser'] ? { flow: 'browser' as const } : {}),
        callbackPort: Number(values.port),
      });
      await store.write(profile, signedIn);
      console.error(`${paint.green('Signed in')} to ${signedIn.gateway} (profile "${profile}"). Try: modelgate whoami`);
      return 0;
    } catch (err) {
      if (!(err instanceof LoginError)) throw err;
      console.error(`modelgate login: ${err.message}`);
      return 1;
    }
  },
};

export const logoutCommand: Command = {
  name: 'logout',
  summary: 'Revoke the stored tokens at the identity provider and delete them.',
  usage: 'modelgate logout [--profile name]',
  options: { ...profileOption },
  async run(values) {
    const profile = String(values.profile ?? defaultProfileName());
    const store = new CredentialStore();
    let stored;
    try {
      stored = await store.read(profile);
    } catch (err) {
      if (!(err instanceof ProfileNotFoundError)) throw err;
      console.error(`Not logged in (profile "${profile}").`);
      return 0;
    }
    const revoked = await revokeTokens(stored).catch((err: unknown) => {
      console.error(`Could not revoke the tokens at ${stored.login.issuer} (${(err as Error).message}); deleting them anyway.`);
      return { refreshToken: false };
    });
    await store.remove(profile);
    // Say what is true: the gateway checks access tokens offline, so a copy of the last one works until it expires.
    const expires = new Date(stored.tokens.expiresAt * 1000).toISOString();
    const refresh = revoked.refreshToken
      ? 'the identity provider revoked the refresh token, so no new access token can be had from this login'
      : 'the refresh token was not revoked (the identity provider offers no revocation, or there was none)';
    console.error(
      `Signed out of ${stored.gateway}: the stored tokens are deleted and ${refresh}. The last access token stays valid until ${expires}, when it expires; an administrator can cut it off sooner with modelgate revoke-tokens.`,
    );
    return 0;
  },
};

/** Best effort: `$BROWSER`, else the platform's opener. The URL is printed too. */
function openInBrowser(url: string): void {
  const [command, ...args] = process.env.BROWSER
    ? [process.env.BROWSER, url]
    : process.platform === 'darwin'
      ? ['open', url]
      : process.platform === 'win32'
        ? ['rundll32', 'url.dll,FileProtocolHandler', url]
        : ['xdg-open', url];
  try {
    const child = spawn(command!, args, { stdio: 'ignore', detached: true });
    child.on('error', () => {});
    child.unref();
  } catch {
    // The printed URL is the fallback.
  }
}
