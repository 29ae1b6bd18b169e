// `node --import tsx bench/mask.ts`: what streamed output masking adds.
//
// A typical chat answer (~1.6k characters, an email, a card and an IBAN in
// it) arrives as one SSE chunk per ~4-character token. For each scanner the
// transform is timed frame by frame, in process, so the figures are the
// gateway's own CPU time, not network noise:
//   - CPU per frame (p50, p99);
//   - holdback before the first content is released, in tokens: each held
//     token adds one inter-token interval to the time to first token;
//   - added time to first token at p50: the CPU spent until the first release
//     plus the held tokens times the interval (BENCH_TOKEN_MS, default 20 ms,
//     i.e. 50 tokens/s).
// Env: BENCH_MASK_STREAMS (streams per scanner, default 300), BENCH_TOKEN_MS.
import { createScanner } from '../src/detect/scanner.js';
import { MaskingSession } from '../src/mask/session.js';
import { MaskingStreamTransform } from '../src/mask/stream-transform.js';
import type { EntityScanner, SpanRules } from '../src/mask/types.js';
import { encodeSseFrame, SseDecoder, type SseFrame } from '../src/protocol/sse.js';
import { createTestScanner } from '../test/mask/test-scanner.js';

const STREAMS = Number(process.env.BENCH_MASK_STREAMS ?? 300);
const TOKEN_MS = Number(process.env.BENCH_TOKEN_MS ?? 20);

const ANSWER = [
  'Thanks for the details. I have updated the customer record as requested and checked the billing history for the last two quarters. ',
  'The invoices were sent to jane.doe@example.com on the first of each month, and the card on file, 4111 1111 1111 1111, was charged without errors. ',
  'For the refund, please use the account DE89 3704 0044 0532 0130 00 so that finance can match it against the original payment. ',
  'Let me know if anything else needs to change; I can also prepare a summary of the open tickets and the expected delivery dates for the next release. ',
].join('').repeat(3);

function upstreamFrames(): SseFrame[] {
  const frame = (delta: Record<string, unknown>, finish: string | null = null): string =>
    encodeSseFrame({ data: JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] }) });
  let wire = frame({ role: 'assistant', content: '' });
  for (const token of ANSWER.match(/[\s\S]{1,4}/g)!) wire += frame({ content: token });
  wire += frame({}, 'stop') + 'data: [DONE]\n\n';
  const decoder = new SseDecoder();
  return [...decoder.push(wire), ...decoder.end()];
}

const rules: SpanRules = (span) =>
  span.type === 'PRIVATE_KEY' ? { action: 'end_stream', rule: 'no-keys' } : { action: 'mask', rule: 'mask-pii', strategy: { kind: 'placeholder' } };

const percentile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

interface Row {
  scanner: string;
  frameP50: number;
  frameP99: number;
  heldTokens: number;
  cpuToFirstP50: number;
  addedTtftP50: number;
}

function measure(name: string, scanner: EntityScanner, frames: readonly SseFrame[]): Row {
  const perFrame: number[] = [];
  const cpuToFirst: number[] = [];
  const ttft: number[] = [];
  let heldTokens = 0;
  for (let run = 0; run < STREAMS; run++) {
    const transform = new MaskingStreamTransform({ operation: 'chat', framing: 'sse', scanner, session: new MaskingSession(), rules });
    let cpuUntilFirst = 0;
    let firstReleaseAt = -1;
    let firstContentAt = -1;
    frames.forEach((frame, i) => {
      const start = performance.now();
      const out = transform.push(frame);
      const elapsed = performance.now() - start;
      perFrame.push(elapsed);
      if (firstReleaseAt !== -1) return;
      cpuUntilFirst += elapsed;
      if (firstContentAt === -1 && /"content":"[^"]/.test(frame.data)) firstContentAt = i;
      if (out.some((raw) => /"content":"[^"]/.test(raw))) firstReleaseAt = i;
    });
    heldTokens = Math.max(0, firstReleaseAt - firstContentAt);
    cpuToFirst.push(cpuUntilFirst);
    ttft.push(cpuUntilFirst + heldTokens * TOKEN_MS);
  }
  for (const list of [perFrame, cpuToFirst, ttft]) list.sort((a, b) => a - b);
  return {
    scanner: name,
    frameP50: percentile(perFrame, 50),
    frameP99: percentile(perFrame, 99),
    heldTokens,
    cpuToFirstP50: percentile(cpuToFirst, 50),
    addedTtftP50: percentile(ttft, 50),
  };
}

const frames = upstreamFrames();
const scanners: Array<[string, EntityScanner]> = [
  ['createScanner() (all types)', createScanner()],
  ['createScanner({ types: PII })', createScanner({ types: ['EMAIL', 'CREDIT_CARD', 'IBAN', 'PHONE', 'US_SSN', 'IP_ADDRESS'] })],
  ['test double, fixed holdback', createTestScanner()],
  ['test double + undecidedFrom', createTestScanner({ withUndecidedFrom: true })],
];
// Warm up the JIT before measuring anything.
for (const [, scanner] of scanners) measure('warmup', scanner, frames.slice(0, 100));

console.log(`stream: ${ANSWER.length} characters in ${frames.length} frames; ${STREAMS} streams per scanner; inter-token interval ${TOKEN_MS} ms\n`);
const columns = ['scanner'.padEnd(30), 'CPU/frame p50', '      p99', ' held tokens', ' CPU to 1st text p50', ' added TTFT p50', ' holdback bound'];
console.log(columns.join(' '));
for (const [name, scanner] of scanners) {
  const row = measure(name, scanner, frames);
  const cells = [
    row.scanner.padEnd(30),
    `${(row.frameP50 * 1000).toFixed(1)} µs`.padStart(13),
    `${(row.frameP99 * 1000).toFixed(1)} µs`.padStart(9),
    String(row.heldTokens).padStart(12),
    `${row.cpuToFirstP50.toFixed(3)} ms`.padStart(20),
    `${row.addedTtftP50.toFixed(2)} ms`.padStart(15),
    `${scanner.maxEntityLength + scanner.contextLength} chars`.padStart(15),
  ];
  console.log(cells.join(' '));
}
