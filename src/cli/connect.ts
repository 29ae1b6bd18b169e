// `modelgate connect`: a local proxy on 127.0.0.1 that injects and refreshes
// your token, so any OpenAI-compatible client (curl, SDKs, LangChain, IDE
// plugins) points at http://127.0.0.1:PORT/v1 with a dummy key.
import { CredentialStore, defaultProfileName } from './credential-store.js';
import type { Command } from './command.js';
import { LocalProxy } from './local-proxy.js';
import { paint } from './paint.js';
import { onShutdownSignal } from './signals.js';
import { TokenSource } from './token-source.js';

export const connectCommand: Command = {
  name: 'connect',
  summary: 'Serve the gateway on 127.0.0.1 with your token injected and refreshed.',
  usage: 'modelgate connect [--port 8787] [--profile name] [--require-key]',
  options: {
    port: { type: 'string', description: 'Local port (0 picks a free one)', default: '8787', valueName: 'port' },
    profile: { type: 'string', short: 'p', description: 'Profile ($MODELGATE_PROFILE)', valueName: 'name' },
    'require-key': { type: 'boolean', description: 'Require a generated key from local clients (on machines shared with other users)' },
  },
  async run(values) {
    const tokens = new TokenSource(new CredentialStore(), String(values.profile ?? defaultProfileName()));
    const profile = await tokens.profileData();
    await tokens.bearer();
    const localKey = values['require-key'] ? LocalProxy.generateLocalKey() : undefined;
    const proxy = new LocalProxy({ gateway: profile.gateway, tokens, ...(localKey ? { localKey } : {}) });
    const url = await proxy.listen(Number(values.port));
    const key = localKey ?? 'modelgate';
    console.log(
      [
        `${paint.bold('modelgate connect')} → ${profile.gateway} (profile "${tokens.profile}")`,
        `  export OPENAI_BASE_URL=${url}/v1`,
        `  export OPENAI_API_KEY=${key}${localKey ? '' : '   # any value; your token is added by the proxy'}`,
        paint.dim('Ctrl-C stops the proxy.'),
      ].join('\n'),
    );
    await onShutdownSignal(() => proxy.close());
    return 0;
  },
};
