// Protocol coverage, at the frame and field layer the gateway uses: for every
// published response and stream shape (test/helpers/output-shapes.ts), an
// entity in every string field reaches the client masked, streamed (split
// across frames) or not. Token ids, logprobs and unreadable media are gone.
// The end-to-end twin, through a running gateway, is test/e2e/output-coverage.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createScanner } from '../../src/detect/scanner.js';
import { maskResponseBody } from '../../src/mask/response-body.js';
import { MaskingSession } from '../../src/mask/session.js';
import { MaskingStreamTransform } from '../../src/mask/stream-transform.js';
import type { SpanRules } from '../../src/mask/types.js';
import { NdjsonDecoder } from '../../src/protocol/ndjson.js';
import { SseDecoder } from '../../src/protocol/sse.js';
import {
  assembledDeltas,
  assertStreamMasked,
  BODY_SHAPES,
  decodeWire,
  removedLeft,
  ENTITY,
  leaks,
  seededFrames,
  seedEverywhere,
  STREAM_SHAPES,
  visibleStrings,
  wireOf,
  type StreamShape,
} from '../helpers/output-shapes.js';

const scanner = createScanner();
const rules: SpanRules = (span) => (span.type === 'EMAIL' ? { action: 'mask', rule: 'mask-email', strategy: { kind: 'placeholder' } } : undefined);

/** Runs wire text through the transform the relay uses; returns the client's decoded frames. */
function streamThrough(shape: StreamShape, wire: string, splitEvery?: number): Array<Record<string, unknown>> {
  const framing = shape.operation.startsWith('ollama') ? 'ndjson' : 'sse';
  const transform = new MaskingStreamTransform({ operation: shape.operation, framing, scanner, session: new MaskingSession(), rules });
  const decoder = framing === 'sse' ? new SseDecoder() : new NdjsonDecoder();
  let out = '';
  const bytes = Buffer.from(wire);
  const step = splitEvery ?? bytes.length;
  for (let at = 0; at < bytes.length; at += step) for (const frame of decoder.push(bytes.subarray(at, at + step))) out += transform.push(frame).join('');
  for (const frame of decoder.end()) out += transform.push(frame).join('');
  out += transform.end().join('');
  return decodeWire(framing, out);
}

describe('protocol coverage: an entity in every string field is masked (frame and field layer, real scanner)', () => {
  for (const shape of STREAM_SHAPES) {
    test(`streamed: ${shape.name}`, () => {
      const sent = seededFrames(shape);
      const wire = wireOf(shape.operation, sent);
      assertStreamMasked(shape, sent, streamThrough(shape, wire));
      // Byte-level splits decode to the same frames, so one other split is enough here.
      assertStreamMasked(shape, sent, streamThrough(shape, wire, 7));
    });
  }

  for (const shape of BODY_SHAPES) {
    test(`not streamed: ${shape.name}`, () => {
      const body = seedEverywhere(shape.body) as Record<string, unknown>;
      const masked = maskResponseBody(body, shape.operation, { scanner, session: new MaskingSession(), rules });
      assert.equal(masked.termination, undefined);
      assert.deepEqual(leaks(visibleStrings(masked.body)), []);
      assert.deepEqual(removedLeft(masked.body), []);
      assert.ok(JSON.stringify(masked.body).includes('[EMAIL_1]'));
    });
  }

  test('an unknown event type, item type and key are masked field by field, never passed raw', () => {
    const shape: StreamShape = { name: 'unknown', operation: 'response', frames: [] };
    const frames = [
      { type: 'response.future_thing.delta', item_id: 'x', output_index: 0, delta: `a ${ENTITY.slice(0, 6)}`, sequence_number: 0 },
      { type: 'response.future_thing.delta', item_id: 'x', output_index: 0, delta: `${ENTITY.slice(6)} b`, sequence_number: 1 },
      { type: 'response.future_thing.done', item_id: 'x', output_index: 0, whatever: { nested: [`c ${ENTITY}`] }, sequence_number: 2 },
      { type: `response.${ENTITY}`, [`key ${ENTITY}`]: 1, sequence_number: 3 },
      { type: 'response.output_item.done', output_index: 1, item: { type: 'hologram_call', id: ENTITY, payload: { text: ENTITY } }, sequence_number: 4 },
    ];
    const received = streamThrough(shape, wireOf('response', frames));
    assert.deepEqual(leaks(visibleStrings(received)), []);
    assert.deepEqual(leaks(assembledDeltas('response', received)), []);
    const future = received.filter((f) => f.type === 'response.future_thing.delta').map((f) => f.delta).join('');
    assert.equal(future, 'a [EMAIL_1] b', 'a new delta family gets its own holdback');
  });

  test('upstream error frames, mid-stream, are masked', () => {
    const chat: StreamShape = { name: 'error', operation: 'chat', frames: [] };
    const received = streamThrough(chat, `data: ${JSON.stringify({ error: { message: `quota of ${ENTITY} exceeded`, type: 'server_error', code: null, param: ENTITY } })}\n\n`);
    assert.deepEqual(leaks(visibleStrings(received)), []);
    const ollama: StreamShape = { name: 'error', operation: 'ollama_chat', frames: [] };
    assert.deepEqual(leaks(visibleStrings(streamThrough(ollama, `${JSON.stringify({ error: `no model for ${ENTITY}` })}\n`))), []);
  });

  test('SSE comments, event names and ids are masked too', () => {
    const chat: StreamShape = { name: 'comments', operation: 'chat', frames: [] };
    const transform = new MaskingStreamTransform({ operation: 'chat', framing: 'sse', scanner, session: new MaskingSession(), rules });
    const decoder = new SseDecoder();
    let out = '';
    // The end-of-stream frame too: it is passed on as it came only when nothing around its data changed.
    const done = `: bye ${ENTITY}\nevent: e ${ENTITY}\nid: ${ENTITY}\ndata: [DONE]\n\n`;
    for (const frame of decoder.push(Buffer.from(`: hello ${ENTITY}\n\nevent: e ${ENTITY}\nid: ${ENTITY}\n: note ${ENTITY}\ndata: {"choices":[]}\n\n${done}`))) out += transform.push(frame).join('');
    assert.ok(!out.includes('jane.doe'), out);
    assert.ok(out.includes('[EMAIL_1]'));
    assert.ok(out.endsWith('data: [DONE]\n\n'), out);
    void chat;
  });
});
