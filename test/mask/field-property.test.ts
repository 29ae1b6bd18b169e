// The masking property through the frame and field layer, the code path the
// gateway runs: a generated response with several text fields per choice
// (content, reasoning, reasoning_content, thinking, refusal, parallel tool
// calls whose JSON arguments spell `@` as `\u0040`), cut at random points
// into deltas, interleaved over frames that carry several fields at once
// and empty sibling fields, and split again at random byte offsets on the
// wire. What the client assembles per field equals what the non-streamed
// path (maskResponseBody) gives for the same response, and no entity that
// the non-streamed path masks appears raw. Real scanner; seeds printed.
// Then the same deterministically: four fields cut at every offset.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { createScanner } from '../../src/detect/scanner.js';
import { maskResponseBody } from '../../src/mask/response-body.js';
import { MaskingSession } from '../../src/mask/session.js';
import { MaskingStreamTransform } from '../../src/mask/stream-transform.js';
import type { SpanRules } from '../../src/mask/types.js';
import { NdjsonDecoder } from '../../src/protocol/ndjson.js';
import { encodeSseFrame, SseDecoder } from '../../src/protocol/sse.js';
import { propertyRun, splitAt } from './scanners.js';

const scanner = createScanner();
const HASH_KEY = 'a-test-key-that-is-long-enough-000';

const PEM = '-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEAq7BFUpkGp3+LQmlQ\n-----END PRIVATE KEY-----';
const entity = fc.constantFrom('4111 1111 1111 1111', '5500-0000-0000-0004', 'bob@example.com', 'a.b+c@mail.co.uk', 'DE89 3704 0044 0532 0130 00', 'GB82WEST12345698765432', '123-45-6789', PEM);
const filler = fc.constantFrom('the', 'card', 'mail', 'is', ' ', ' ', '\n', ', ', 'é', '世界', '😀', '4111', '@', '.com', '-----', 'DE89', '"', '\\');
/** A field's whole text. */
const fieldText = fc.array(fc.oneof({ arbitrary: entity, weight: 1 }, { arbitrary: filler, weight: 4 }), { minLength: 1, maxLength: 24 }).map((parts) => parts.join(''));

const TEXT_KEYS = ['reasoning_content', 'reasoning', 'thinking', 'content', 'refusal'] as const;

interface Choice {
  texts: Partial<Record<(typeof TEXT_KEYS)[number], string>>;
  /** Tool-call arguments as JSON text, `@` escaped or not. */
  toolArgs: string[];
}

const toolArgs = fc.tuple(fieldText, fc.boolean()).map(([text, escape]) => {
  const json = JSON.stringify({ value: text, n: 1 });
  return escape ? json.replaceAll('@', '\\u0040') : json;
});
const choice: fc.Arbitrary<Choice> = fc.record({
  texts: fc.record(Object.fromEntries(TEXT_KEYS.map((k) => [k, fieldText])) as Record<(typeof TEXT_KEYS)[number], fc.Arbitrary<string>>, { requiredKeys: [] }),
  toolArgs: fc.array(toolArgs, { maxLength: 2 }),
});

/** One delta: which choice, which field, what text. */
interface Piece {
  choice: number;
  field: string;
  text: string;
}

const cutInto = (text: string, cuts: number[]): string[] => splitAt(text, cuts.map((c) => c % (text.length + 1)));

