// Agents for tests: a gateway harness whose `demo` connection is served via
// agent, keys created through the real registry, and real `Agent`s dialling
// the gateway's tunnel listener on loopback. The heartbeat's timeout is long:
// on a loaded machine a late PONG is not a dead agent (keepalive.test.ts
// sets short ones on purpose).
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { Agent, type AgentOptions } from '../../src/agent/agent.js';
import { createLogger } from '../../src/ops/logger.js';
import { SseDecoder } from '../../src/protocol/sse.js';
import type { Harness, HarnessOptions } from '../helpers/harness.js';
import { startHarness } from '../helpers/harness.js';

export async function startAgentHarness(options: HarnessOptions = {}): Promise<Harness> {
  return startHarness({
    ...options,
    configure: (input) => {
      const demo = input.connections[0]!;
      delete (demo as { url?: string }).url;
      demo.targets = [{ via: 'agent' }];
      input.agents = { listen: { host: '127.0.0.1', port: 0 }, key_check_interval: '200ms', heartbeat_interval: '1s', heartbeat_timeout: '10s' };
      options.configure?.(input);
    },
  });
}

export async function createAgentKey(h: Harness, name: string, connections = ['demo']): Promise<string> {
  return (await h.gateway.agents!.keys.create(name, connections)).key;
}

/** `gateway`: dial this address instead (a relay in front of the agents listener); `heartbeat`: the tunnel's keepalive. */
export interface StartAgentOptions {
  gateway?: URL;
  heartbeat?: { intervalMs: number; timeoutMs: number };
}

export function startAgent(h: Harness, key: string | (() => string), serve: Record<string, string> = { demo: h.model.url }, options: StartAgentOptions = {}): Agent {
  const agent = new Agent({
    gateway: options.gateway ?? new URL(h.gateway.agentsUrl!),
    readKey: async () => (typeof key === 'function' ? key() : key),
    serve: new Map(Object.entries(serve).map(([k, v]) => [k, new URL(v)])),
    version: 'test',
    log: createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'),
    backoff: { initialMs: 50, maxMs: 200 },
    ...(options.heartbeat && { heartbeat: options.heartbeat }),
  });
  agent.start();
  return agent;
}

export async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Settles with `promise`, or rejects naming `what` after `timeoutMs`: a wait that hangs fails as itself, not as its test's timeout. */
export async function within<T>(promise: Promise<T>, what: string, timeoutMs = 20_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for: ${what}`)), timeoutMs)));
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until `count` agents serve `connection` at the gateway. */
export function agentsConnected(h: Harness, count: number, connection = 'demo'): Promise<void> {
  return until(() => h.gateway.agents!.agentsFor(connection).length === count, `${count} agent(s) connected`);
}

/** Polls an async check (a database read, say) until it holds. */
export async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Reads an SSE response to its end (or its cut): the frames that carry data. */
export async function sseFrames(response: Response): Promise<Array<{ data: string }>> {
  const decoder = new SseDecoder();
  const frames = [];
  try {
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) frames.push(...decoder.push(chunk));
  } catch {
    /* a cut connection ends the read; the frames so far are the evidence */
  }
  frames.push(...decoder.end());
  return frames.filter((f) => f.hasData);
}

/**
 * A real Agent serving `demo` from `model`, dialled into a stand-in for the
 * gateway's agent listener: it accepts the upgrade and is then a bare HTTP/2
 * client on that socket, so a test can send the agent what a real gateway
 * would not (a late body, say). close() stops the agent, the stand-in and
 * the model server.
 */
export async function startAgentOnBareGateway(
  model: http.Server,
  options: Partial<AgentOptions> = {},
): Promise<{ agent: Agent; tunnel: Promise<http2.ClientHttp2Session>; close(): Promise<void> }> {
  const server = http.createServer();
  const tunnel = new Promise<http2.ClientHttp2Session>((resolve) =>
    server.on('upgrade', (_req, socket: Socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: modelgate-tunnel/1\r\nConnection: Upgrade\r\n\r\n', () =>
        resolve(http2.connect('http://agent.invalid', { createConnection: () => socket })),
      );
    }),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const agent = new Agent({
    gateway: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    readKey: async () => 'test-key',
    serve: new Map([['demo', new URL(`http://127.0.0.1:${(model.address() as AddressInfo).port}`)]]),
    version: 'test',
    log: createLogger('silent'),
    ...options,
  });
  agent.start();
  return {
    agent,
    tunnel,
    async close() {
      await agent.close(100);
      (await tunnel).destroy();
      await new Promise<void>((r) => server.close(() => r()));
      model.closeAllConnections();
      await new Promise<void>((r) => model.close(() => r()));
    },
  };
}
