// Opens the identity state the configuration selects. Native and network
// drivers load only when chosen.
import type { IdentityStateConfig } from '../../config/identity-schema.js';
import type { IdentityState } from './identity-state.js';
import { MemoryIdentityState } from './memory-state.js';

export async function openIdentityState(config: IdentityStateConfig): Promise<IdentityState> {
  let state: IdentityState;
  switch (config.store) {
    case 'memory':
      state = new MemoryIdentityState();
      break;
    case 'sqlite': {
      const { SqliteIdentityState } = await import('./sqlite-state.js');
      state = await SqliteIdentityState.open(config.path);
      break;
    }
    case 'postgres': {
      const { PostgresIdentityState } = await import('./postgres-state.js');
      state = await PostgresIdentityState.open({ url: config.url, schema: config.schema, poolSize: config.pool_size });
      break;
    }
  }
  await state.init();
  return state;
}
