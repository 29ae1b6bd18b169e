// `node --import tsx bench/service-keys.ts`: what authenticating with a
// service key costs per request, against a person's JWT, in the same run.
// A service key is looked up in the shared identity state on every request
// (so a revocation holds at once); a JWT is verified offline (its signature
// remembered for 30 s). Measured in-process, so the figures are the
// gateway's own work plus the store round trip, not network noise:
//   - jwt:       TokenVerifier.verify of a real dev-IdP access token
//   - memory, sqlite, postgres: ServiceKeys.authenticate on that store
// Rounds alternate the order; medians of the rounds are reported.
// Env: BENCH_KEY_OPS (operations per target per round, default 2000), BENCH_KEY_ROUNDS (5).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { configSchema } from '../src/config/schema.js';
import { DEV_AUDIENCE, devConfigInput } from '../src/dev/dev-config.js';
import { startDevIdp } from '../src/dev/idp.js';
import { ServiceKeys } from '../src/identity/service-keys.js';
import type { IdentityState } from '../src/identity/state/identity-state.js';
import { openIdentityState } from '../src/identity/state/open-identity-state.js';
import { TokenVerifier } from '../src/identity/verify-token.js';

const OPS = Number(process.env.BENCH_KEY_OPS ?? 2000);
const ROUNDS = Number(process.env.BENCH_KEY_ROUNDS ?? 5);
const PG_URL = process.env.MODELGATE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const idp = await startDevIdp({ audience: DEV_AUDIENCE });
const dir = mkdtempSync(join(tmpdir(), 'bench-keys-'));
const schema = `bench_keys_${randomBytes(4).toString('hex')}`;
const config = configSchema.parse(devConfigInput({ host: '127.0.0.1', port: 0, issuer: idp.issuer, modelUrl: 'http://127.0.0.1:9', dataDir: dir }));
const verifier = new TokenVerifier(config.identity);
await verifier.warmUp();
const jwt = (await idp.loginAs('alice')).accessToken;

const states: Array<[string, IdentityState]> = [
  ['memory', await openIdentityState({ store: 'memory' })],
  ['sqlite', await openIdentityState({ store: 'sqlite', path: join(dir, 'identity.db') })],
  ['postgres', await openIdentityState({ store: 'postgres', url: PG_URL, schema, pool_size: 2 })],
];
const owner = { issuer: idp.issuer, subject: 'erin' };
const targets: Array<[string, () => Promise<unknown>]> = [['jwt', () => verifier.verify(jwt)]];
for (const [name, state] of states) {
  const keys = new ServiceKeys(state);
  const { key } = await keys.create({ name: 'bench', groups: ['notebooks'], owner }, config.identity.service_keys);
  targets.push([name, () => keys.authenticate(key)]);
}

const perOp: Record<string, number[]> = Object.fromEntries(targets.map(([name]) => [name, []]));
for (const [, run] of targets) for (let i = 0; i < 200; i++) await run();
for (let round = 0; round < ROUNDS; round++) {
  const order = [...targets.slice(round % targets.length), ...targets.slice(0, round % targets.length)];
  for (const [name, run] of order) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < OPS; i++) await run();
    perOp[name]!.push(Number(process.hrtime.bigint() - start) / 1000 / OPS);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const jwtMedian = median(perOp.jwt!);
console.log(`authentication per request, median of ${ROUNDS} rounds of ${OPS} (load average ${loadavg()[0]!.toFixed(1)})`);
for (const [name] of targets) console.log(`  ${name.padEnd(9)} ${median(perOp[name]!).toFixed(1).padStart(8)} µs   ${(median(perOp[name]!) / jwtMedian).toFixed(2)}x jwt`);

for (const [, state] of states) await state.close();
const client = new pg.Client({ connectionString: PG_URL });
await client.connect();
await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
await client.end();
await idp.close();
rmSync(dir, { recursive: true, force: true });
