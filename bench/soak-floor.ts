// The soak's floor: a proxy that does nothing but pass bytes on, run on the
// same cores as the gateway would be, so the soak can say how much of a
// gateway's distance from "direct" any proxy pays on this machine.
//
// `tcp`: a layer-4 splice (net.Socket pipes both ways), the cheapest relay
// Node can do. `http`: a layer-7 reverse proxy (node:http in, a keep-alive
// node:http Agent out, bodies piped unread): what every HTTP gateway does
// before any inspection, identity or recording.
//
// Usage: node --import tsx bench/soak-floor.ts tcp|http UPSTREAM_URL
// Prints its URL on the first stdout line.
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';

const [mode, upstreamArg] = process.argv.slice(2);
if ((mode !== 'tcp' && mode !== 'http') || !upstreamArg) {
  console.error('usage: soak-floor.ts tcp|http UPSTREAM_URL');
  process.exit(2);
}
const upstream = new URL(upstreamArg);
const upstreamPort = Number(upstream.port);
// As the gateway's server.listen_backlog: a burst of thousands of connections must not overflow the accept queue.
const BACKLOG = 4096;

function serveTcp(): net.Server {
  return net.createServer((client) => {
    const model = net.connect(upstreamPort, upstream.hostname);
    client.setNoDelay(true);
    model.setNoDelay(true);
    const close = (): void => {
      client.destroy();
      model.destroy();
    };
    client.on('error', close).on('close', close);
    model.on('error', close).on('close', close);
    client.pipe(model);
    model.pipe(client);
  });
}

function serveHttp(): http.Server {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  return http.createServer((req, res) => {
    const forwarded = http.request({ host: upstream.hostname, port: upstreamPort, method: req.method, path: req.url, headers: req.headers, agent }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forwarded.on('error', () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
    // A client that goes away cancels the upstream request; a finished answer leaves its socket to the pool.
    res.on('close', () => res.writableFinished || forwarded.destroy());
    req.pipe(forwarded);
  });
}

const server = mode === 'tcp' ? serveTcp() : serveHttp();
// Exit cleanly when the bench stops it, so a --cpu-prof profile (BENCH_FLOOR_NODE_FLAGS) is written.
process.once('SIGTERM', () => process.exit(0));
server.listen({ host: '127.0.0.1', port: 0, backlog: BACKLOG }, () => {
  console.log(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