/** A response and a random interleaving of its deltas into frames, with empty siblings sprinkled in. */
const scenario = fc
  .array(choice, { minLength: 1, maxLength: 2 })
  .chain((choices) => {
    const fields = choices.flatMap((c, i) => [...Object.entries(c.texts).map(([field, text]) => ({ choice: i, field, text: text! })), ...c.toolArgs.map((text, k) => ({ choice: i, field: `tool:${k}`, text }))]);
    return fc.tuple(
      fc.constant(choices),
      fc.tuple(...fields.map((f) => fc.array(fc.nat({ max: 400 }), { maxLength: 6 }).map((cuts) => cutInto(f.text, cuts).map((text): Piece => ({ choice: f.choice, field: f.field, text })))), fc.constant([] as Piece[])),
      fc.array(fc.nat(), { minLength: 64, maxLength: 64 }),
      fc.array(fc.nat({ max: 9 }), { maxLength: 12 }),
    );
  })
  .map(([choices, perField, randomness, wireCuts]) => {
    // Interleave: each frame takes the next piece of one to three fields.
    const queues = (perField as Piece[][]).filter((q) => q.length > 0).map((q) => [...q]);
    const frames: Piece[][] = [];
    let r = 0;
    while (queues.some((q) => q.length > 0)) {
      const live = queues.filter((q) => q.length > 0);
      const take = 1 + (randomness[r++ % randomness.length]! % Math.min(3, live.length));
      const start = randomness[r++ % randomness.length]! % live.length;
      frames.push(Array.from({ length: take }, (_, i) => live[(start + i) % live.length]!.shift()!));
    }
    return { choices: choices as Choice[], frames, emptySiblings: randomness.slice(0, frames.length).map((x) => x % 3 === 0), wireCuts };
  });

function chatWire(s: { choices: Choice[]; frames: Piece[][]; emptySiblings: boolean[] }): string {
  const envelope = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'm' };
  const frame = (choices: unknown[]): string => encodeSseFrame({ data: JSON.stringify({ ...envelope, choices }) });
  let wire = frame(s.choices.map((_, index) => ({ index, delta: { role: 'assistant', content: '' }, finish_reason: null })));
  // Tool calls are announced with their id and name first, as OpenAI and vLLM do.
  s.choices.forEach((c, index) => {
    if (c.toolArgs.length > 0) {
      wire += frame([{ index, delta: { tool_calls: c.toolArgs.map((_, k) => ({ index: k, id: `call_${k}`, type: 'function', function: { name: `f${k}`, arguments: '' } })) }, finish_reason: null }]);
    }
  });
  s.frames.forEach((pieces, f) => {
    const byChoice = new Map<number, Record<string, unknown>>();
    for (const piece of pieces) {
      const delta = byChoice.get(piece.choice) ?? {};
      if (piece.field.startsWith('tool:')) {
        const calls = (delta.tool_calls as unknown[] | undefined) ?? [];
        calls.push({ index: Number(piece.field.slice(5)), function: { arguments: piece.text } });
        delta.tool_calls = calls;
      } else {
        delta[piece.field] = piece.text;
      }
      // An empty sibling: the field a server sends beside another on every frame.
      if (s.emptySiblings[f]) for (const key of ['content', 'reasoning']) if (!(key in delta)) delta[key] = '';
      byChoice.set(piece.choice, delta);
    }
    wire += frame([...byChoice].map(([index, delta]) => ({ index, delta, logprobs: null, finish_reason: null })));
  });
  wire += frame(s.choices.map((_, index) => ({ index, delta: {}, finish_reason: 'stop' })));
  return `${wire}data: [DONE]\n\n`;
}

function chatBody(choices: Choice[]): Record<string, unknown> {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion',
    choices: choices.map((c, index) => ({
      index,
      message: {
        role: 'assistant',
        ...c.texts,
        ...(c.toolArgs.length > 0 && { tool_calls: c.toolArgs.map((args, k) => ({ id: `call_${k}`, type: 'function', function: { name: `f${k}`, arguments: args } })) }),
      },
      finish_reason: 'stop',
    })),
  };
}

/** What a client assembles from the masked stream: choice → field → text. */
function assemble(wire: string): Map<string, string> {
  const decoder = new SseDecoder();
  const fields = new Map<string, string>();
  for (const frame of [...decoder.push(Buffer.from(wire)), ...decoder.end()]) {
    if (!frame.hasData || frame.data === '[DONE]') continue;
    const data = JSON.parse(frame.data) as { error?: unknown; choices?: Array<{ index: number; delta?: Record<string, unknown> }> };
    for (const c of data.choices ?? []) {
      for (const [key, value] of Object.entries(c.delta ?? {})) {
        if (typeof value === 'string' && key !== 'role') fields.set(`${c.index}:${key}`, (fields.get(`${c.index}:${key}`) ?? '') + value);
        if (key === 'tool_calls') {
          for (const call of value as Array<{ index: number; function?: { arguments?: string } }>) {
            const k = `${c.index}:tool:${call.index}`;
            fields.set(k, (fields.get(k) ?? '') + (call.function?.arguments ?? ''));
          }
        }
      }
    }
  }
  return fields;
}

