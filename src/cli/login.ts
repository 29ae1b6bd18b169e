// `modelgate login` and `modelgate logout`: sign in to a gateway's identity
// provider and keep the tokens in the user's config directory; sign out by
// revoking them at the IdP and deleting them.
import { spawn } from 'node:child_process';
import { CredentialStore, defaultProfileName, ProfileNotFoundError } from './credential-store.js';
import { UsageError, type Command } from './command.js';
import { decodeJwt } from 'jose';
import { login, LoginError, revokeGatewayToken, revokeTokens, type GatewayRevocation, type LoginInteraction } from './oauth-login.js';
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
  summary: 'Revoke the stored tokens (at the identity provider, or at the gateway for its own tokens) and delete them.',
  usage: 'modelgate logout [--profile name]',
  options: { ...profileOption },
  async run(values) {
    const profile = String(values.profile ?? defaultProfileName());
    const store = new CredentialStore();
    const envToken = process.env.MODELGATE_TOKEN;
    let stored;
    try {
      stored = await store.read(profile);
    } catch (err) {
      if (!(err instanceof ProfileNotFoundError)) throw err;
      console.error(`Not logged in (profile "${profile}").`);
      if (envToken) console.error(await explainEnvToken(envToken));
      return 0;
    }
    // A token the gateway signed itself can be cut off at once; an identity provider's access token cannot.
    const atGateway = await revokeGatewayToken(stored.tokens.bearer, stored.gateway).catch((err: unknown): GatewayRevocation => ({ revoked: false, reason: 'refused', detail: (err as Error).message }));
    const revoked = atGateway.revoked
      ? { refreshToken: false }
      : await revokeTokens(stored).catch((err: unknown) => {
          console.error(`Could not revoke the tokens at ${stored.login.issuer} (${(err as Error).message}); deleting them anyway.`);
          return { refreshToken: false };
        });
    await store.remove(profile);
    const expires = new Date(stored.tokens.expiresAt * 1000).toISOString();
    if (atGateway.revoked) {
      console.error(`Signed out of ${stored.gateway}: the stored tokens are deleted and the gateway revoked its access token (${syncNote(atGateway.syncSeconds)}).`);
    } else {
      // Say what is true: the gateway checks an identity provider's access tokens offline, so a copy of the last one works until it expires.
      const refresh = revoked.refreshToken
        ? 'the identity provider revoked the refresh token, so no new access token can be had from this login'
        : 'the refresh token was not revoked (the identity provider offers no revocation, or there was none)';
      console.error(
        `Signed out of ${stored.gateway}: the stored tokens are deleted and ${refresh}. The last access token stays valid until ${expires}, when it expires; an administrator can cut it off sooner with modelgate revoke-tokens.`,
      );
    }
    if (envToken && envToken !== stored.tokens.bearer) console.error(await explainEnvToken(envToken));
    return 0;
  },
};

/** MODELGATE_TOKEN is not the CLI's to delete, but a gateway-issued one can be revoked. */
async function explainEnvToken(token: string): Promise<string> {
  const result = await revokeGatewayToken(token).catch((err: unknown): GatewayRevocation => ({ revoked: false, reason: 'refused', detail: (err as Error).message }));
  if (result.revoked) return `MODELGATE_TOKEN held a gateway-issued token: ${result.gateway} revoked it (${syncNote(result.syncSeconds)}). Unset MODELGATE_TOKEN.`;
  if (result.reason === 'refused') return `MODELGATE_TOKEN could not be revoked at the gateway (${result.detail}); unset it.`;
  let until = 'it expires';
  try {
    const { exp, iss } = decodeJwt(token);
    if (typeof exp === 'number') until = `${new Date(exp * 1000).toISOString()}, when it expires`;
    if (iss) return `MODELGATE_TOKEN holds a token from ${iss}, which only that identity provider can revoke; it stays valid until ${until}. Unset MODELGATE_TOKEN.`;
  } catch {
    // not a JWT
  }
  return `MODELGATE_TOKEN is still set and stays valid until ${until}; unset it.`;
}

function syncNote(seconds: number): string {
  return seconds > 0 ? `refused from now on, on every gateway instance within ${seconds}s` : 'refused from now on';
}

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
