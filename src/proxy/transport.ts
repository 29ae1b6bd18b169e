// How the gateway reaches a connection's model server. Today that is a
// direct HTTP URL (or several, load-balanced); an agent tunnel will be a
// second implementation of the same interface.
import type { Readable } from 'node:stream';
import type { UpstreamBody } from './upstream-answer.js';

export interface UpstreamRequest {
  method: 'GET' | 'POST';
  /** Path and query on the upstream, e.g. `/v1/chat/completions`. */
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** Aborted when the client goes away or the gateway shuts down. */
  signal: AbortSignal;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Streamed body; honours backpressure when consumed with `for await`. */
  body: Readable;
  /**
   * The same body without a Readable, when the transport has it so (direct targets, upstream-answer.ts):
   * the relay reads a stream's chunks from it. Read one or the other, never both.
   */
  chunks?: UpstreamBody;
  /** Which target answered, for logs and metrics. */
  target: string;
}

export interface Transport {
  send(request: UpstreamRequest): Promise<UpstreamResponse>;
  close(): Promise<void>;
}
