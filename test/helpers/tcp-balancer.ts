// A tiny round-robin TCP load balancer for multi-instance tests: each new
// client connection goes to the next backend; a backend that refuses the
// connection (a killed instance) is skipped, as a real balancer's health
// check would.
import { createServer, Socket, type Server } from 'node:net';

export interface TcpBalancer {
  url: string;
  /** Connections sent to each backend port. */
  readonly sent: Map<number, number>;
  close(): Promise<void>;
}

export async function tcpBalancer(backends: number[]): Promise<TcpBalancer> {
  let next = 0;
  const sent = new Map<number, number>(backends.map((p) => [p, 0]));
  const open = new Set<Socket>();
  /** Tries backends from `first` on, each once: concurrent connections must not send each other back to a dead one. */
  const connect = (client: Socket, first: number, tries: number): void => {
    if (tries === 0) return void client.destroy();
    const port = backends[first % backends.length]!;
    const upstream = new Socket();
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      sent.set(port, (sent.get(port) ?? 0) + 1);
      open.add(upstream);
      client.pipe(upstream).pipe(client);
      client.resume();
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
        open.delete(upstream);
      };
      client.on('close', drop).on('error', drop);
      upstream.on('close', drop).on('error', drop);
    });
    upstream.once('error', () => {
      if (!connected) connect(client, first + 1, tries - 1);
    });
    upstream.connect(port, '127.0.0.1');
  };
  const server: Server = createServer({ pauseOnConnect: true }, (client) => {
    open.add(client);
    client.on('close', () => open.delete(client));
    client.on('error', () => client.destroy());
    connect(client, next++, backends.length);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    sent,
    close: () =>
      new Promise((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
