// The mock upstream as its own process, so neither the load generator nor a
// gateway shares its event loop. Prints its URL on the first stdout line.
import { startDemoModel } from '../src/dev/demo-model.js';

const model = await startDemoModel({
  port: Number(process.env.BENCH_UPSTREAM_PORT ?? 0),
  apiKey: process.env.BENCH_UPSTREAM_KEY,
  chunkDelayMs: Number(process.env.BENCH_CHUNK_DELAY_MS ?? 0),
});
process.stdout.write(`${model.url}\n`);

const stop = (): void => {
  void model.close().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The parent holds our stdin open; EOF means it died without cleaning up.
process.stdin.on('end', stop);
process.stdin.resume();
