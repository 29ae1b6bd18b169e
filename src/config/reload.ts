// Live reload: a new configuration file is loaded and validated exactly as
// at start-up (same file:line messages), then put in force by swapping the
// gateway's whole services snapshot at once. Requests already under way keep
// the snapshot they started with, so a stream is never cut or judged by two
// rule sets. Reloadable is whatever is rebuilt from config alone: access
// rules, guardrails, connections (and their pools), limits, the log level.
// Sections bound to open state (listening socket, identity state and keys,
// storage, recording, approvals, tracing) are reported as needing a restart.
import { watch, type FSWatcher } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import type { GatewayServices } from '../pipeline/services.js';
import { GuardrailEngine } from '../policy/guardrail-engine.js';
import { DirectTransport } from '../proxy/direct-transport.js';
import { ModelRoutes } from '../proxy/model-routes.js';
import type { Transport } from '../proxy/transport.js';
import { createLimiter } from '../usage/create-limiter.js';
import { ConfigError, loadConfigFile } from './load.js';
import type { Config } from './schema.js';

/** Top-level sections that only take effect at start-up. */
const RESTART_ONLY = ['server', 'identity', 'storage', 'recording', 'approvals', 'tracing', 'agents'] as const satisfies ReadonlyArray<keyof Config>;

export interface ReloadOutcome {
  /** Top-level sections whose new settings are now in force. */
  applied: string[];
  /** Sections that changed but keep their old settings until a restart. */
  needsRestart: string[];
}

/**
 * The services for `config`, reusing every part whose configuration did not
 * change (a connection's pool, the limiter and its counters), and the
 * transports the new snapshot no longer uses.
 */
export function reloadServices(previous: GatewayServices, config: Config): { services: GatewayServices; retired: Transport[]; outcome: ReloadOutcome } {
  const old = previous.config;
  const changed = (Object.keys(config) as Array<keyof Config>).filter((key) => !isDeepStrictEqual(old[key], config[key]));
  const needsRestart = changed.filter((key) => (RESTART_ONLY as readonly string[]).includes(key)).sort();
  const applied = changed.filter((key) => !needsRestart.includes(key)).sort();
  // Restart-only sections stay as they are, so the snapshot's config tells the truth about what is in force.
  const inForce = { ...config, ...Object.fromEntries(RESTART_ONLY.map((key) => [key, old[key]])) } as Config;

  const transports = new Map<string, Transport>();
  for (const connection of inForce.connections) {
    const before = old.connections.find((c) => c.name === connection.name);
    const reusable = before && isDeepStrictEqual(before, connection) ? previous.transports.get(connection.name) : undefined;
    transports.set(connection.name, reusable ?? previous.newTransport?.(connection) ?? new DirectTransport(connection));
  }
  const kept = new Set(transports.values());
  const retired = [...previous.transports.values()].filter((t) => !kept.has(t));

  const limitsChanged = !isDeepStrictEqual(old.limits, inForce.limits) || !isDeepStrictEqual(old.usage, inForce.usage);
  if (limitsChanged) {
    // A new store: in-memory counters start again, Redis counters carry on. The old store closes when idle.
    const oldStore = previous.limiter.store;
    setTimeout(() => void oldStore.close().catch(() => undefined), 60_000).unref();
  }
  if (inForce.logging.level !== old.logging.level) previous.log.level = inForce.logging.level;

  const services: GatewayServices = {
    ...previous,
    config: inForce,
    routes: new ModelRoutes(inForce.connections),
    guardrails: new GuardrailEngine(inForce.guardrails),
    transports,
    limiter: limitsChanged ? createLimiter(inForce, previous.metrics, previous.log) : previous.limiter,
  };
  return { services, retired, outcome: { applied, needsRestart } };
}

/** What a reload needs from the gateway. */
export interface Reloadable {
  readonly services: GatewayServices;
  applyConfig(config: Config): ReloadOutcome;
}

/** Reloads one configuration file into a gateway: on demand (SIGHUP) or whenever the file changes (`--watch`). */
export class ConfigReloader {
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly gateway: Reloadable,
    private readonly path: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  /** Loads, validates and applies the file; an invalid file changes nothing. Reloads run one at a time. */
  reload(trigger: string): Promise<ReloadOutcome | ConfigError> {
    const next = this.running.then(() => this.reloadNow(trigger));
    this.running = next.catch(() => undefined);
    return next;
  }

  private async reloadNow(trigger: string): Promise<ReloadOutcome | ConfigError> {
    const { log, metrics } = this.gateway.services;
    let config: Config;
    try {
      config = await loadConfigFile(this.path, this.env);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      metrics.configReloads.inc({ result: 'rejected' });
      log.error({ trigger, file: this.path, problems: err.problems }, `configuration reload rejected, the running configuration stays in force: ${err.message}`);
      return err;
    }
    const outcome = this.gateway.applyConfig(config);
    metrics.configReloads.inc({ result: 'applied' });
    log.info({ trigger, file: this.path, applied: outcome.applied, needs_restart: outcome.needsRestart }, 'configuration reloaded');
    if (outcome.needsRestart.length > 0) {
      log.warn({ sections: outcome.needsRestart }, `changes to ${outcome.needsRestart.join(', ')} take effect only after a restart`);
    }
    return outcome;
  }

  /** Reloads whenever the file changes; editors that replace the file (rename) are followed too. */
  watch(): void {
    const onChange = (): void => {
      clearTimeout(this.debounce);
      // Editors write in several steps: wait for the file to settle.
      this.debounce = setTimeout(() => {
        void this.reload('watch');
        // A rename-and-replace leaves the old watcher on a deleted inode: watch the path anew.
        this.rewatch(onChange);
      }, 200);
    };
    this.rewatch(onChange);
  }

  private rewatch(onChange: () => void): void {
    this.watcher?.close();
    try {
      this.watcher = watch(this.path, onChange);
    } catch (err) {
      this.gateway.services.log.warn({ err: (err as Error).message, file: this.path }, 'cannot watch the configuration file; retrying');
      setTimeout(() => this.rewatch(onChange), 1000).unref();
    }
  }

  close(): void {
    clearTimeout(this.debounce);
    this.watcher?.close();
  }
}
