// `modelgate dev`: the gateway, a development OpenID provider and a demo
// model in one process, with embedded state under ./.modelgate/. Prints a
// curl line and an SDK snippet that work as pasted.
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import type { JWK } from 'jose';
import { configSchema } from '../config/schema.js';
import { DEMO_CODENAME, devConfigInput, DEV_AUDIENCE } from '../dev/dev-config.js';
import { CONSOLE_CLIENT_ID, CONSOLE_CLIENT_SECRET, DEMO_USERS, GATEWAY_SCOPE } from '../dev/demo-identities.js';
import type { DevIdp } from '../dev/idp.js';
import { createLogger } from '../ops/logger.js';
import { UsageError, type Command } from './command.js';
import { parseDuration } from '../config/units.js';
import { paint } from './paint.js';
import { onShutdownSignal } from './signals.js';

const TOKEN_TTL_SECONDS = 900;

export const devCommand: Command = {
  name: 'dev',
  summary: 'Run the gateway, a development identity provider and a demo model in one process.',
  usage: 'modelgate dev [--port 8080] [--user alice] [--pace 30ms]',
  options: {
    host: { type: 'string', description: 'Address to listen on (loopback only by design)', default: '127.0.0.1', valueName: 'addr' },
    port: { type: 'string', description: 'Gateway port (0 picks a free one)', default: '8080', valueName: 'port' },
    'idp-port': { type: 'string', description: 'Development OpenID provider port', default: '8081', valueName: 'port' },
    'model-port': { type: 'string', description: 'Demo model port', default: '8082', valueName: 'port' },
    user: { type: 'string', description: `Demo user to print a token for (${DEMO_USERS.map((u) => u.id).join(', ')})`, default: 'alice', valueName: 'id' },
    'data-dir': { type: 'string', description: 'Embedded state directory', default: '.modelgate', valueName: 'dir' },
    'log-level': { type: 'string', description: 'Log level for the JSON logs on stderr', default: 'info', valueName: 'level' },
    pace: { type: 'string', description: 'Pause between the demo model\'s streamed words, like a real model (0 sends them at once)', default: '30ms', valueName: 'duration' },
  },
  async run(values) {
    const host = String(values.host);
    const dataDir = String(values['data-dir']);
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    // Loaded here, not at the top: `modelgate gateway` must not carry the dev IdP and its web stack.
    const [{ startDemoModel }, { startDevIdp, generateSigningKey }, { Gateway }] = await Promise.all([
      import('../dev/demo-model.js'),
      import('../dev/idp.js'),
      import('../gateway.js'),
    ]);
    const log = createLogger(String(values['log-level']), process.stderr);

    const pace = parseDuration(String(values.pace));
    if (pace === undefined) throw new UsageError(`--pace takes a duration such as 30ms or 0, not "${String(values.pace)}".`);
    const model = await startDemoModel({ host, port: Number(values['model-port']), apiKey: 'demo-upstream-key', chunkDelayMs: pace });
    // The web console signs in at the dev IdP; its callback must be known before the gateway listens (not with --port 0).
    const port = Number(values.port);
    const consoleCallback = port > 0 ? `http://${host.includes(':') ? `[${host}]` : host}:${port}/auth/oidc/callback` : undefined;
    const idp = await startDevIdp({
      host,
      port: Number(values['idp-port']),
      ...(consoleCallback && { consoleRedirectUris: [consoleCallback] }),
      audience: DEV_AUDIENCE,
      accessTokenTtlSeconds: TOKEN_TTL_SECONDS,
      signingKeys: await loadOrCreateSigningKeys(join(dataDir, 'idp-signing-keys.json'), () => generateSigningKey('RS256')),
    });
    const input = devConfigInput({ host, port, issuer: idp.issuer, modelUrl: model.url, logLevel: String(values['log-level']), dataDir });
    if (consoleCallback) {
      input.identity!.web = { oidc: { issuer: idp.issuer, client_id: CONSOLE_CLIENT_ID, client_secret: CONSOLE_CLIENT_SECRET, scopes: ['openid', 'email', 'profile', GATEWAY_SCOPE] } };
    }
    const config = configSchema.parse(input);
    const gateway = new Gateway(config, { logger: log });
    const url = await gateway.listen();

    const user = String(values.user);
    const tokenFile = join(dataDir, 'dev-token');
    const stopRefreshing = await keepTokenFresh(idp, user, tokenFile, (err) => log.warn({ err: String(err) }, 'could not refresh the dev token'));
    const token = await readFile(tokenFile, 'utf8');
    console.log(banner({ url, idp: idp.issuer, model: model.url, user, token, tokenFile: relative(process.cwd(), tokenFile) || tokenFile, dataDir, cli: cliAsTyped(), webConsole: consoleCallback !== undefined }));

    await onShutdownSignal(async () => {
      stopRefreshing();
      await gateway.close(5_000);
      await Promise.all([idp.close(), model.close()]);
    });
    return 0;
  },
};

