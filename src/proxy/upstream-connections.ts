// The keep-alive connections to one upstream target, one undici Client each.
// undici's Pool keeps every Client it ever opened until the pool itself is
// closed, connected or not: after a burst of 5,000 streams it held 5,000
// Clients (~10 MB of heap) and scanned them on every request. Here a
// connection that closes while idle is dropped, so once a burst is over and
// the upstream (or our keep-alive timeout) closes the idle sockets, nothing
// is left. How many requests may run at once is the UpstreamQueue's job (for
// the agent, the gateway's queue and the tunnel's streams). Used by the
// gateway for direct targets and by the agent for its model servers.
import { Client } from 'undici';

/**
 * An idle connection older than this (by the clock, not a timer) is not
 * reused but closed. Model servers close idle connections after a few
 * seconds (node's and uvicorn's after 5 s), and an event loop busy with
 * thousands of streams hears of the close late: a request written to such
 * a connection fails with "other side closed" (960 of 5,000 soak streams in
 * one run). A fresh connection costs a TCP handshake.
 */
export const MAX_IDLE_REUSE_MS = 2_000;

export class UpstreamConnections {
  /** Connected and free, most recently used last, with when each came back: reusing the warmest lets the rest time out after a burst. */
  private readonly idle: Array<{ client: Client; since: number }> = [];
  private readonly held = new Set<Client>();
  private readonly connected = new WeakSet<Client>();

  constructor(
    private readonly origin: string,
    private readonly options: Client.Options,
    /** Called with +1/-1 as connections are opened and dropped. */
    private readonly onCount?: (delta: number) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Connections held: in use, idle, or being opened. */
  get size(): number {
    return this.held.size;
  }

  /** A connection for one request; hand it back with `release` once the response body is done with. */
  take(): Client {
    const latest = this.idle.pop();
    if (latest && this.now() - latest.since < MAX_IDLE_REUSE_MS) return latest.client;
    // The warmest is too old, so every other idle one is too.
    if (latest) for (const { client } of [latest, ...this.idle.splice(0)]) this.drop(client);
    return this.open();
  }

  /**
   * Back to the idle set if it is still connected and `reusable`; otherwise
   * it is dropped. Not reusable: an answer read under backpressure. The
   * model server started its keep-alive clock when it wrote the last byte,
   * maybe seconds before we read it, so its close may be on the way while
   * our clock says the connection has just come back.
   */
  release(client: Client, reusable = true): void {
    if (!this.held.has(client)) return;
    if (reusable && this.connected.has(client) && !client.closed && !client.destroyed) this.idle.push({ client, since: this.now() });
    else this.drop(client);
  }

  /** Graceful: a request in flight finishes first. */
  async close(): Promise<void> {
    await Promise.all(this.forgetAll().map((c) => c.close()));
  }

  /** At once: a request in flight fails (for a caller whose streams are already done or cut, so waiting on a model that never answers would hang). */
  async destroy(): Promise<void> {
    await Promise.all(this.forgetAll().map((c) => c.destroy()));
  }

  private forgetAll(): Client[] {
    const clients = [...this.held];
    this.idle.length = 0;
    this.held.clear();
    this.onCount?.(-clients.length);
    return clients;
  }

  private open(): Client {
    const client = new Client(this.origin, this.options);
    client.on('connect', () => this.connected.add(client));
    client.on('disconnect', () => {
      this.connected.delete(client);
      // Idle: nothing will hand it back, so drop it now. In use: `release` drops it.
      const at = this.idle.findLastIndex((entry) => entry.client === client);
      if (at !== -1) {
        this.idle.splice(at, 1);
        this.drop(client);
      }
    });
    this.held.add(client);
    this.onCount?.(1);
    return client;
  }

  private drop(client: Client): void {
    if (!this.held.delete(client)) return;
    this.onCount?.(-1);
    // Closed, it releases its parser and timers; a request still queued on it (none, by construction) would finish first.
    if (!client.closed && !client.destroyed) client.close().catch(() => {});
  }
}
