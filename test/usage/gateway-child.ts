// A gateway in its own process, for tests that need two instances sharing
// one Redis. Reads its configuration (schema input, JSON) from
// MODELGATE_CHILD_CONFIG, prints {"url": ...} once listening, and shuts down
// on SIGTERM.
import { configSchema } from '../../src/config/schema.js';
import { Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/ops/logger.js';

const gateway = new Gateway(configSchema.parse(JSON.parse(process.env.MODELGATE_CHILD_CONFIG!)), {
  logger: createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'),
});
const url = await gateway.listen();
await gateway.services.verifier.warmUp();
process.stdout.write(`${JSON.stringify({ url })}\n`);
process.once('SIGTERM', () => {
  void gateway.close(500).then(() => process.exit(0));
});
