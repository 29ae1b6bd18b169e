// Agent transport: a connection's model is reached through the agents that
// serve it, over their tunnels (src/agent/). The second implementation of
// Transport; the pipeline does not know which one it is using. Spreads
// requests over the connection's agents (fewest open streams first), and
// sends a request to another agent only when HTTP/2 or the agent says the
// model never saw it. Once a stream is answered, a failure is the client's
// to see: the model may already be generating.
import type { AgentHub, AgentTunnel } from '../agent/hub.js';
import { NotStartedError } from '../agent/hub.js';
import type { ConnectionConfig } from '../config/schema.js';
import { GatewayError } from '../http/errors.js';
import type { Transport, UpstreamRequest, UpstreamResponse } from './transport.js';

export class AgentTransport implements Transport {
  constructor(
    private readonly connection: ConnectionConfig,
    private readonly hub: AgentHub,
  ) {}

  async send(request: UpstreamRequest): Promise<UpstreamResponse> {
    const tried = new Set<AgentTunnel>();
    let lastError: NotStartedError | undefined;
    for (;;) {
      const [agent] = this.hub.agentsFor(this.connection.name, tried);
      if (!agent) throw lastError ? this.unreachable(lastError) : this.noAgent();
      tried.add(agent);
      try {
        const response = await agent.send({ ...request, connection: this.connection });
        return { ...response, target: `agent:${agent.name}` };
      } catch (err) {
        if (request.signal.aborted) throw err;
        if (err instanceof GatewayError) throw err;
        if (!(err instanceof NotStartedError)) throw this.lost(agent, err);
        lastError = err;
      }
    }
  }

  /** Tunnels belong to the hub, which the gateway closes. */
  async close(): Promise<void> {}

  private noAgent(): GatewayError {
    return new GatewayError(`No agent serving connection "${this.connection.name}" is connected. Retry shortly, or ask an operator to start one ("modelgate agent").`, {
      status: 503,
      type: 'service_unavailable',
      code: 'agent_unavailable',
      headers: { 'retry-after': '5' },
    });
  }

  private unreachable(cause: NotStartedError): GatewayError {
    return new GatewayError(`No agent for connection "${this.connection.name}" could reach the model server. Retry, or ask an operator to check it.`, {
      status: 502,
      type: 'upstream_error',
      code: 'upstream_unreachable',
      cause,
    });
  }

  private lost(agent: AgentTunnel, cause: unknown): GatewayError {
    return new GatewayError(`The tunnel to agent "${agent.name}" for connection "${this.connection.name}" broke before the model answered. Retry, or ask an operator to check the agent.`, {
      status: 502,
      type: 'upstream_error',
      code: 'agent_lost',
      cause,
    });
  }
}
