// A TCP relay in front of a server (PostgreSQL), so a test can take "the
// database" away without stopping the shared server.
import { createServer, Socket, type Server } from 'node:net';

export async function tcpRelay(port: number): Promise<{ port: number; cut(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = new Socket();
    sockets.add(client).add(upstream);
    upstream.connect(port, '127.0.0.1');
    client.pipe(upstream).pipe(client);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    cut() {
      server.close();
      for (const socket of sockets) socket.destroy();
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export interface FaultyRelay {
  port: number;
  /** Open connections stop carrying bytes both ways and stay open, as a peer that stopped answering; new ones still pass. */
  freeze(): void;
  /** Drops every connection and refuses new ones until `restore`, as a server restart would. */
  cut(): void;
  restore(): void;
  /** Connections accepted so far. */
  readonly accepted: number;
  close(): Promise<void>;
}

/** A TCP relay to 127.0.0.1:`port` that a test can freeze, cut and restore. */
export async function faultyRelay(port: number): Promise<FaultyRelay> {
  const pairs = new Set<{ client: Socket; upstream: Socket; frozen: boolean }>();
  let refusing = false;
  let accepted = 0;
  const server: Server = createServer((client) => {
    if (refusing) return void client.destroy();
    accepted++;
    const upstream = new Socket();
    const pair = { client, upstream, frozen: false };
    pairs.add(pair);
    upstream.connect(port, '127.0.0.1');
    // Manual forwarding, so a frozen pair drops bytes instead of buffering them for later.
    client.on('data', (d: Buffer) => void (pair.frozen || upstream.write(d)));
    upstream.on('data', (d: Buffer) => void (pair.frozen || client.write(d)));
    const drop = (): void => {
      if (pair.frozen) return; // a frozen peer does not even say goodbye
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    get accepted() {
      return accepted;
    },
    freeze() {
      for (const pair of pairs) pair.frozen = true;
    },
    cut() {
      refusing = true;
      for (const pair of pairs) {
        pair.frozen = false;
        pair.client.destroy();
        pair.upstream.destroy();
      }
      pairs.clear();
    },
    restore() {
      refusing = false;
    },
    close: () =>
      new Promise((resolve) => {
        for (const pair of pairs) {
          pair.client.destroy();
          pair.upstream.destroy();
        }
        server.close(() => resolve());
      }),
  };
}
