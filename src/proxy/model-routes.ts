// Resolves the `model` a client asked for (name or alias) to the connection
// that serves it and the name the upstream knows it by.
import type { ConnectionConfig } from '../config/schema.js';

export interface ModelRoute {
  connection: ConnectionConfig;
  /** Canonical model name, as access rules and the audit trail refer to it. */
  model: string;
  /** The name sent upstream. */
  upstreamModel: string;
}

export class ModelRoutes {
  private readonly byName = new Map<string, ModelRoute>();
  readonly all: readonly ModelRoute[];

  constructor(connections: readonly ConnectionConfig[]) {
    const all: ModelRoute[] = [];
    for (const connection of connections) {
      for (const model of connection.models) {
        const route = { connection, model: model.name, upstreamModel: model.upstream_name ?? model.name };
        all.push(route);
        for (const name of [model.name, ...model.aliases]) this.byName.set(name, route);
      }
    }
    this.all = all;
  }

  resolve(requested: string): ModelRoute | undefined {
    return this.byName.get(requested);
  }
}
