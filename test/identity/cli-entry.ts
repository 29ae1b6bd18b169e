// Runs the CLI from source in its own process, as the bin does from dist.
import { main } from '../../src/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`modelgate: ${(err as Error)?.message ?? String(err)}`);
    process.exitCode = 1;
  },
);
