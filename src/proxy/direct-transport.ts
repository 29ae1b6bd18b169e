// Direct HTTP transport: keep-alive connections per target, weighted
// round robin or ordered failover, and passive health: a target that
// refuses connections is skipped for a cooldown. Only connection failures
// are retried on another target; once a target has the request, a timeout
// or reset is reported, because the model may already be generating.
import type { Readable } from 'node:stream';
import { errors as undiciErrors } from 'undici';
import type { ConnectionConfig } from '../config/schema.js';
import { GatewayError } from '../http/errors.js';
import type { Transport, UpstreamRequest, UpstreamResponse } from './transport.js';
import { requestAnswer, type UpstreamAnswer } from './upstream-answer.js';
import { UpstreamConnections } from './upstream-connections.js';
import { UpstreamQueue, type QueueObserver } from './upstream-queue.js';

interface Target {
  origin: string;
  basePath: string;
  weight: number;
  connections: UpstreamConnections;
  /** Admission: at most max_connections_per_target at once, and a bounded, timed wait for one. */
  queue: UpstreamQueue;
  unhealthyUntil: number;
}

const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);

export class DirectTransport implements Transport {
  private readonly targets: Target[];
  /** Weighted round-robin schedule: each target appears `weight` times. */
  private readonly schedule: number[];
  private cursor = 0;

  constructor(
    private readonly connection: ConnectionConfig,
    observer?: QueueObserver,
  ) {
    const { timeouts } = connection;
    this.targets = connection.targets.map((t) => {
      const url = new URL(t.url!);
      return {
        origin: url.origin,
        basePath: url.pathname.replace(/\/$/, ''),
        weight: t.weight,
        unhealthyUntil: 0,
        queue: new UpstreamQueue(connection.name, connection.max_connections_per_target, connection.max_queued, connection.queue_timeout, observer),
        connections: new UpstreamConnections(
          url.origin,
          {
            connect: { timeout: timeouts.connect },
            headersTimeout: timeouts.response_headers,
            bodyTimeout: timeouts.idle,
            keepAliveTimeout: 30_000,
          },
          { onCount: (delta) => observer?.connections?.(delta) },
        ),
      };
    });
    this.schedule = this.targets.flatMap((t, i) => Array<number>(t.weight).fill(i));
  }

  async send(request: UpstreamRequest): Promise<UpstreamResponse> {
    let lastError: unknown;
    const candidates = this.candidates();
    // A target with a free connection first; when all are busy, wait in the first one's queue.
    const freeAt = candidates.findIndex((t) => t.queue.free);
    if (freeAt > 0) candidates.unshift(...candidates.splice(freeAt, 1));
    for (const target of candidates) {
      const release = await target.queue.acquire(request.signal);
      try {
        // The connection is free once the answer is read off it; the slot, once the body is done with.
        const answer = await requestAnswer(target.connections, {
          path: target.basePath + request.path,
          method: request.method,
          headers: request.headers,
          body: request.body ?? null,
          signal: request.signal,
        });
        target.unhealthyUntil = 0;
        answer.body.onClose(release);
        return upstreamResponse(answer, target.origin);
      } catch (err) {
        release();
        if (request.signal.aborted) throw err;
        if (!isConnectFailure(err)) throw this.describe(err);
        target.unhealthyUntil = Date.now() + this.connection.unhealthy_cooldown;
        lastError = err;
      }
    }
    throw this.describe(lastError);
  }

  async close(): Promise<void> {
    await Promise.all(this.targets.map((t) => t.connections.close()));
  }

  /** Targets in the order to try them: healthy first, then the rest as a last resort. */
  private candidates(): Target[] {
    const ordered =
      this.connection.load_balancing === 'failover'
        ? this.targets
        : this.rotate();
    const now = Date.now();
    return [...ordered.filter((t) => t.unhealthyUntil <= now), ...ordered.filter((t) => t.unhealthyUntil > now)];
  }

  private rotate(): Target[] {
    if (this.targets.length === 1) return this.targets;
    const first = this.schedule[this.cursor++ % this.schedule.length]!;
    return [...this.targets.slice(first), ...this.targets.slice(0, first)];
  }

  private describe(err: unknown): GatewayError {
    const name = this.connection.name;
    if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.ConnectTimeoutError) {
      return new GatewayError(`The model server for connection "${name}" did not answer in time. Retry, or ask an operator to check it.`, {
        status: 504,
        type: 'timeout_error',
        code: 'upstream_timeout',
        cause: err,
      });
    }
    return new GatewayError(`The model server for connection "${name}" is unreachable. Retry, or ask an operator to check it.`, {
      status: 502,
      type: 'upstream_error',
      code: 'upstream_unreachable',
      cause: err,
    });
  }
}

/** The answer as the pipeline takes it: its chunks for the relay, a Readable made only for a caller that reads `body`. */
function upstreamResponse(answer: UpstreamAnswer, target: string): UpstreamResponse {
  let body: Readable | undefined;
  return {
    status: answer.statusCode,
    headers: answer.headers,
    chunks: answer.body,
    get body(): Readable {
      return (body ??= answer.body.readable());
    },
    target,
  };
}

/** True when a transport error means no target ever received the request (every attempt failed to connect). */
export function neverReachedUpstream(err: unknown): boolean {
  const cause = err instanceof GatewayError ? (err as { cause?: unknown }).cause : err;
  return cause instanceof undiciErrors.ConnectTimeoutError || isConnectFailure(cause);
}

function isConnectFailure(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  return code !== undefined && CONNECT_FAILURES.has(code);
}
