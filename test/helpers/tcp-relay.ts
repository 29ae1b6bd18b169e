// A TCP relay in front of a server (PostgreSQL), so a test can take "the
// database" away without stopping the shared server, and bring it back as a
// restarted database would come back.
import { createServer, Socket, type Server } from 'node:net';
import pg from 'pg';
import { PG_URL } from './postgres.js';

export interface TcpRelay {
  port: number;
  /** Drops every open connection and refuses new ones (reset) until `restore`. */
  cut(): void;
  /** Accepts connections again. */
  restore(): void;
  close(): Promise<void>;
}

export async function tcpRelay(port: number): Promise<TcpRelay> {
  const sockets = new Set<Socket>();
  let down = false;
  const server: Server = createServer((client) => {
    if (down) return void client.destroy();
    const upstream = new Socket();
    sockets.add(client).add(upstream);
    upstream.connect(port, '127.0.0.1');
    client.pipe(upstream).pipe(client);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    cut() {
      down = true;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      down = false;
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface PostgresThroughRelay {
  relay: TcpRelay;
  /** `storage:` for the gateway's configuration, reaching PostgreSQL through the relay. */
  storage: { driver: 'postgres'; postgres: { url: string; schema: string; pool_size: number; connect_timeout: string } };
  /** Closes the relay and drops the schema. */
  cleanup(): Promise<void>;
}

/** The test PostgreSQL behind a relay the test can cut, in a schema of its own (`schema`, or one named after `name`). */
export async function postgresThroughRelay(name: string, options: { schema?: string; dropSchema?: boolean } = {}): Promise<PostgresThroughRelay> {
  const schema = options.schema ?? `mgtest_${name}_${process.pid}`;
  const url = new URL(PG_URL);
  const relay = await tcpRelay(Number(url.port || 5432));
  url.port = String(relay.port);
  return {
    relay,
    storage: { driver: 'postgres', postgres: { url: url.toString(), schema, pool_size: 2, connect_timeout: '1s' } },
    async cleanup() {
      await relay.close();
      if (options.dropSchema === false) return;
      const admin = new pg.Client({ connectionString: PG_URL });
      await admin.connect();
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    },
  };
}

export interface FaultyRelay {
  port: number;
  /** Open connections stop carrying bytes both ways and stay open, as a peer that stopped answering; new ones still pass. */
  freeze(): void;
  /** Open connections stop being read both ways, so what each end writes backs up in its own socket, as with a peer whose process stopped; new ones still pass. */
  stall(): void;
  /** Stalled connections are read again, and what backed up flows on, as when that process continues. */
  resume(): void;
  /** Drops every connection and refuses new ones until `restore`, as a server restart would. */
  cut(): void;
  restore(): void;
  /** Connections accepted so far. */
  readonly accepted: number;
  close(): Promise<void>;
}

/** A TCP relay to 127.0.0.1:`port` that a test can freeze, cut and restore. */
export async function faultyRelay(port: number): Promise<FaultyRelay> {
  const pairs = new Set<{ client: Socket; upstream: Socket; frozen: boolean; stalled: boolean }>();
  let refusing = false;
  let accepted = 0;
  const server: Server = createServer((client) => {
    if (refusing) return void client.destroy();
    accepted++;
    const upstream = new Socket();
    const pair = { client, upstream, frozen: false, stalled: false };
    pairs.add(pair);
    upstream.connect(port, '127.0.0.1');
    // Manual forwarding, so a frozen pair drops bytes instead of buffering them for later.
    client.on('data', (d: Buffer) => void (pair.frozen || upstream.write(d)));
    upstream.on('data', (d: Buffer) => void (pair.frozen || client.write(d)));
    const drop = (): void => {
      if (pair.frozen || pair.stalled) return; // a frozen or stopped peer does not even say goodbye
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
    stall() {
      for (const pair of pairs) {
        pair.stalled = true;
        pair.client.pause();
        pair.upstream.pause();
      }
    },
    resume() {
      for (const pair of pairs) {
        if (!pair.stalled) continue;
        pair.stalled = false;
        pair.client.resume();
        pair.upstream.resume();
      }
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