function expected(body: Record<string, unknown>): Map<string, string> {
  const fields = new Map<string, string>();
  for (const c of body.choices as Array<{ index: number; message: Record<string, unknown> }>) {
    for (const [key, value] of Object.entries(c.message)) if (typeof value === 'string' && key !== 'role') fields.set(`${c.index}:${key}`, value);
    ((c.message.tool_calls as Array<{ function: { arguments: string } }> | undefined) ?? []).forEach((call, k) => fields.set(`${c.index}:tool:${k}`, call.function.arguments));
  }
  return fields;
}

/** Runs wire text through the gateway's transform, the wire cut at the given byte offsets. */
function transformWire(operation: 'chat' | 'ollama_chat', wire: string, cuts: number[], rules: SpanRules): { out: string; stopped: boolean } {
  const framing = operation === 'chat' ? 'sse' : 'ndjson';
  const transform = new MaskingStreamTransform({ operation, framing, scanner, session: new MaskingSession({ hashKey: HASH_KEY }), rules });
  const decoder = framing === 'sse' ? new SseDecoder() : new NdjsonDecoder();
  const bytes = Buffer.from(wire);
  let out = '';
  let at = 0;
  for (const step of [...cuts.map((c) => c + 1), bytes.length]) {
    for (const frame of decoder.push(bytes.subarray(at, at + step))) out += transform.push(frame).join('');
    at += step;
    if (at >= bytes.length) break;
  }
  for (const frame of decoder.push(bytes.subarray(at))) out += transform.push(frame).join('');
  for (const frame of decoder.end()) out += transform.push(frame).join('');
  out += transform.end().join('');
  return { out, stopped: transform.stopped !== undefined };
}

const RULE_SETS: Array<[string, SpanRules]> = [
  // Hashes name a value the same whatever order the fields are met in, so streamed and whole compare exactly.
  ['keyed hash for everything', () => ({ action: 'mask', rule: 'all', strategy: { kind: 'hash', length: 8 } })],
  [
    'private keys end the response, cards partially masked, the rest hashed',
    (span) =>
      span.type === 'PRIVATE_KEY'
        ? { action: 'end_stream', rule: 'no-keys' }
        : span.type === 'CREDIT_CARD'
          ? { action: 'mask', rule: 'cards', strategy: { kind: 'partial', keepLast: 4 } }
          : { action: 'mask', rule: 'rest', strategy: { kind: 'hash', length: 8 } },
  ],
];

