// `node --import tsx bench/mask-cpu.ts`: CPU that streamed output masking
// costs per frame, over the wire shapes the gateway relays (the soak's chat
// chunks, a prose answer in ~4-character tokens, reasoning then tool-call
// arguments, Ollama NDJSON, Responses events), with the scanner the soak's
// guardrails build (PII and private keys).
//
// Frames are decoded and parsed before the clock starts, as the usage meter
// has parsed them in the gateway, so only `MaskingStreamTransform.push` and
// `end` are measured. Figures are CPU time (process.cpuUsage), so they still
// move with load; for a load-independent figure run it under callgrind
// twice, with MASK_CPU_STREAMS=N and 2N (MASK_CPU_DECODED fixed at 2N), and
// divide the difference in instructions by N times the frames per stream.
//
// Env: MASK_CPU_SCENARIOS (comma list, default all), MASK_CPU_STREAMS
// (masked streams per scenario, default 400), MASK_CPU_DECODED (streams
// decoded, default MASK_CPU_STREAMS), MASK_CPU_WARMUP (streams masked
// before the clock starts, default 50; under callgrind use several hundred), MASK_CPU_CHECK=1 prints a digest of the
// output (to compare two versions of the code byte for byte), MASK_CPU_PRINT=1
// writes the first stream's output.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { SpanRules } from '../src/mask/types.js';
import type { NdjsonLine } from '../src/protocol/ndjson.js';
import type { SseFrame } from '../src/protocol/sse.js';
import type { Operation } from '../src/protocol/types.js';

// MASK_CPU_DIST=1: the compiled code the gateway runs (npx tsc -p tsconfig.build.json first), without tsx's helpers in profiles.
const from = process.env.MASK_CPU_DIST === '1' ? '../dist' : '../src';
const { createScanner } = (await import(`${from}/detect/scanner.js`)) as typeof import('../src/detect/scanner.js');
const { MaskingSession } = (await import(`${from}/mask/session.js`)) as typeof import('../src/mask/session.js');
const { MaskingStreamTransform } = (await import(`${from}/mask/stream-transform.js`)) as typeof import('../src/mask/stream-transform.js');
const { NdjsonDecoder } = (await import(`${from}/protocol/ndjson.js`)) as typeof import('../src/protocol/ndjson.js');
const { encodeSseFrame, SseDecoder, sseJson } = (await import(`${from}/protocol/sse.js`)) as typeof import('../src/protocol/sse.js');

/** The soak's output guardrails (bench/targets.ts BENCH_GUARDRAILS): the PII category and private keys. */
const scanner = createScanner({ types: ['EMAIL', 'PHONE', 'CREDIT_CARD', 'US_SSN', 'IBAN', 'IP_ADDRESS', 'DATE_OF_BIRTH', 'PASSPORT', 'NATIONAL_ID', 'PRIVATE_KEY'] });
const rules: SpanRules = (span) =>
  span.type === 'PRIVATE_KEY' ? { action: 'end_stream', rule: 'no-private-keys' } : { action: 'mask', rule: 'mask-pii-out', strategy: { kind: 'placeholder' } };

const PROSE = [
  'Thanks for the details. I have updated the customer record as requested and checked the billing history for the last two quarters. ',
  'The invoices were sent to jane.doe@example.com on the first of each month, and the card on file, 4111 1111 1111 1111, was charged without errors. ',
  'For the refund, please use the account DE89 3704 0044 0532 0130 00 so that finance can match it against the original payment. ',
  'Call me on +44 20 7946 0958 if anything is unclear; the order 2024-11-05 shipped from 10.0.0.12 at 14:32 and costs $1,234.56 in total. ',
  'Let me know if anything else needs to change; I can also prepare a summary of the open tickets and the expected delivery dates for the next release. ',
].join('');
const tokens = (text: string): string[] => text.match(/\s?[^\s]{1,4}|\s/g)!;

const sse = (data: unknown, event?: string): string => encodeSseFrame({ ...(event !== undefined && { event }), data: JSON.stringify(data) });
const chunk = (delta: Record<string, unknown>, finish: string | null = null): string =>
  sse({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'm', system_fingerprint: 'fp_1', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });

