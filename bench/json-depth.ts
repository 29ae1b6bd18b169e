// `node --import tsx bench/json-depth.ts`: what the worst-case nested JSON
// body costs the gateway, as a ratio to a flat body of the same size.
//
// Both bodies (4,000,000 bytes each) go through the gateway's own body reader
// (`readJsonBody`: size limit, depth scan, parse) from an in-memory request,
// so the figures are the gateway's CPU time, not network noise:
//   - nested: 2,000,000 levels of `[`, the attack from the hardening review;
//   - flat:   a chat request whose one message is 4 MB of text.
// For context, it also times JSON.parse on the nested body, which is what
// every request cost before the depth limit.
// Env: BENCH_JSON_RUNS (timed runs per body, default 15).
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { readJsonBody } from '../src/http/read-json-body.js';

const RUNS = Number(process.env.BENCH_JSON_RUNS ?? 15);
const SIZE = 4_000_000;
const MAX_BYTES = 4 * 1024 * 1024;

const nested = Buffer.from('['.repeat(SIZE / 2) + ']'.repeat(SIZE / 2));
const prefix = '{"model":"m","messages":[{"role":"user","content":"';
const suffix = '"}]}';
const flat = Buffer.from(prefix + 'x'.repeat(SIZE - prefix.length - suffix.length) + suffix);

function requestOf(body: Buffer): IncomingMessage {
  // 64 KiB chunks, as a socket delivers them.
  const chunks: Buffer[] = [];
  for (let i = 0; i < body.length; i += 65_536) chunks.push(body.subarray(i, i + 65_536));
  const req = Readable.from(chunks) as unknown as IncomingMessage;
  req.headers = { 'content-type': 'application/json', 'content-length': String(body.length) };
  return req;
}

async function timeRead(body: Buffer): Promise<number> {
  const start = process.hrtime.bigint();
  await readJsonBody(requestOf(body), MAX_BYTES).catch(() => undefined);
  return Number(process.hrtime.bigint() - start) / 1e6;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  if (nested.length !== flat.length) throw new Error('bodies must be the same size');
  for (let i = 0; i < 3; i++) await Promise.all([timeRead(nested), timeRead(flat)]); // warm-up
  const nestedMs: number[] = [];
  const flatMs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    // Alternate, so background noise on the shared machine hits both alike.
    nestedMs.push(await timeRead(nested));
    flatMs.push(await timeRead(flat));
  }
  const parseStart = process.hrtime.bigint();
  try {
    JSON.parse(nested.toString('utf8'));
  } catch {
    // Only the time matters.
  }
  const unguardedMs = Number(process.hrtime.bigint() - parseStart) / 1e6;
  const ratio = median(nestedMs) / median(flatMs);
  const pass = ratio <= 1;
  console.log(`body reader, ${SIZE} bytes, median of ${RUNS}`);
  console.log(`  nested (2,000,000 levels)  ${median(nestedMs).toFixed(2)} ms   (refused: json_too_deep)`);
  console.log(`  flat (one 4 MB message)    ${median(flatMs).toFixed(2)} ms   (parsed)`);
  console.log(`  nested / flat              ${ratio.toFixed(2)}x   target <= 1.00x   ${pass ? 'PASS' : 'MISS'}`);
  console.log(`  JSON.parse of the nested body without the limit: ${unguardedMs.toFixed(0)} ms`);
  if (!pass) process.exitCode = 1;
}

await main();
