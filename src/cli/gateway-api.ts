// The gateway's HTTP API as the CLI calls it, with the caller's own identity:
// $MODELGATE_TOKEN when set (CI, scripts, tests), else the stored login of
// `--profile`, refreshed as `modelgate token` does. Refusals come back as the
// gateway's OpenAI-style error message, ready to print.
import { CredentialStore, defaultProfileName, ProfileNotFoundError } from './credential-store.js';
import { UsageError, type OptionValues as Values } from './command.js';
import { RETRY_ON } from './local-proxy.js';
import { SessionExpiredError, TokenSource } from './token-source.js';

/** The options every command that calls the API takes. */
export const gatewayApiOptions = {
  profile: { type: 'string', short: 'p', description: 'Profile ($MODELGATE_PROFILE)', valueName: 'name' },
  gateway: { type: 'string', description: 'Gateway URL ($MODELGATE_GATEWAY; default: the profile\'s)', valueName: 'url' },
  json: { type: 'boolean', description: 'Print the raw JSON' },
} as const;

/** A refusal or failure, worded for `modelgate <cmd>: <message>`. */
export class GatewayApiError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
  }
}

interface ErrorBody {
  error?: { message?: string; code?: string };
}

export class GatewayApi {
  private constructor(
    readonly gateway: string,
    private token: string,
    private readonly source?: TokenSource,
  ) {}

  /**
   * Who calls, and where. With a stored login the token only ever goes to the
   * profile's own gateway: a different --gateway is refused rather than
   * handing the token to another host.
   */
  static async open(values: Values, env: NodeJS.ProcessEnv = process.env): Promise<GatewayApi> {
    const requested = typeof values.gateway === 'string' ? values.gateway : env.MODELGATE_GATEWAY || undefined;
    const url = requested === undefined ? undefined : gatewayUrl(requested);
    if (env.MODELGATE_TOKEN) {
      const gateway = url ?? (await new CredentialStore().read(String(values.profile ?? defaultProfileName(env))).then((p) => p.gateway, () => undefined));
      if (!gateway) throw new UsageError('MODELGATE_TOKEN is set but no gateway is known: pass --gateway URL (or set MODELGATE_GATEWAY)');
      return new GatewayApi(gateway, env.MODELGATE_TOKEN);
    }
    const source = new TokenSource(new CredentialStore(), String(values.profile ?? defaultProfileName(env)));
    try {
      const profile = await source.profileData();
      if (url !== undefined && new URL(profile.gateway).origin !== new URL(url).origin) {
        throw new UsageError(`profile "${source.profile}" is logged in to ${profile.gateway}, not ${url}: run modelgate login --gateway ${url} --profile <name>, or set MODELGATE_TOKEN`);
      }
      return new GatewayApi(profile.gateway, await source.bearer(), source);
    } catch (err) {
      if (err instanceof SessionExpiredError || err instanceof ProfileNotFoundError) throw new GatewayApiError(err.message);
      throw err;
    }
  }

  get<T>(path: string): Promise<T> {
    return this.call<T>('GET', path);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.call<T>('POST', path, body);
  }

  private async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    let response = await this.send(method, path, body);
    if (response.status === 401 && this.source) {
      const refused = (await response.clone().json().catch(() => ({}))) as ErrorBody;
      if (refused.error?.code && RETRY_ON.has(refused.error.code)) {
        try {
          this.token = await this.source.bearer({ force: true, refusedToken: this.token });
        } catch (err) {
          if (err instanceof SessionExpiredError) throw new GatewayApiError(err.message);
          throw err;
        }
        response = await this.send(method, path, body);
      }
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!response.ok) {
      const error = (parsed as ErrorBody | undefined)?.error;
      throw new GatewayApiError(error?.message ?? `the gateway answered HTTP ${response.status} to ${method} ${path}`, response.status, error?.code);
    }
    if (parsed === undefined) throw new GatewayApiError(`the gateway answered ${method} ${path} with something other than JSON`, response.status);
    return parsed as T;
  }

  private async send(method: 'GET' | 'POST', path: string, body: unknown): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    try {
      return await fetch(new URL(path, this.gateway), { method, headers, ...(body !== undefined && { body: JSON.stringify(body) }) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new GatewayApiError(`cannot reach the gateway at ${this.gateway} (${cause?.code ?? cause?.message ?? (err as Error).message})`);
    }
  }
}

function gatewayUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--gateway "${value}" is not a URL: use e.g. https://llm.example.com`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new UsageError(`--gateway "${value}" must be an http(s) URL`);
  return url.origin;
}

/**
 * Runs a command body that talks to the gateway: refusals and unreachable
 * gateways print `modelgate <name>: <message>` and exit 1.
 */
export async function withGatewayApi(name: string, values: Values, work: (api: GatewayApi) => Promise<number>): Promise<number> {
  try {
    return await work(await GatewayApi.open(values));
  } catch (err) {
    if (!(err instanceof GatewayApiError)) throw err;
    console.error(`modelgate ${name}: ${err.message}`);
    return 1;
  }
}