const scenarios: Record<string, { operation: Operation; wire: string }> = {
  /** Exactly bench/soak-mock.ts's stream. */
  soak: {
    operation: 'chat',
    wire:
      Array.from({ length: 50 }, (_, i) =>
        `data: ${JSON.stringify({ id: 'chatcmpl-soak', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'soak', choices: [{ index: 0, delta: { content: i === 49 ? '.' : i === 25 ? ' write to jane.doe@example.com' : ` word${i}` }, finish_reason: i === 49 ? 'stop' : null }] })}\n\n`,
      ).join('') + 'data: [DONE]\n\n',
  },
  prose: {
    operation: 'chat',
    wire: chunk({ role: 'assistant', content: '' }) + tokens(PROSE).map((t) => chunk({ content: t })).join('') + chunk({}, 'stop') + 'data: [DONE]\n\n',
  },
  tools: {
    operation: 'chat',
    wire:
      chunk({ role: 'assistant', content: '', reasoning_content: '' }) +
      tokens(PROSE.slice(0, 300)).map((t) => chunk({ reasoning_content: t })).join('') +
      tokens(PROSE.slice(300, 500)).map((t) => chunk({ content: t })).join('') +
      chunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'send_mail', arguments: '' } }] }) +
      tokens(JSON.stringify({ to: 'bob\\u0040example.com', subject: 'Refund for order 2024-11-05', body: PROSE.slice(0, 160) }))
        .map((t) => chunk({ tool_calls: [{ index: 0, function: { arguments: t } }] }))
        .join('') +
      chunk({}, 'tool_calls') +
      'data: [DONE]\n\n',
  },
  ollama: {
    operation: 'ollama_chat',
    wire:
      tokens(PROSE).map((t) => `${JSON.stringify({ model: 'llama3', created_at: '2026-12-03T17:00:00.123456Z', message: { role: 'assistant', content: t }, done: false })}\n`).join('') +
      `${JSON.stringify({ model: 'llama3', created_at: '2026-12-03T17:00:09Z', message: { role: 'assistant', content: '' }, done_reason: 'stop', done: true, total_duration: 1, eval_count: 9 })}\n`,
  },
  responses: {
    operation: 'response',
    wire: (() => {
      let seq = 0;
      const ev = (type: string, body: Record<string, unknown>): string => sse({ type, sequence_number: seq++, ...body }, type);
      const item = { id: 'msg_1', type: 'message', status: 'in_progress', role: 'assistant', content: [] };
      return (
        ev('response.created', { response: { id: 'resp_1', object: 'response', status: 'in_progress', model: 'm', output: [] } }) +
        ev('response.output_item.added', { output_index: 0, item }) +
        ev('response.content_part.added', { item_id: 'msg_1', output_index: 0, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } }) +
        tokens(PROSE).map((t) => ev('response.output_text.delta', { item_id: 'msg_1', output_index: 0, content_index: 0, delta: t, logprobs: [], obfuscation: 'abc' })).join('') +
        ev('response.output_text.done', { item_id: 'msg_1', output_index: 0, content_index: 0, text: PROSE, logprobs: [] }) +
        ev('response.content_part.done', { item_id: 'msg_1', output_index: 0, content_index: 0, part: { type: 'output_text', text: PROSE, annotations: [] } }) +
        ev('response.output_item.done', { output_index: 0, item: { ...item, status: 'completed', content: [{ type: 'output_text', text: PROSE, annotations: [] }] } }) +
        ev('response.completed', { response: { id: 'resp_1', object: 'response', status: 'completed', model: 'm', output: [] } })
      );
    })(),
  },
};

const names = (process.env.MASK_CPU_SCENARIOS ?? Object.keys(scenarios).join(',')).split(',');
const STREAMS = Number(process.env.MASK_CPU_STREAMS ?? 400);
const DECODED = Math.max(STREAMS, Number(process.env.MASK_CPU_DECODED ?? STREAMS));
const CHECK = process.env.MASK_CPU_CHECK === '1';
const PRINT = process.env.MASK_CPU_PRINT === '1';
/** Streams masked before counting: under callgrind, enough that late tiering does not land in one count and not the other. */
const WARMUP = Number(process.env.MASK_CPU_WARMUP ?? 50);

function decode(operation: Operation, wire: string): Array<SseFrame | NdjsonLine> {
  if (operation === 'ollama_chat') {
    const decoder = new NdjsonDecoder();
    return [...decoder.push(wire), ...decoder.end()];
  }
  const decoder = new SseDecoder();
  const frames = [...decoder.push(wire), ...decoder.end()];
  // The usage meter has parsed each frame before masking sees it.
  for (const frame of frames) if (frame.data !== '[DONE]') sseJson(frame);
  return frames;
}

for (const name of names) {
  const { operation, wire } = scenarios[name]!;
  if (process.env.MASK_CPU_WIRE) {
    // The input, for other tools.
    writeFileSync(`${process.env.MASK_CPU_WIRE}/${name}.wire`, wire);
    continue;
  }
  const framing = operation === 'ollama_chat' ? 'ndjson' : 'sse';
  const streams = Array.from({ length: DECODED }, () => decode(operation, wire));
  const perStream = streams[0]!.length;
  // Warm-up on streams of their own, so the JIT has settled before the clock starts.
  for (let i = 0; i < WARMUP; i++) {
    const transform = new MaskingStreamTransform({ operation, framing, scanner, session: new MaskingSession(), rules });
    for (const frame of decode(operation, wire)) transform.push(frame);
    transform.end();
  }
  const digest = createHash('sha256');
  const started = process.cpuUsage();
  for (let s = 0; s < STREAMS; s++) {
    const transform = new MaskingStreamTransform({ operation, framing, scanner, session: new MaskingSession(), rules });
    for (const frame of streams[s]!) {
      const out = transform.push(frame);
      if (CHECK) for (const raw of out) digest.update(raw);
      if (PRINT && s === 0) process.stdout.write(out.join(''));
    }
    const tail = transform.end();
    if (CHECK) for (const raw of tail) digest.update(raw);
    if (PRINT && s === 0) process.stdout.write(tail.join(''));
  }
  const used = process.cpuUsage(started);
  const micros = (used.user + used.system) / (STREAMS * perStream);
  console.log(`${name.padEnd(10)} ${String(perStream).padStart(4)} frames/stream  ${micros.toFixed(2).padStart(7)} µs CPU/frame${CHECK ? `  output ${digest.digest('hex').slice(0, 16)}` : ''}`);
}
