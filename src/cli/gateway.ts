// `modelgate gateway --config modelgate.yaml`: the production entry point.
import { ConfigReloader } from '../config/reload.js';
import { Gateway } from '../gateway.js';
import { limitHeapGrowth } from '../ops/heap.js';
import { onShutdownSignal } from './signals.js';
import cluster from 'node:cluster';
import { createLogger } from '../ops/logger.js';
import { loadConfigOrReport } from './config-file.js';
import { configOption, UsageError, type Command } from './command.js';
import { chooseWorkers, followPrimaryShutdown, superviseWorkers, workerSlot } from './workers.js';

/** sysexits.h EX_CONFIG: lets supervisors tell a bad config from a crash. */
export const EXIT_CONFIG = 78;
/** sysexits.h EX_UNAVAILABLE: the port is taken or not ours to bind. */
export const EXIT_UNAVAILABLE = 69;

export const gatewayCommand: Command = {
  name: 'gateway',
  summary: 'Run the gateway with a YAML configuration file.',
  usage: 'modelgate gateway [--config modelgate.yaml] [--check] [--watch]\n\nSIGHUP reloads the configuration file: it is validated first, and an invalid file leaves the running configuration in force.',
  options: {
    config: configOption('Configuration file; ${ENV} references are substituted'),
    check: { type: 'boolean', description: 'Validate the configuration and exit' },
    watch: { type: 'boolean', description: 'Reload the configuration whenever the file changes (as SIGHUP does)' },
    workers: {
      type: 'string',
      description: 'Processes sharing the port, each a full pipeline (default: one per core, or 1 while some state is process-local; `auto`: one per core)',
      valueName: 'n',
    },
  },
  async run(values) {
    const path = String(values.config);
    const config = await loadConfigOrReport(path);
    if (!config) return EXIT_CONFIG;
    if (values.check) {
      console.log(`${path}: configuration is valid (${config.connections.length} connection(s), ${config.identity.issuers.length} issuer(s), ${config.access.length} access rule(s))`);
      return 0;
    }
    const choice = chooseWorkers(values.workers, config);
    if ('error' in choice) {
      if (choice.kind === 'usage') throw new UsageError(choice.error);
      console.error(`modelgate: ${choice.error}`);
      return EXIT_CONFIG;
    }
    if (cluster.isPrimary && choice.warning) createLogger(config.logging.level).warn({ workers: choice.workers }, choice.warning);
    if (choice.workers > 1 && cluster.isPrimary) return superviseWorkers(choice.workers, createLogger(config.logging.level));
    const shutdownReady = followPrimaryShutdown();
    limitHeapGrowth();
    const gateway = new Gateway(config, { worker: workerSlot() });
    let url: string;
    try {
      url = await gateway.listen();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EADDRINUSE' && code !== 'EACCES' && code !== 'EADDRNOTAVAIL') throw err;
      // A supervisor restarts a process that exits; one that lingers without a port serves nobody.
      console.error(`modelgate: cannot listen on ${config.server.host}:${config.server.port} (${code}); stop whatever holds it or change server.port`);
      await Promise.race([gateway.close(0).catch(() => undefined), new Promise((r) => setTimeout(r, 2_000).unref())]);
      process.exit(EXIT_UNAVAILABLE);
    }
    gateway.services.log.info({ url, connections: config.connections.map((c) => c.name) }, 'gateway listening');
    const reloader = new ConfigReloader(gateway, path);
    const onHangup = (): void => void reloader.reload('SIGHUP');
    process.on('SIGHUP', onHangup);
    if (values.watch) reloader.watch();
    const stopped = onShutdownSignal(async (signal) => {
      process.off('SIGHUP', onHangup);
      reloader.close();
      gateway.services.log.info({ signal }, 'draining in-flight requests');
      await gateway.close();
      gateway.services.log.info('gateway stopped');
    });
    shutdownReady();
    await stopped;
    // A worker's IPC channel keeps it alive: let go of it once drained, so the primary sees it exit.
    if (cluster.isWorker) process.disconnect?.();
    return 0;
  },
};
