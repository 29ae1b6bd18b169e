// A whole gateway on loopback for end-to-end tests: the real oidc-provider
// (the dev IdP), the demo model as upstream, and the gateway between them,
// configured through the same schema as production.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { configSchema, type ConfigInput } from '../../src/config/schema.js';
import { startDemoModel, type DemoModel, type DemoModelOptions } from '../../src/dev/demo-model.js';
import { devConfigInput, DEV_AUDIENCE } from '../../src/dev/dev-config.js';
import { CONSOLE_CLIENT_ID, CONSOLE_CLIENT_SECRET, GATEWAY_SCOPE, startDevIdp, type DevIdp, type DevIdpOptions } from '../../src/dev/idp.js';
import { Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/ops/logger.js';

export interface Harness {
  url: string;
  gateway: Gateway;
  idp: DevIdp;
  model: DemoModel;
  /** A real user token from a scripted login against the IdP. */
  userToken(user: string): Promise<string>;
  /** A real client-credentials token. */
  serviceToken(clientId: string): Promise<string>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** Adjust the configuration before it is validated. */
  configure?: (input: ConfigInput & Required<Pick<ConfigInput, 'connections'>>) => void;
  idp?: Partial<DevIdpOptions>;
  model?: DemoModelOptions;
  /** Capture every log line (at debug level) here, so a test can assert what never reaches the logs. */
  logs?: string[];
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const model = await startDemoModel({ apiKey: 'demo-upstream-key', ...options.model });
  const idp = await startDevIdp({ audience: DEV_AUDIENCE, ...options.idp });
  const dataDir = await mkdtemp(join(tmpdir(), 'modelgate-harness-'));
  const input = devConfigInput({ host: '127.0.0.1', port: 0, issuer: idp.issuer, modelUrl: model.url, dataDir });
  options.configure?.(input as ConfigInput & Required<Pick<ConfigInput, 'connections'>>);
  const logger = options.logs ? createLogger('debug', captureLines(options.logs)) : createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
  const gateway = new Gateway(configSchema.parse(input), { logger });
  const url = await gateway.listen();
  await gateway.services.verifier.warmUp();

  const tokens = new Map<string, string>();
  const cached = async (key: string, mint: () => Promise<string>): Promise<string> => {
    if (!tokens.has(key)) tokens.set(key, await mint());
    return tokens.get(key)!;
  };
  return {
    url,
    gateway,
    idp,
    model,
    userToken: (user) => cached(`user:${user}`, async () => (await idp.loginAs(user)).accessToken),
    serviceToken: (clientId) => cached(`client:${clientId}`, () => idp.clientCredentialsToken(clientId)),
    async close() {
      await gateway.close(1_000);
      await Promise.all([idp.close(), model.close()]);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

function captureLines(lines: string[]): NodeJS.WritableStream {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
}

/** `identity.web.oidc` for browser sign-in at the dev IdP with its console client. */
export function devConsoleOidc(issuer: string) {
  return { issuer, client_id: CONSOLE_CLIENT_ID, client_secret: CONSOLE_CLIENT_SECRET, scopes: ['openid', 'email', 'profile', GATEWAY_SCOPE] };
}

/** fetch against the gateway with a bearer token and a JSON body. */
export async function postJson(url: string, token: string | undefined, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

export interface OpenAiErrorBody {
  error: { message: string; type: string; code: string; param: string | null };
}

/** Reads an OpenAI-style error body and checks its shape. */
export async function errorOf(response: Response): Promise<OpenAiErrorBody['error']> {
  const body = (await response.json()) as OpenAiErrorBody;
  if (!body?.error || typeof body.error.message !== 'string' || typeof body.error.code !== 'string') {
    throw new Error(`not an OpenAI-style error body: ${JSON.stringify(body)}`);
  }
  return body.error;
}
