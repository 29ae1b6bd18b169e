// A storage outage is one event, not one per refused request: it is logged
// when it starts and when it ends, counted, and shown as a gauge. Requests
// refused meanwhile say so in their own access-log line (by code), without a
// stack each. While a store is down and nothing else would notice it coming
// back, a probe checks on it.
import type { Logger } from './logger.js';
import type { GatewayMetrics } from './metrics.js';

/** How often a store that is down is probed, when its owner gave a probe. */
const PROBE_INTERVAL_MS = 1_000;

export type StoreName = 'recording' | 'reviews';

interface Outage {
  since: number;
  refused: number;
  probe?: NodeJS.Timeout;
}

export class StoreOutages {
  private readonly down = new Map<StoreName, Outage>();
  private readonly probes = new Map<StoreName, () => Promise<unknown>>();

  constructor(
    private readonly log: Logger,
    private readonly metrics: Pick<GatewayMetrics, 'storeOutages' | 'storeUp'>,
  ) {}

  /** Starts reporting a store as up; `probe`, a cheap call, is used while it is down when nothing else would notice it back. */
  watch(store: StoreName, probe?: () => Promise<unknown>): void {
    if (probe) this.probes.set(store, probe);
    this.metrics.storeUp.set({ store }, this.down.has(store) ? 0 : 1);
  }

  /** The store failed an operation. Logs only the first failure of an outage. */
  failed(store: StoreName, err: unknown): void {
    const outage = this.down.get(store);
    if (outage) return;
    this.down.set(store, { since: Date.now(), refused: 0 });
    this.metrics.storeOutages.inc({ store });
    this.metrics.storeUp.set({ store }, 0);
    this.log.error({ store, err: errorText(err) }, `${store} store unavailable: requests that need it are refused with 503 until it is back`);
    this.scheduleProbe(store);
  }

  /** A request refused because of the outage (counted for the closing line). */
  refused(store: StoreName, err: unknown): void {
    this.failed(store, err);
    this.down.get(store)!.refused++;
  }

  /** The store answered again. Logs the end of an outage, once. */
  recovered(store: StoreName): void {
    const outage = this.down.get(store);
    if (!outage) return;
    clearTimeout(outage.probe);
    this.down.delete(store);
    this.metrics.storeUp.set({ store }, 1);
    this.log.warn({ store, ms: Date.now() - outage.since, refused: outage.refused }, `${store} store available again`);
  }

  isDown(store: StoreName): boolean {
    return this.down.has(store);
  }

  close(): void {
    for (const outage of this.down.values()) clearTimeout(outage.probe);
  }

  private scheduleProbe(store: StoreName): void {
    const probe = this.probes.get(store);
    const outage = this.down.get(store);
    if (!probe || !outage) return;
    outage.probe = setTimeout(() => {
      probe().then(
        () => this.recovered(store),
        () => this.scheduleProbe(store),
      );
    }, PROBE_INTERVAL_MS);
    outage.probe.unref();
  }
}

function errorText(err: unknown): string {
  const cause = (err as { cause?: unknown })?.cause;
  const message = err instanceof Error ? err.message : String(err);
  return cause instanceof Error && cause.message !== message ? `${message}: ${cause.message}` : message;
}
