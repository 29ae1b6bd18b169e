// The development IdP's demo users, service accounts and clients. Kept
// apart from idp.ts so that naming them (in help texts, the dev config)
// does not load oidc-provider.

export interface DemoUser {
  id: string;
  password: string;
  email: string;
  name: string;
  groups: string[];
}

export const DEMO_USERS: readonly DemoUser[] = [
  { id: 'alice', password: 'alice-password', email: 'alice@example.com', name: 'Alice Anders', groups: ['engineering', 'ml-platform'] },
  { id: 'bob', password: 'bob-password', email: 'bob@example.com', name: 'Bob Brandt', groups: ['contractors'] },
  { id: 'carol', password: 'carol-password', email: 'carol@example.com', name: 'Carol Chen', groups: ['auditors', 'approvers'] },
  { id: 'dave', password: 'dave-password', email: 'dave@example.com', name: 'Dave Diaz', groups: [] },
  { id: 'erin', password: 'erin-password', email: 'erin@example.com', name: 'Erin Eriksen', groups: ['approvers', 'security'] },
];

/** A service account: a confidential client using the client_credentials grant. */
export interface DemoClient {
  clientId: string;
  /** Defaults to `${clientId}-secret`. */
  clientSecret?: string;
  groups: string[];
}

export const DEMO_SERVICE_CLIENTS: readonly DemoClient[] = [
  { clientId: 'batch-summariser', groups: ['engineering'] },
  { clientId: 'ci-bot', groups: ['ci'] },
];

/** Public native client for the modelgate CLI (authorization code + PKCE, device flow). */
export const CLI_CLIENT_ID = 'modelgate-cli';
/** Registered loopback redirect; any port is accepted, as RFC 8252 §7.3 asks. */
export const CLI_REDIRECT_URI = 'http://127.0.0.1/callback';
/** Confidential web client for the gateway's browser login. */
export const CONSOLE_CLIENT_ID = 'modelgate-console';
export const CONSOLE_CLIENT_SECRET = 'dev-console-secret';
export const DEFAULT_CONSOLE_REDIRECT_URI = 'http://127.0.0.1/auth/callback';
/** The one resource scope of the gateway; access tokens carry it in `scope` when requested. */
export const GATEWAY_SCOPE = 'models:invoke';

