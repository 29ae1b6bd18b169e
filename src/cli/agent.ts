// `modelgate agent`: run beside the model server. Dials out to the gateway's
// agent listener and serves the named connections from local model URLs.
// The key comes from MODELGATE_AGENT_KEY or --key-file; a changed key file
// (or SIGHUP) switches to the new key without dropping requests.
import { readFile } from 'node:fs/promises';
import { unwatchFile, watchFile } from 'node:fs';
import { readFileSync } from 'node:fs';
import { Agent, DEFAULT_IDLE_RECLAIM_MS, serveAgentStatus, statusUrl } from '../agent/agent.js';
import { DEFAULT_HEARTBEAT } from '../agent/heartbeat.js';
import { createLogger } from '../ops/logger.js';
import { UsageError, type Command } from './command.js';
import { onShutdownSignal } from './signals.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export const agentCommand: Command = {
  name: 'agent',
  summary: 'Run an agent beside a model server: it dials out to the gateway, so nothing connects in to the model.',
  usage: 'modelgate agent --gateway https://gateway:8443 --serve NAME=http://127.0.0.1:8000 [--serve …] [--key-file FILE]',
  options: {
    gateway: { type: 'string', description: 'The gateway agent listener (https://; http:// only to loopback)', valueName: 'url', default: process.env.MODELGATE_AGENT_GATEWAY },
    serve: { type: 'string', multiple: true, description: 'A connection this agent serves and its model server URL (repeatable)', valueName: 'name=url' },
    'key-file': { type: 'string', description: 'File holding the agent key (else MODELGATE_AGENT_KEY); re-read when it changes', valueName: 'file' },
    'ca-file': { type: 'string', description: 'PEM CA that signed the gateway agent listener certificate', valueName: 'file' },
    listen: { type: 'string', description: 'Where /healthz, /readyz and /metrics are served', valueName: 'host:port', default: '127.0.0.1:9465' },
    heartbeat: { type: 'string', description: 'PING the gateway this often (ms); no answer within --heartbeat-timeout redials', valueName: 'ms', default: String(DEFAULT_HEARTBEAT.intervalMs) },
    'heartbeat-timeout': { type: 'string', description: 'How long a PING may go unanswered, with nothing else received (ms)', valueName: 'ms', default: String(DEFAULT_HEARTBEAT.timeoutMs) },
    'idle-reclaim': { type: 'string', description: 'Give memory back once no request has been open this long after a burst (ms; 0: never)', valueName: 'ms', default: String(DEFAULT_IDLE_RECLAIM_MS) },
    'log-level': { type: 'string', description: 'fatal, error, warn, info, debug', valueName: 'level', default: 'info' },
  },
  async run(values) {
    if (!values.gateway) throw new UsageError('--gateway is required (or MODELGATE_AGENT_GATEWAY)');
    const serveArgs = (values.serve as unknown as string[] | undefined) ?? [];
    if (serveArgs.length === 0) throw new UsageError('give at least one --serve NAME=URL');
    const serve = new Map<string, URL>();
    for (const arg of serveArgs) {
      const eq = arg.indexOf('=');
      const url = eq > 0 ? URL.parse(arg.slice(eq + 1)) : null;
      if (!url || !/^https?:$/.test(url.protocol)) throw new UsageError(`--serve "${arg}" is not NAME=http(s)://host:port`);
      serve.set(arg.slice(0, eq), url);
    }
    const keyFile = typeof values['key-file'] === 'string' ? values['key-file'] : undefined;
    if (!keyFile && !process.env.MODELGATE_AGENT_KEY) throw new UsageError('give --key-file or set MODELGATE_AGENT_KEY');
    const heartbeat = { intervalMs: Number(values.heartbeat), timeoutMs: Number(values['heartbeat-timeout']) };
    for (const [flag, ms] of [['--heartbeat', heartbeat.intervalMs], ['--heartbeat-timeout', heartbeat.timeoutMs]] as const) {
      if (!Number.isInteger(ms) || ms < 100) throw new UsageError(`${flag} must be a whole number of milliseconds, at least 100`);
    }
    const idleReclaimMs = Number(values['idle-reclaim']);
    if (!Number.isInteger(idleReclaimMs) || idleReclaimMs < 0) throw new UsageError('--idle-reclaim must be a whole number of milliseconds (0 turns it off)');
    const [host, port] = String(values.listen).split(/:(?=\d+$)/);
    const log = createLogger(String(values['log-level']));
    let agent: Agent;
    try {
      agent = new Agent({
        gateway: new URL(String(values.gateway)),
        readKey: async () => (keyFile ? await readFile(keyFile, 'utf8') : process.env.MODELGATE_AGENT_KEY!),
        serve,
        version: VERSION,
        log,
        heartbeat,
        idleReclaimMs,
        ...(typeof values['ca-file'] === 'string' ? { ca: readFileSync(values['ca-file']) } : {}),
      });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const status = await serveAgentStatus(agent, host ?? '127.0.0.1', Number(port ?? 9465));
    log.info({ status: statusUrl(status), gateway: String(values.gateway), connections: [...serve.keys()], version: VERSION }, 'agent starting');
    agent.start();
    const reload = () => void agent.reload().catch((err: Error) => log.warn({ err: err.message }, 'key reload failed'));
    process.on('SIGHUP', reload);
    if (keyFile) watchFile(keyFile, { interval: 1000 }, reload);
    await onShutdownSignal(async (signal) => {
      log.info({ signal }, 'agent draining');
      if (keyFile) unwatchFile(keyFile);
      await agent.close();
      await new Promise<void>((resolve) => status.close(() => resolve()));
    });
    return 0;
  },
};
