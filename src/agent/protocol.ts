// The tunnel's wire contract, shared by the gateway and the agent.
//
// 1. The agent dials out: `GET /v1/agents/tunnel` over HTTP/1.1 (TLS outside
//    loopback) with `Upgrade: modelgate-tunnel/1`, its key as a bearer token,
//    its version and the connections it serves.
// 2. The gateway checks the key and answers `101 Switching Protocols`.
// 3. The same socket then carries HTTP/2 with the roles reversed: the
//    gateway is the HTTP/2 client and opens one stream per model request;
//    the agent is the server and forwards each stream to its model. Streams
//    have their own flow control, and RST_STREAM cancels in both directions.
export const TUNNEL_PATH = '/v1/agents/tunnel';
export const UPGRADE_TOKEN = 'modelgate-tunnel/1';

export const HEADER = {
  version: 'x-modelgate-agent-version',
  connections: 'x-modelgate-agent-connections',
  instance: 'x-modelgate-agent-instance',
  /** On each stream: which connection's model it is for. */
  connection: 'x-modelgate-connection',
  /** On an agent's own error answer: why, e.g. `upstream_unreachable` (the model was never reached, so retrying elsewhere is safe). */
  agentError: 'x-modelgate-agent-error',
} as const;

/**
 * Each end's HTTP/2 session memory limit (node's maxSessionMemory, default
 * 10 MB): node resets new streams with ENHANCE_YOUR_CALM past it, and
 * thousands of streams with answers queued for a busy reader are more.
 */
export const SESSION_MEMORY_MB = 64;

/** The agent could not open a connection to its model: nothing was sent, another agent may take the request. */
export const NOT_STARTED_ERRORS = new Set(['upstream_unreachable', 'unknown_connection', 'agent_draining']);

/** Connection-specific headers HTTP/2 forbids (RFC 9113 §8.2.2). */
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'host', 'http2-settings']);
