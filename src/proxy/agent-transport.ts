// Agent transport: a connection's model is reached through the agents that
// serve it, over their tunnels (src/agent/). The second implementation of
// Transport; the pipeline does not know which one it is using. Spreads
// requests over the connection's agents (fewest open streams first), and
// sends a request to another agent only when HTTP/2 or the agent says the
// model never saw it. Once a stream is answered, a failure is the client's
// to see: the model may already be generating.
import type { AgentHub } from '../agent/hub.js';
import { NotStartedError } from '../agent/hub.js';
import type { ConnectionConfig } from '../config/schema.js';
import { GatewayError } from '../http/errors.js';
import type { Transport, UpstreamRequest, UpstreamResponse } from './transport.js';
import { UpstreamQueue, type QueueObserver } from './upstream-queue.js';

/** NotStartedError codes of an agent that would not take a stream (as opposed to one whose model was down). */
const REFUSALS = new Set(['agent_refused', 'agent_closing']);

export class AgentTransport implements Transport {
  /** Admission as for a direct target: the `via: agent` target takes `max_connections_per_target` at once, `max_queued` wait. */
  private readonly queue: UpstreamQueue;

  constructor(
    private readonly connection: ConnectionConfig,
    private readonly hub: AgentHub,
    observer?: QueueObserver,
  ) {
    this.queue = new UpstreamQueue(connection.name, connection.max_connections_per_target, connection.max_queued, connection.queue_timeout, observer);
  }

  async send(request: UpstreamRequest): Promise<UpstreamResponse> {
    const release = await this.queue.acquire(request.signal);
    try {
      const response = await this.viaAgents(request);
      // The slot is busy until the body is done with, however it ends.
      response.body.once('close', release);
      return response;
    } catch (err) {
      release();
      throw err;
    }
  }

  /** This instance's agents first; then, with routing on, the instances that hold agents for the connection. */
  private async viaAgents(request: UpstreamRequest): Promise<UpstreamResponse> {
    const tunnelRequest = { ...request, connection: this.connection };
    let lastError: NotStartedError;
    try {
      const response = await this.hub.sendLocal(tunnelRequest);
      return { ...response, target: `agent:${response.agent}` };
    } catch (err) {
      if (!(err instanceof NotStartedError)) throw err;
      lastError = err;
    }
    const router = this.hub.router;
    if (router) {
      for (const holder of await router.holders(this.connection.name)) {
        try {
          const response = await router.forward(holder, tunnelRequest);
          return { ...response, target: `instance:${holder.instance}` };
        } catch (err) {
          if (request.signal.aborted || !(err instanceof NotStartedError)) throw err;
          // A lapsed claim was a guess: its failure does not turn "no agent" into "the model is unreachable".
          if (!holder.lapsed) lastError = err;
        }
      }
    }
    if (lastError.code === 'agent_unavailable') throw this.noAgent();
    throw REFUSALS.has(lastError.code) ? this.refused(lastError) : this.unreachable(lastError);
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

  private refused(cause: NotStartedError): GatewayError {
    return new GatewayError(`The agents for connection "${this.connection.name}" did not take the request (busy or closing); the model never saw it. Retry shortly.`, {
      status: 503,
      type: 'service_unavailable',
      code: 'agent_busy',
      headers: { 'retry-after': '1', 'x-should-retry': 'true' },
      cause,
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
}