describe('streamed masking equals non-streamed masking through the frame and field layer (real scanner)', () => {
  for (const [label, rules] of RULE_SETS) {
    test(`chat: several fields per frame, empty siblings, interleaved parallel tool calls (${label})`, (t) => {
      const run = propertyRun(40);
      t.diagnostic(`fast-check seed ${run.seed} (replay: FAST_CHECK_SEED=${run.seed})`);
      fc.assert(
        fc.property(scenario, (s) => {
          const body = chatBody(s.choices);
          const whole = maskResponseBody(structuredClone(body), 'chat', { scanner, session: new MaskingSession({ hashKey: HASH_KEY }), rules });
          const streamed = transformWire('chat', chatWire(s), s.wireCuts, rules);
          assert.equal(streamed.stopped, whole.termination !== undefined, 'a rule that withholds the whole response ends the stream');
          if (whole.termination) {
            assert.ok(!streamed.out.includes('BEGIN PRIVATE KEY'), 'no part of the key header went out');
            return;
          }
          const got = assemble(streamed.out);
          for (const [field, text] of expected(whole.body as Record<string, unknown>)) assert.equal(got.get(field) ?? '', text, field);
        }),
        run,
      );
    });
  }

  test('Ollama /api/chat: thinking beside content on every line (thinking models send both)', (t) => {
    const run = propertyRun(40);
    t.diagnostic(`fast-check seed ${run.seed} (replay: FAST_CHECK_SEED=${run.seed})`);
    const rules = RULE_SETS[0]![1];
    const pair = fc.tuple(fieldText, fieldText, fc.array(fc.nat({ max: 400 }), { maxLength: 8 }), fc.array(fc.nat({ max: 400 }), { maxLength: 8 }), fc.array(fc.nat({ max: 9 }), { maxLength: 12 }));
    fc.assert(
      fc.property(pair, ([thinking, content, thinkCuts, contentCuts, wireCuts]) => {
        const thinks = cutInto(thinking, thinkCuts);
        const contents = cutInto(content, contentCuts);
        const lines: string[] = [];
        // Thinking first, each line with an empty content beside it; then content with an empty thinking.
        for (const piece of thinks) lines.push(JSON.stringify({ model: 'm', created_at: 't', message: { role: 'assistant', content: '', thinking: piece }, done: false }));
        for (const piece of contents) lines.push(JSON.stringify({ model: 'm', created_at: 't', message: { role: 'assistant', content: piece, thinking: '' }, done: false }));
        lines.push(JSON.stringify({ model: 'm', created_at: 't', message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop' }));
        const whole = maskResponseBody({ model: 'm', message: { role: 'assistant', content, thinking }, done: true }, 'ollama_chat', { scanner, session: new MaskingSession({ hashKey: HASH_KEY }), rules });
        const { out } = transformWire('ollama_chat', lines.map((l) => `${l}\n`).join(''), wireCuts, rules);
        const got = { content: '', thinking: '' };
        for (const line of out.split('\n').filter(Boolean)) {
          const message = (JSON.parse(line) as { message?: { content?: string; thinking?: string } }).message;
          got.content += message?.content ?? '';
          got.thinking += message?.thinking ?? '';
        }
        const message = (whole.body as { message: { content: string; thinking: string } }).message;
        assert.equal(got.thinking, message.thinking);
        assert.equal(got.content, message.content);
      }),
      run,
    );
  });
});

describe('every boundary, several fields per frame (real scanner)', () => {
  // Four fields of one choice, each holding entities, cut at the same offset
  // and sent two frames at a time: both frames carry every field, with empty
  // siblings beside them and the tool calls interleaved.
  const fields: Record<string, string> = {
    reasoning: 'The user is jane.doe@example.com, card 4111 1111 1111 1111.',
    content: 'Mail bob@example.org or call; IBAN DE89 3704 0044 0532 0130 00 ok',
    'tool:0': String.raw`{"to":"jane.doe\u0040example.com","cc":"x"}`,
    'tool:1': JSON.stringify({ card: '5500-0000-0000-0004', note: 'a.b+c@mail.co.uk' }),
  };
  const rules = RULE_SETS[0]![1];
  const whole = maskResponseBody(
    chatBody([{ texts: { reasoning: fields.reasoning!, content: fields.content! }, toolArgs: [fields['tool:0']!, fields['tool:1']!] }]),
    'chat',
    { scanner, session: new MaskingSession({ hashKey: HASH_KEY }), rules },
  );
  const expectedFields = expected(whole.body as Record<string, unknown>);
  const longest = Math.max(...Object.values(fields).map((t) => t.length));

  test('cut at every offset: the assembled fields equal the non-streamed response', () => {
    for (let cut = 0; cut <= longest; cut++) {
      const first: Piece[] = [];
      const second: Piece[] = [];
      // Tool call 1 before tool call 0 in the second frame: interleaved, not one after the other.
      for (const field of ['reasoning', 'content', 'tool:0', 'tool:1']) first.push({ choice: 0, field, text: fields[field]!.slice(0, cut) });
      for (const field of ['tool:1', 'content', 'tool:0', 'reasoning']) second.push({ choice: 0, field, text: fields[field]!.slice(cut) });
      const s = { choices: [{ texts: { reasoning: '', content: '' }, toolArgs: ['', ''] }], frames: [first, [{ choice: 0, field: 'content', text: '' }], second], emptySiblings: [true, true, true] };
      const got = assemble(transformWire('chat', chatWire(s), [], rules).out);
      for (const [field, text] of expectedFields) assert.equal(got.get(field) ?? '', text, `${field}, cut at ${cut}`);
    }
  });
});
