// The configuration `modelgate dev` runs with: the same schema a production
// config goes through, pointed at the in-process IdP and demo model.
import { configSchema, type Config, type ConfigInput } from '../config/schema.js';
import { CLI_CLIENT_ID, GATEWAY_SCOPE } from './demo-identities.js';

export const DEV_AUDIENCE = 'modelgate';
/** A prompt containing this word needs an approval in `modelgate dev`. */
export const DEMO_CODENAME = 'nightingale';

export interface DevConfigInput {
  host: string;
  port: number;
  issuer: string;
  modelUrl: string;
  logLevel?: string;
  /** Embedded state (the SQLite audit trail) lives here. */
  dataDir: string;
}

/** The raw (pre-validation) configuration; tests adjust it before parsing. */
export function devConfigInput({ host, port, issuer, modelUrl, logLevel = 'info', dataDir }: DevConfigInput): ConfigInput {
  return {
    // No load balancer in front of `modelgate dev`: stop at once.
    server: { host, port, drain_notice: '0s' },
    storage: { driver: 'sqlite', sqlite: { path: `${dataDir}/modelgate.db` } },
    // Carol (auditors) sees every recorded session; everyone else sees their own.
    recording: { auditor_groups: ['auditors'] },
    logging: { level: logLevel as 'info' },
    identity: {
      issuers: [{ issuer, audience: DEV_AUDIENCE }],
      max_token_lifetime: '1h',
      // `modelgate login --gateway <url>` signs in at the development IdP with its CLI client.
      login: { client_id: CLI_CLIENT_ID, scopes: ['openid', 'profile', 'email', 'offline_access', GATEWAY_SCOPE] },
    },
    connections: [
      {
        // The demo model speaks both the OpenAI and the Ollama API, as Ollama does.
        name: 'demo',
        kind: 'ollama',
        url: modelUrl,
        api_key: 'demo-upstream-key',
        models: [
          { name: 'demo-chat', aliases: ['demo'] },
          { name: 'demo-embed' },
        ],
      },
    ],
    // A prompt naming the secret project waits for an approver (carol or erin): the approvals demo.
    guardrails: {
      dictionaries: [{ name: 'codenames', terms: [DEMO_CODENAME] }],
      input: [{ name: 'codename-review', description: 'Prompts about the secret project need an approver', detect: ['dictionary.codenames'], action: 'require_approval' }],
    },
    access: [
      { description: 'Engineers use every demo model', groups: ['engineering'], connections: ['demo'] },
      { description: 'Contractors may only embed', groups: ['contractors'], connections: ['demo'], models: ['demo-embed'] },
      { description: 'CI may chat', groups: ['ci'], connections: ['demo'], models: ['demo-chat'] },
    ],
  };
}

export function devConfig(input: DevConfigInput): Config {
  return configSchema.parse(devConfigInput(input));
}