/** Keeps the IdP key across restarts, so tokens printed earlier stay valid. */
async function loadOrCreateSigningKeys(path: string, generate: () => Promise<JWK>): Promise<JWK[]> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as JWK[];
  } catch {
    const keys = [await generate()];
    await writeFile(path, JSON.stringify(keys), { mode: 0o600 });
    return keys;
  }
}

/** Logs the user in and rewrites the token file before each token expires. */
async function keepTokenFresh(idp: DevIdp, user: string, file: string, onError: (err: unknown) => void): Promise<() => void> {
  let { accessToken, refreshToken } = await idp.loginAs(user);
  const save = async (): Promise<void> => {
    await writeFile(file, accessToken, { mode: 0o600 });
    await chmod(file, 0o600);
  };
  await save();
  const timer = setInterval(() => {
    const renewed = refreshToken ? idp.refresh(refreshToken) : idp.loginAs(user);
    renewed
      .then(async (tokens) => {
        accessToken = tokens.accessToken;
        refreshToken = tokens.refreshToken ?? refreshToken;
        await save();
      })
      .catch(onError);
  }, (TOKEN_TTL_SECONDS / 2) * 1000);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * How to run this CLI as pasted: a fresh clone has no `modelgate` on the
 * PATH, so name the script itself, relative when it is under the working
 * directory (`./bin/modelgate.js`), else by its full path.
 */
function cliAsTyped(): string {
  const script = process.argv[1];
  if (!script) return 'modelgate';
  const fromHere = relative(process.cwd(), script);
  return fromHere && !fromHere.startsWith('..') && !isAbsolute(fromHere) ? `./${fromHere}` : script;
}

interface BannerInput {
  cli: string;
  url: string;
  idp: string;
  model: string;
  user: string;
  token: string;
  tokenFile: string;
  dataDir: string;
  webConsole: boolean;
}

function banner({ cli, url, idp, model, user, token, tokenFile, dataDir, webConsole }: BannerInput): string {
  const demoUser = DEMO_USERS.find((u) => u.id === user);
  const groups = demoUser?.groups.join(', ') || 'none';
  const body = JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'Hello, modelgate!' }] });
  return [
    '',
    paint.bold('modelgate dev is running'),
    `  gateway     ${paint.cyan(url)}  (OpenAI API under /v1, Ollama API under /api)`,
    ...(webConsole ? [`  console     ${paint.cyan(`${url}/ui/`)}  (sign in as carol to review and audit, alice to see her own sessions)`] : []),
    `  identity    ${idp}  (development OpenID provider: users ${DEMO_USERS.map((u) => u.id).join(', ')}; password <user>-password)`,
    `  demo model  ${model}  (connection "demo": demo-chat, demo-embed)`,
    `  state       ${dataDir}/`,
    '',
    `Signed in as ${paint.bold(user)} (groups: ${groups}). The token below is valid for ${TOKEN_TTL_SECONDS / 60} minutes;`,
    `${tokenFile} always holds a fresh one while modelgate dev runs.`,
    '',
    paint.bold('curl:'),
    `curl -sS ${url}/v1/chat/completions -H "Authorization: Bearer ${token}" -H "Content-Type: application/json" -d '${body}'`,
    '',
    paint.bold('OpenAI SDK (Python):'),
    `  from openai import OpenAI`,
    `  client = OpenAI(base_url="${url}/v1", api_key=open("${tokenFile}").read())`,
    `  print(client.chat.completions.create(model="demo-chat", messages=[{"role": "user", "content": "Hello!"}]).choices[0].message.content)`,
    '',
    paint.bold('OpenAI SDK (Node):'),
    `  import fs from 'node:fs';`,
    `  import OpenAI from 'openai';`,
    `  const client = new OpenAI({ baseURL: '${url}/v1', apiKey: fs.readFileSync('${tokenFile}', 'utf8') });`,
    `  const stream = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'Hello!' }], stream: true });`,
    `  for await (const part of stream) process.stdout.write(part.choices[0]?.delta.content ?? '');`,
    '',
    `Or point any client at it: export OPENAI_BASE_URL=${url}/v1 OPENAI_API_KEY=$(cat ${tokenFile})`,
    '',
    paint.bold('Sign in as yourself, as you would against a real IdP:'),
    `  ${cli} login --gateway ${url}     # device code, or --browser; any demo user`,
    `  ${cli} whoami  ·  OPENAI_API_KEY=$(${cli} token)  ·  ${cli} connect   # proxy on 127.0.0.1:8787`,
    '',
    paint.bold('Approvals:'),
    `  A prompt that mentions "${DEMO_CODENAME}" is held until an approver (carol or erin) decides:`,
    `  ${cli} login --gateway ${url} --profile carol   # sign in as carol`,
    `  ${cli} reviews list --profile carol  ·  ${cli} reviews approve <review-id> --comment "ok" --profile carol`,
    paint.dim('JSON logs go to stderr. Ctrl-C stops everything.'),
    '',
  ].join('\n');
}
