// /metrics names models, issuers and rules: an operator can move it to its
// own address (`server.metrics.listen`, e.g. a loopback or cluster-internal
// port) and require a static bearer token scrapers send
// (`server.metrics.bearer`). By default it stays on the main port, open, as
// Prometheus expects.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { GatewayError } from '../http/errors.js';
import { sendError } from '../http/send.js';

export interface MetricsSettings {
  listen?: string;
  bearer?: string;
}

/** Answers a metrics scrape, or throws 401 when a bearer is configured and not sent. */
export async function serveMetrics(req: IncomingMessage, res: ServerResponse, registry: Registry, settings: MetricsSettings): Promise<void> {
  if (settings.bearer !== undefined && !bearerMatches(req.headers.authorization, settings.bearer)) {
    throw new GatewayError('Metrics need the scrape bearer token configured as server.metrics.bearer.', {
      status: 401,
      type: 'authentication_error',
      code: 'metrics_token_invalid',
      headers: { 'www-authenticate': 'Bearer realm="metrics"' },
    });
  }
  const body = await registry.metrics();
  res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
  res.end(body);
}

function bearerMatches(authorization: string | undefined, bearer: string): boolean {
  const sent = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '')?.[1] ?? '';
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(sent), digest(bearer));
}

/** The separate metrics listener: /metrics only, everything else 404. */
export class MetricsListener {
  private readonly server: Server;

  constructor(registry: Registry, settings: MetricsSettings) {
    this.server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?', 1)[0];
      if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
        sendError(res, new GatewayError('This listener serves only GET /metrics.', { status: 404, type: 'not_found_error', code: 'unknown_endpoint' }));
        return;
      }
      serveMetrics(req, res, registry, settings).catch((err: unknown) => {
        if (err instanceof GatewayError) sendError(res, err);
        else res.destroy();
      });
    });
  }

  /** Listens on `host:port` and returns the URL. */
  async listen(address: string): Promise<string> {
    const split = address.lastIndexOf(':');
    const host = address.slice(0, split).replace(/^\[(.*)\]$/, '$1');
    const port = Number(address.slice(split + 1));
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const bound = this.server.address() as AddressInfo;
    return `http://${bound.address.includes(':') ? `[${bound.address}]` : bound.address}:${bound.port}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
