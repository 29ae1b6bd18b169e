// What the gateway knows about the responses it relays, declared once per
// protocol as data. Everything else is text: the walker (walk-output.ts)
// masks every string that is not named here as metadata, so a field, event
// or item type the gateway has never seen is masked, never passed raw.
import type { BodyPath } from '../protocol/body-path.js';
import type { Operation } from '../protocol/types.js';

export interface OutputShape {
  /**
   * Keys whose string values are metadata (ids, roles, finish reasons,
   * enum-like types). They pass unmasked, but only while they look like a
   * token (see isMetadataValue); anything else there is masked as text.
   */
  metadata: ReadonlySet<string>;
  /**
   * Keys removed whenever output rules apply: token ids and log
   * probabilities spell the unmasked text out again. `logprobs` keeps its
   * place as `null` (or `[]` where it was a list) so clients' shapes hold.
   */
  removed: ReadonlySet<string>;
  /** `parent.key` of base64 media the gateway cannot read: removed, like token ids. */
  binary: ReadonlySet<string>;
  /** Keys whose string value is JSON text (tool arguments): detection sees its decoded strings. */
  jsonText: ReadonlySet<string>;
  /** Keys whose object value is free JSON (Ollama's arguments object): all of it, keys too, is text. */
  freeJson: ReadonlySet<string>;
}

/** Where a streamed frame carries a delta of a text field, and what completes that field. */
export interface DeltaLocation {
  /** Identifies the field across frames. */
  key: string;
  /** Fields of one group (a choice, an output item) complete together. */
  group: string;
  /** Where the text lives in the assembled response, for the session record. */
  recordPath: BodyPath;
  /** The field is JSON text (streamed tool arguments). */
  json?: boolean;
}

const OPENAI_METADATA = [
  'id', 'object', 'model', 'system_fingerprint', 'service_tier', 'role', 'finish_reason', 'type', 'status',
  'item_id', 'call_id', 'tool_call_id', 'response_id', 'previous_response_id', 'created_at', 'code', 'reason',
  'obfuscation', 'truncation', 'tool_choice', 'effort', 'format', 'voice', 'phase', 'file_id', 'container_id',
];

const OPENAI: OutputShape = {
  metadata: new Set(OPENAI_METADATA),
  // vLLM: `token_ids`/`prompt_token_ids` (return_token_ids), `prompt_logprobs`; OpenAI: `logprobs`, `top_logprobs`.
  removed: new Set(['logprobs', 'top_logprobs', 'token_ids', 'prompt_token_ids', 'prompt_logprobs']),
  binary: new Set(['audio.data', '*.partial_image_b64', '*.b64_json', 'image_generation_call.result']),
  jsonText: new Set(['arguments']),
  freeJson: new Set(),
};

const OLLAMA: OutputShape = {
  metadata: new Set(['model', 'created_at', 'done_reason', 'role', 'id', 'type', 'remote_model', 'remote_host']),
  // `context` is the conversation as token ids.
  removed: new Set(['context', 'logprobs', 'top_logprobs']),
  binary: new Set(['*.images']),
  jsonText: new Set(),
  freeJson: new Set(['arguments']),
};

export function outputShape(operation: Operation): OutputShape {
  return operation === 'ollama_chat' || operation === 'ollama_generate' ? OLLAMA : OPENAI;
}

/**
 * `test` remembered per string: frames repeat the same few keys and values, so each is tested once.
 * Strings longer than `maxLength` are `false` untested; at most `memory` answers are kept, so odd
 * strings (ids) cannot grow it.
 */
export function rememberedTest(test: (value: string) => boolean, maxLength: number, memory = 1024): (value: string) => boolean {
  const answers = new Map<string, boolean>();
  return (value) => {
    if (value.length > maxLength) return false;
    let answer = answers.get(value);
    if (answer === undefined) {
      answer = test(value);
      if (answers.size < memory) answers.set(value, answer);
    }
    return answer;
  };
}

/** A metadata value must look like a token (no spaces, no `@`, bounded); otherwise it is treated as text. */
const METADATA_VALUE = /^[A-Za-z0-9_.:/+=-]{0,256}$/;
export const isMetadataValue = rememberedTest((value) => METADATA_VALUE.test(value), 256);

/** Responses API stream events whose `delta` is base64 audio: emptied, like `audio.data`. */
export const BINARY_DELTA_EVENTS: ReadonlySet<string> = new Set(['response.audio.delta', 'response.output_audio.delta']);

/** Responses API delta families whose text is JSON (tool arguments). */
const JSON_DELTA_FAMILIES: ReadonlySet<string> = new Set(['response.function_call_arguments', 'response.mcp_call_arguments']);

/** Keys inside a delta that arrive whole (a tool's name), masked as a whole value rather than streamed. */
const WHOLE_IN_DELTA = new Set(['name', 'stop_reason']);

/**
 * Whether the string at `path` of one streamed frame is a delta of a text
 * field (to be concatenated with the same field's other deltas), per
 * operation. Every other string in a frame is a whole value.
 */
export function deltaLocation(operation: Operation, frame: Record<string, unknown>, path: BodyPath): DeltaLocation | undefined {
  const last = path.at(-1);
  if (typeof last === 'string' && WHOLE_IN_DELTA.has(last)) return undefined;
  switch (operation) {
    case 'chat':
      // choices[i].delta.<anything>: content, reasoning, reasoning_content, thinking, refusal, tool_calls[k].function.arguments, audio.transcript...
      if (path[0] !== 'choices' || path[2] !== 'delta' || path.length < 4) return undefined;
      return {
        key: path.join('/'),
        group: `choice:${String(path[1])}`,
        recordPath: ['choices', path[1]!, 'message', ...path.slice(3)],
        ...(last === 'arguments' && { json: true }),
      };
    case 'completion':
      if (path[0] !== 'choices' || path.length < 3) return undefined;
      return { key: path.join('/'), group: `choice:${String(path[1])}`, recordPath: path };
    case 'response': {
      const type = typeof frame.type === 'string' ? frame.type : '';
      if (path.length !== 1 || path[0] !== 'delta' || !type.endsWith('.delta')) return undefined;
      return responseField(type.slice(0, -'.delta'.length), frame);
    }
    case 'ollama_chat':
      if (path[0] !== 'message' || path[1] === 'tool_calls' || path.length < 2) return undefined;
      return { key: path.join('/'), group: 'message', recordPath: path };
    case 'ollama_generate':
      if (path.length !== 1) return undefined;
      return { key: path.join('/'), group: 'response', recordPath: path };
    case 'embedding':
    case 'ollama_embed':
      return undefined;
  }
}

/** A Responses API text field, named by its event family (`response.output_text`) and the indices that place it. */
export function responseField(family: string, event: Record<string, unknown>): DeltaLocation {
  const oi = event.output_index;
  const ci = event.content_index;
  const si = event.summary_index;
  const key = [family, event.item_id ?? '', oi ?? '', ci ?? '', si ?? ''].map(String).join('|');
  const recordPath: Array<string | number> = ['output', typeof oi === 'number' ? oi : 0];
  if (typeof ci === 'number') recordPath.push('content', ci);
  if (typeof si === 'number') recordPath.push('summary', si);
  recordPath.push(family.replace(/^response\./, ''));
  return { key, group: `item:${String(oi ?? '')}`, recordPath, ...(JSON_DELTA_FAMILIES.has(family) && { json: true }) };
}
