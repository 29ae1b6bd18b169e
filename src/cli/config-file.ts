// The gateway configuration for commands that read it whole: loaded and
// validated as the gateway does, or, when it is not valid, the reason
// printed once for the caller to exit with EXIT_CONFIG.
import { ConfigError, loadConfigFile } from '../config/load.js';
import type { Config } from '../config/schema.js';

export async function loadConfigOrReport(path: string): Promise<Config | undefined> {
  try {
    return await loadConfigFile(path);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`modelgate: ${err.message}`);
    return undefined;
  }
}
