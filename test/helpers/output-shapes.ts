// Response and stream shapes as the model servers publish them, for the
// protocol-coverage tests: OpenAI Responses API events (typed against the
// official SDK's ResponseStreamEvent union, so a new event type in the SDK
// fails to compile here until it has a fixture), Chat Completions (audio,
// refusal, parallel tool calls, annotations), vLLM's extras (reasoning,
// reasoning_content, token ids, logprobs, completions), and Ollama's chat and
// generate lines (thinking, tool calls with argument objects).
//
// `seedEverywhere` then puts an entity into every string of a shape; the
// coverage tests check that none of it reaches the client.
import assert from 'node:assert/strict';
import type OpenAI from 'openai';
import { SseDecoder } from '../../src/protocol/sse.js';
import { encodeSseFrame } from '../../src/protocol/sse.js';

type StreamEvent = OpenAI.Responses.ResponseStreamEvent;
type EventOf<T extends StreamEvent['type']> = Omit<Extract<StreamEvent, { type: T }>, 'sequence_number'>;
type OutputItem = OpenAI.Responses.ResponseOutputItem;

export const ENTITY = 'jane.doe@example.com';
/** Any piece alone is a leak too (the split streams cut after "jane"): the test looks for each. */
export const ENTITY_HALVES = ['jane', 'doe@', 'example.com'];

const ids = { item_id: 'msg_1', output_index: 0 };
const part = { ...ids, content_index: 0 };

/** Output items of every kind the reference lists that carry text. */
export const RESPONSE_ITEMS: OutputItem[] = [
  {
    id: 'msg_1',
    type: 'message',
    role: 'assistant',
    status: 'completed',
    content: [
      {
        type: 'output_text',
        text: 'See the page.',
        logprobs: [{ token: 'See', bytes: [83, 101, 101], logprob: -0.1, top_logprobs: [{ token: 'Look', bytes: [76], logprob: -2 }] }],
        annotations: [
          { type: 'url_citation', url: 'https://example.org/page', title: 'A page', start_index: 0, end_index: 3 },
          { type: 'file_citation', file_id: 'file_1', filename: 'notes.txt', index: 0 },
          { type: 'container_file_citation', container_id: 'cntr_1', file_id: 'file_2', filename: 'out.csv', start_index: 0, end_index: 1 },
          { type: 'file_path', file_id: 'file_3', index: 1 },
        ],
      },
      { type: 'refusal', refusal: 'I cannot share that.' },
    ],
  },
  {
    id: 'rs_1',
    type: 'reasoning',
    summary: [{ type: 'summary_text', text: 'Thinking about the user.' }],
    content: [{ type: 'reasoning_text', text: 'The user wants the address.' }],
    encrypted_content: 'gAAAAABopaque',
  },
  { id: 'fc_1', type: 'function_call', call_id: 'call_1', name: 'send_mail', arguments: JSON.stringify({ to: 'someone', body: 'hi' }), status: 'completed' },
  {
    id: 'ws_1',
    type: 'web_search_call',
    status: 'completed',
    action: { type: 'search', query: 'who is the user', sources: [{ type: 'url', url: 'https://example.org/result' }] },
  },
  {
    id: 'ci_1',
    type: 'code_interpreter_call',
    container_id: 'cntr_1',
    code: 'print("hello")',
    status: 'completed',
    outputs: [
      { type: 'logs', logs: 'hello' },
      { type: 'image', url: 'https://example.org/plot.png' },
    ],
  },
  { id: 'fs_1', type: 'file_search_call', status: 'completed', queries: ['user details'], results: [{ file_id: 'file_1', filename: 'crm.txt', text: 'Customer record', score: 0.9, attributes: { owner: 'sales' } }] },
  { id: 'mcp_1', type: 'mcp_call', server_label: 'crm', name: 'lookup', arguments: JSON.stringify({ who: 'user' }), output: 'Found the record', error: 'partial failure', status: 'completed' },
  {
    id: 'mcpl_1',
    type: 'mcp_list_tools',
    server_label: 'crm',
    tools: [{ name: 'lookup', description: 'Looks a customer up', input_schema: { type: 'object', properties: { who: { type: 'string', description: 'the customer' } } } }],
    error: 'one tool hidden',
  },
  { id: 'mcpr_1', type: 'mcp_approval_request', server_label: 'crm', name: 'delete', arguments: JSON.stringify({ who: 'user' }) },
  { id: 'ig_1', type: 'image_generation_call', status: 'completed', result: 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB' },
  { id: 'ctc_1', type: 'custom_tool_call', call_id: 'call_2', name: 'run_sql', input: 'select * from users' },
];

/** The `response` object of created/in_progress/completed/failed/incomplete/queued events. */
function responseObject(status: string, output: OutputItem[]): OpenAI.Responses.Response {
  return {
    id: 'resp_1',
    object: 'response',
    created_at: 1,
    status,
    model: 'demo-chat',
    output,
    output_text: output.length > 0 ? 'See the page.' : '',
    instructions: 'Be brief.',
    error: status === 'failed' ? { code: 'server_error', message: 'The model failed.' } : null,
    incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    metadata: { purpose: 'coverage test' },
    parallel_tool_calls: true,
    temperature: 1,
    top_p: 1,
    tool_choice: 'auto',
    tools: [],
    usage: { input_tokens: 3, output_tokens: 5, total_tokens: 8, input_tokens_details: { cached_tokens: 0 }, output_tokens_details: { reasoning_tokens: 2 } },
  } as unknown as OpenAI.Responses.Response;
}

/**
 * One fixture per Responses stream event type of the SDK's union: the
 * mapped type makes a missing one a compile error.
 */
export const RESPONSE_EVENTS: { [T in StreamEvent['type']]: EventOf<T> } = {
  'response.queued': { type: 'response.queued', response: responseObject('queued', []) },
  'response.created': { type: 'response.created', response: responseObject('in_progress', []) },
  'response.in_progress': { type: 'response.in_progress', response: responseObject('in_progress', []) },
  'response.output_item.added': { type: 'response.output_item.added', output_index: 0, item: { id: 'msg_1', type: 'message', role: 'assistant', status: 'in_progress', content: [] } },
  'response.content_part.added': { type: 'response.content_part.added', ...part, part: { type: 'output_text', text: '', annotations: [] } },
  'response.output_text.delta': { type: 'response.output_text.delta', ...part, delta: 'Here is the mail', logprobs: [{ token: 'Here', logprob: -0.1, top_logprobs: [{ token: 'There', logprob: -3 }] }] },
  'response.output_text.annotation.added': {
    type: 'response.output_text.annotation.added',
    ...part,
    annotation_index: 0,
    annotation: { type: 'url_citation', url: 'https://example.org/page', title: 'A page', start_index: 0, end_index: 3 },
  },
  'response.output_text.done': { type: 'response.output_text.done', ...part, text: 'Here is the mail', logprobs: [{ token: 'Here', logprob: -0.1, top_logprobs: [] }] },
  'response.refusal.delta': { type: 'response.refusal.delta', ...part, content_index: 1, delta: 'I will not send' },
  'response.refusal.done': { type: 'response.refusal.done', ...part, content_index: 1, refusal: 'I will not send' },
  'response.content_part.done': { type: 'response.content_part.done', ...part, part: { type: 'output_text', text: 'Here is the mail', annotations: [] } },
  'response.output_item.done': { type: 'response.output_item.done', output_index: 0, item: RESPONSE_ITEMS[0]! },
  'response.reasoning_summary_part.added': { type: 'response.reasoning_summary_part.added', item_id: 'rs_1', output_index: 1, summary_index: 0, part: { type: 'summary_text', text: '' } },
  'response.reasoning_summary_text.delta': { type: 'response.reasoning_summary_text.delta', item_id: 'rs_1', output_index: 1, summary_index: 0, delta: 'The user asked for' },
  'response.reasoning_summary_text.done': { type: 'response.reasoning_summary_text.done', item_id: 'rs_1', output_index: 1, summary_index: 0, text: 'The user asked for' },
  'response.reasoning_summary_part.done': { type: 'response.reasoning_summary_part.done', item_id: 'rs_1', output_index: 1, summary_index: 0, part: { type: 'summary_text', text: 'The user asked for' } },
  'response.reasoning_text.delta': { type: 'response.reasoning_text.delta', item_id: 'rs_1', output_index: 1, content_index: 0, delta: 'Reasoning about' },
  'response.reasoning_text.done': { type: 'response.reasoning_text.done', item_id: 'rs_1', output_index: 1, content_index: 0, text: 'Reasoning about' },
  'response.function_call_arguments.delta': { type: 'response.function_call_arguments.delta', item_id: 'fc_1', output_index: 2, delta: '{"to":"' },
  'response.function_call_arguments.done': { type: 'response.function_call_arguments.done', item_id: 'fc_1', output_index: 2, name: 'send_mail', arguments: '{"to":"someone"}' },
  'response.custom_tool_call_input.delta': { type: 'response.custom_tool_call_input.delta', item_id: 'ctc_1', output_index: 3, delta: 'select email from users where email = ' },
  'response.custom_tool_call_input.done': { type: 'response.custom_tool_call_input.done', item_id: 'ctc_1', output_index: 3, input: 'select email from users' },
  'response.web_search_call.in_progress': { type: 'response.web_search_call.in_progress', item_id: 'ws_1', output_index: 4 },
  'response.web_search_call.searching': { type: 'response.web_search_call.searching', item_id: 'ws_1', output_index: 4 },
  'response.web_search_call.completed': { type: 'response.web_search_call.completed', item_id: 'ws_1', output_index: 4 },
  'response.file_search_call.in_progress': { type: 'response.file_search_call.in_progress', item_id: 'fs_1', output_index: 5 },
  'response.file_search_call.searching': { type: 'response.file_search_call.searching', item_id: 'fs_1', output_index: 5 },
  'response.file_search_call.completed': { type: 'response.file_search_call.completed', item_id: 'fs_1', output_index: 5 },
  'response.code_interpreter_call.in_progress': { type: 'response.code_interpreter_call.in_progress', item_id: 'ci_1', output_index: 6 },
  'response.code_interpreter_call_code.delta': { type: 'response.code_interpreter_call_code.delta', item_id: 'ci_1', output_index: 6, delta: 'send_to("' },
  'response.code_interpreter_call_code.done': { type: 'response.code_interpreter_call_code.done', item_id: 'ci_1', output_index: 6, code: 'send_to("x")' },
  'response.code_interpreter_call.interpreting': { type: 'response.code_interpreter_call.interpreting', item_id: 'ci_1', output_index: 6 },
  'response.code_interpreter_call.completed': { type: 'response.code_interpreter_call.completed', item_id: 'ci_1', output_index: 6 },
  'response.mcp_list_tools.in_progress': { type: 'response.mcp_list_tools.in_progress', item_id: 'mcpl_1', output_index: 7 },
  'response.mcp_list_tools.completed': { type: 'response.mcp_list_tools.completed', item_id: 'mcpl_1', output_index: 7 },
  'response.mcp_list_tools.failed': { type: 'response.mcp_list_tools.failed', item_id: 'mcpl_1', output_index: 7 },
  'response.mcp_call.in_progress': { type: 'response.mcp_call.in_progress', item_id: 'mcp_1', output_index: 8 },
  'response.mcp_call_arguments.delta': { type: 'response.mcp_call_arguments.delta', item_id: 'mcp_1', output_index: 8, delta: '{"who":"' },
  'response.mcp_call_arguments.done': { type: 'response.mcp_call_arguments.done', item_id: 'mcp_1', output_index: 8, arguments: '{"who":"x"}' },
  'response.mcp_call.completed': { type: 'response.mcp_call.completed', item_id: 'mcp_1', output_index: 8 },
  'response.mcp_call.failed': { type: 'response.mcp_call.failed', item_id: 'mcp_1', output_index: 8 },
  'response.image_generation_call.in_progress': { type: 'response.image_generation_call.in_progress', item_id: 'ig_1', output_index: 9 },
  'response.image_generation_call.generating': { type: 'response.image_generation_call.generating', item_id: 'ig_1', output_index: 9 },
  'response.image_generation_call.partial_image': { type: 'response.image_generation_call.partial_image', item_id: 'ig_1', output_index: 9, partial_image_index: 0, partial_image_b64: 'iVBORw0KGgo' },
  'response.image_generation_call.completed': { type: 'response.image_generation_call.completed', item_id: 'ig_1', output_index: 9 },
  'response.audio.transcript.delta': { type: 'response.audio.transcript.delta', delta: 'Spoken: write to' },
  'response.audio.transcript.done': { type: 'response.audio.transcript.done' },
  'response.audio.delta': { type: 'response.audio.delta', delta: 'UklGRiQAAABXQVZF' },
  'response.audio.done': { type: 'response.audio.done' },
  error: { type: 'error', code: 'server_error', message: 'Upstream hiccup', param: 'input' },
  'response.failed': { type: 'response.failed', response: responseObject('failed', RESPONSE_ITEMS) },
  'response.incomplete': { type: 'response.incomplete', response: responseObject('incomplete', RESPONSE_ITEMS) },
  'response.completed': { type: 'response.completed', response: responseObject('completed', RESPONSE_ITEMS) },
};

/** Event types that end a stream: sent last, one per stream. */
const FINAL = new Set(['error', 'response.failed', 'response.incomplete', 'response.completed']);

/**
 * A Responses stream in reference order: every non-final event, then every
 * item announced and completed, then one final event. Each stream of the
 * list ends with a different final event, so all of them are covered.
 */
export function responseStreams(): Array<{ name: string; events: Array<Record<string, unknown>> }> {
  const body = Object.values(RESPONSE_EVENTS).filter((e) => !FINAL.has(e.type)) as Array<Record<string, unknown>>;
  const items = RESPONSE_ITEMS.flatMap((item, i) => [
    { type: 'response.output_item.added', output_index: i, item },
    { type: 'response.output_item.done', output_index: i, item },
  ]);
  return [...FINAL].map((final) => ({
    name: `Responses API stream ending with ${final}`,
    events: [...body, ...items, RESPONSE_EVENTS[final as 'error'] as Record<string, unknown>],
  }));
}

// ---- Chat Completions, vLLM, Ollama's OpenAI-compatible endpoint ------------

const envelope = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'demo-chat', system_fingerprint: 'fp_1' };
const chunk = (choices: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({ ...envelope, choices, ...extra });
const delta = (d: Record<string, unknown>, extra: Record<string, unknown> = {}, index = 0): Record<string, unknown> =>
  chunk([{ index, delta: d, logprobs: null, finish_reason: null, ...extra }]);
const vllmLogprobs = { content: [{ token: 'Hi', logprob: -0.2, bytes: [72, 105], top_logprobs: [{ token: 'Hey', logprob: -1.5, bytes: [72] }] }] };

export interface StreamShape {
  name: string;
  operation: 'chat' | 'completion' | 'response' | 'ollama_chat' | 'ollama_generate';
  /** Frames as the server sends them (SSE events or NDJSON lines), before seeding. */
  frames: Array<Record<string, unknown>>;
}

export const CHAT_STREAMS: StreamShape[] = [
  {
    name: 'vLLM chat with reasoning_content, reasoning, token ids and logprobs',
    operation: 'chat',
    frames: [
      delta({ role: 'assistant', content: '' }, {}, 0),
      { ...delta({ reasoning_content: 'The user wants' }, { token_ids: [791, 1217] }), prompt_token_ids: [1, 2, 3] },
      delta({ reasoning: 'Also thinking about', content: '' }, { token_ids: [11] }),
      delta({ content: 'Write to', reasoning_content: '' }, { logprobs: vllmLogprobs, token_ids: [8144] }),
      delta({ content: '' }, { finish_reason: 'stop', stop_reason: 'the end', token_ids: [] }),
      chunk([], { usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } }),
    ],
  },
  {
    name: 'Chat Completions with refusal, audio transcript and parallel tool calls interleaved',
    operation: 'chat',
    frames: [
      delta({ role: 'assistant', content: null, refusal: null }),
      delta({ tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'send_mail', arguments: '' } }] }),
      delta({ tool_calls: [{ index: 1, id: 'call_b', type: 'function', function: { name: 'lookup', arguments: '' } }] }),
      delta({ tool_calls: [{ index: 0, function: { arguments: '{"to":"' } }, { index: 1, function: { arguments: '{"who":"' } }] }),
      delta({ tool_calls: [{ index: 1, function: { arguments: '"}' } }] }),
      delta({ tool_calls: [{ index: 0, function: { arguments: '"}' } }] }),
      delta({ refusal: 'I would rather not mail' }),
      delta({ audio: { id: 'audio_1', transcript: 'Spoken to', data: 'UklGRiQAAABXQVZF', expires_at: 2 } }),
      delta({ content: [{ type: 'text', text: 'Parts to' }] }),
      delta({ thinking: 'non-standard thinking', reasoning_details: [{ type: 'reasoning.text', text: 'details about' }] }),
      delta({}, { finish_reason: 'tool_calls' }),
    ],
  },
  {
    name: 'Ollama OpenAI-compatible chat with reasoning',
    operation: 'chat',
    frames: [
      delta({ role: 'assistant', content: '', reasoning: 'Ollama thinks about' }),
      delta({ role: 'assistant', content: 'Mail', reasoning: '' }),
      delta({ role: 'assistant', content: '' }, { finish_reason: 'stop' }),
    ],
  },
  {
    name: 'vLLM completions with token ids and logprobs',
    operation: 'completion',
    frames: [
      { id: 'cmpl-1', object: 'text_completion', created: 1, model: 'demo-chat', choices: [{ index: 0, text: 'Send it to', logprobs: { tokens: ['Send'], token_logprobs: [-0.1], top_logprobs: [{ Send: -0.1 }], text_offset: [0] }, finish_reason: null, token_ids: [1], prompt_token_ids: [4, 5] }] },
      { id: 'cmpl-1', object: 'text_completion', created: 1, model: 'demo-chat', choices: [{ index: 0, text: '', finish_reason: 'length', stop_reason: null }] },
    ],
  },
  {
    name: 'Ollama /api/chat with thinking and a tool call',
    operation: 'ollama_chat',
    frames: [
      { model: 'demo-chat', created_at: '2025-01-01T00:00:00Z', message: { role: 'assistant', content: '', thinking: 'Let me think about' }, done: false },
      { model: 'demo-chat', created_at: '2025-01-01T00:00:00Z', message: { role: 'assistant', content: 'Write to', thinking: '' }, done: false },
      { model: 'demo-chat', created_at: '2025-01-01T00:00:00Z', message: { role: 'assistant', content: '', tool_calls: [{ function: { name: 'send_mail', arguments: { to: 'someone', cc: ['a'] } } }] }, done: false },
      { model: 'demo-chat', created_at: '2025-01-01T00:00:00Z', message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop', total_duration: 10, eval_count: 3 },
    ],
  },
  {
    name: 'Ollama /api/generate with thinking and context',
    operation: 'ollama_generate',
    frames: [
      { model: 'demo-chat', created_at: '2025-01-01T00:00:00Z', response: '', thinking: 'Pondering', done: false },
      { model: 'demo-chat', created_at: '2025-01-01T00:00:00Z', response: 'Reply to', done: false },
      { model: 'demo-chat', created_at: '2025-01-01T00:00:00Z', response: '', done: true, done_reason: 'stop', context: [1, 2, 3], logprobs: [{ token: 'Reply', logprob: -0.1 }] },
    ],
  },
];

export const STREAM_SHAPES: StreamShape[] = [...CHAT_STREAMS, ...responseStreams().map(({ name, events }) => ({ name, operation: 'response' as const, frames: events }))];

export interface BodyShape {
  name: string;
  operation: StreamShape['operation'];
  body: Record<string, unknown>;
}

export const BODY_SHAPES: BodyShape[] = [
  {
    name: 'Chat Completions message with audio, refusal, annotations, parallel tool calls, vLLM reasoning and token ids',
    operation: 'chat',
    body: {
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 1,
      model: 'demo-chat',
      prompt_token_ids: [1, 2],
      prompt_logprobs: [null, { '2': { logprob: -1, rank: 1, decoded_token: 'Hi' } }],
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: 'Write to',
            refusal: 'No',
            reasoning_content: 'Thinking of',
            reasoning: 'Also',
            annotations: [{ type: 'url_citation', url_citation: { url: 'https://example.org', title: 'Page', start_index: 0, end_index: 1 } }],
            audio: { id: 'audio_1', data: 'UklGRiQAAABXQVZF', transcript: 'Spoken', expires_at: 2 },
            tool_calls: [
              { id: 'call_a', type: 'function', function: { name: 'send_mail', arguments: '{"to":"x"}' } },
              { id: 'call_b', type: 'function', function: { name: 'lookup', arguments: '{"who":"y"}' } },
            ],
          },
          logprobs: vllmLogprobs,
          finish_reason: 'tool_calls',
          stop_reason: 'stop here',
          token_ids: [5, 6],
        },
      ],
      usage: { prompt_tokens: 2, completion_tokens: 2, total_tokens: 4 },
    },
  },
  {
    name: 'vLLM completion with logprobs and token ids',
    operation: 'completion',
    body: {
      id: 'cmpl-1',
      object: 'text_completion',
      created: 1,
      model: 'demo-chat',
      choices: [{ index: 0, text: 'Send to', logprobs: { tokens: ['Send'], token_logprobs: [-0.1], top_logprobs: [{ Send: -0.1 }], text_offset: [0] }, finish_reason: 'stop', token_ids: [1], prompt_token_ids: [2] }],
    },
  },
  { name: 'Responses API response with every output item kind', operation: 'response', body: responseObject('completed', RESPONSE_ITEMS) as unknown as Record<string, unknown> },
  {
    name: 'Ollama /api/chat with thinking and tool calls',
    operation: 'ollama_chat',
    body: {
      model: 'demo-chat',
      created_at: '2025-01-01T00:00:00Z',
      message: { role: 'assistant', content: 'Write to', thinking: 'Pondering', tool_calls: [{ function: { name: 'send_mail', arguments: { to: 'x', list: ['y'] } } }] },
      done: true,
      done_reason: 'stop',
    },
  },
  { name: 'Ollama /api/generate with thinking and context', operation: 'ollama_generate', body: { model: 'demo-chat', created_at: '2025-01-01T00:00:00Z', response: 'Reply to', thinking: 'Hmm', done: true, context: [1, 2, 3] } },
];

// ---- seeding -------------------------------------------------------------------

/**
 * A deep copy of `value` with the entity in every string: appended to text,
 * inside every string of JSON-text tool arguments (spelled with `\u0040`
 * for `@`, which only decoding reveals), and in object keys of free JSON.
 * `type` discriminators keep their value so each shape is still recognised;
 * that unknown types are masked too is checked separately.
 */
export function seedEverywhere(value: unknown, key?: string): unknown {
  if (typeof value === 'string') {
    if (key === 'type') return value;
    if (key === 'arguments') {
      try {
        const parsed: unknown = JSON.parse(value);
        return JSON.stringify(seedEverywhere(parsed)).replaceAll('@', '\\u0040');
      } catch {
        // A delta of arguments: seeded as text below.
      }
    }
    // Spaces around it: a field's text runs on into its next delta, and the entity must stay one.
    return `${value} ${ENTITY} `;
  }
  if (Array.isArray(value)) return value.map((item) => seedEverywhere(item));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, seedEverywhere(v, k)]));
  }
  return value;
}

/**
 * Frames for streaming: each frame seeded, and each text delta cut in the
 * middle of the entity over two frames (and inside the `\u0040` escape for
 * argument deltas), so only per-field holdback can mask it.
 */
export function seededFrames(shape: StreamShape): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const frame of shape.frames) {
    const seeded = seedEverywhere(frame) as Record<string, unknown>;
    const [first, second] = splitDeltas(seeded, shape.operation);
    out.push(first);
    if (second) out.push(second);
  }
  if (shape.operation === 'response') out.forEach((event, i) => (event.sequence_number = i));
  return out;
}

/** The frame with every delta string ending in the first half of the entity, and a twin frame carrying the second halves. */
function splitDeltas(frame: Record<string, unknown>, operation: StreamShape['operation']): [Record<string, unknown>, Record<string, unknown> | undefined] {
  const twin = structuredClone(frame);
  let split = false;
  const cut = (text: string, escaped: boolean): [string, string] | undefined => {
    const entity = escaped ? ENTITY.replace('@', '\\u0040') : ENTITY;
    const at = text.lastIndexOf(entity);
    if (at < 0) return undefined;
    // Inside the escape for arguments, in the middle of the local part otherwise.
    const middle = at + (escaped ? entity.indexOf('\\u00') + 3 : 4);
    return [text.slice(0, middle), text.slice(middle)];
  };
  const visit = (a: unknown, b: unknown, path: string[]): void => {
    if (typeof a !== 'object' || a === null) return;
    for (const [k, v] of Object.entries(a)) {
      const here = [...path, k];
      if (typeof v === 'string' && isDeltaPath(operation, here, frame)) {
        const parts = cut(v, here.includes('arguments'));
        if (parts) {
          (a as Record<string, unknown>)[k] = parts[0];
          (b as Record<string, unknown>)[k] = parts[1];
          split = true;
          continue;
        }
      }
      if (typeof v === 'string') (b as Record<string, unknown>)[k] = k === 'type' || isId(k) ? v : '';
      else visit(v, (b as Record<string, unknown>)[k], here);
    }
  };
  visit(frame, twin, []);
  if (!split) return [frame, undefined];
  // The frame that completes the field is the second one: finish reasons, done and usage move there.
  moveCompletion(frame, twin, operation);
  return [frame, twin];
}

const isId = (key: string): boolean => key === 'id' || key.endsWith('_id') || key === 'object' || key === 'model' || key === 'role' || key === 'created_at';

/** The first frame of a split completes nothing; the twin carries the finish reason, done flag and usage. */
function moveCompletion(first: Record<string, unknown>, twin: Record<string, unknown>, operation: StreamShape['operation']): void {
  if (Array.isArray(first.choices)) {
    (first.choices as Array<Record<string, unknown>>).forEach((choice, i) => {
      (twin.choices as Array<Record<string, unknown>>)[i]!.finish_reason = choice.finish_reason ?? null;
      choice.finish_reason = null;
    });
  }
  if (operation.startsWith('ollama')) {
    twin.done = first.done;
    first.done = false;
  }
  delete first.usage;
}

function isDeltaPath(operation: StreamShape['operation'], path: string[], frame: Record<string, unknown>): boolean {
  switch (operation) {
    case 'chat':
      return path[0] === 'choices' && path[2] === 'delta' && !['name', 'id'].includes(path.at(-1)!) && !path.includes('data');
    case 'completion':
      return path[0] === 'choices' && path.at(-1) === 'text';
    case 'response':
      return path.length === 1 && path[0] === 'delta' && String(frame.type).endsWith('.delta') && !String(frame.type).startsWith('response.audio.delta');
    case 'ollama_chat':
      return path[0] === 'message' && (path[1] === 'content' || path[1] === 'thinking');
    case 'ollama_generate':
      return path.length === 1 && (path[0] === 'response' || path[0] === 'thinking');
  }
}

/** SSE or NDJSON wire text for frames. */
export function wireOf(operation: StreamShape['operation'], frames: Array<Record<string, unknown>>): string {
  if (operation.startsWith('ollama')) return frames.map((f) => `${JSON.stringify(f)}\n`).join('');
  const body = frames.map((f) => encodeSseFrame({ ...(operation === 'response' && { event: String(f.type) }), data: JSON.stringify(f) })).join('');
  return operation === 'response' ? body : `${body}data: [DONE]\n\n`;
}

// ---- checking ------------------------------------------------------------------

/** Every string a client would see in `value`, JSON-text strings decoded too. Object keys count. */
export function visibleStrings(value: unknown, at = ''): Array<{ at: string; text: string }> {
  if (typeof value === 'string') {
    const out = [{ at, text: value }];
    if (/^\s*[[{]/.test(value)) {
      try {
        out.push(...visibleStrings(JSON.parse(value), `${at}(json)`));
      } catch {
        // Not JSON after all.
      }
    }
    return out;
  }
  if (Array.isArray(value)) return value.flatMap((item, i) => visibleStrings(item, `${at}[${i}]`));
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([k, v]) => [{ at: `${at}.${k}(key)`, text: k }, ...visibleStrings(v, `${at}.${k}`)]);
  }
  return [];
}

/** Where a leak is, or undefined: the entity, or either half of it. */
export function leaks(strings: Array<{ at: string; text: string }>): string[] {
  return strings.filter(({ text }) => ENTITY_HALVES.some((half) => text.includes(half))).map(({ at, text }) => `${at}: ${JSON.stringify(text.slice(0, 120))}`);
}

/**
 * What a client assembles from delta frames: the concatenated text of each
 * field (chat choice fields, tool-call arguments by index, Responses delta
 * families, Ollama fields), so an entity split over frames shows up whole.
 */
export function assembledDeltas(operation: StreamShape['operation'], frames: Array<Record<string, unknown>>): Array<{ at: string; text: string }> {
  const fields = new Map<string, string>();
  const add = (key: string, text: unknown): void => {
    if (typeof text === 'string') fields.set(key, (fields.get(key) ?? '') + text);
  };
  const walk = (value: unknown, key: string): void => {
    if (typeof value === 'string') return add(key, value);
    if (Array.isArray(value)) value.forEach((item, i) => walk(item, `${key}[${typeof (item as { index?: unknown })?.index === 'number' ? (item as { index: number }).index : i}]`));
    else if (typeof value === 'object' && value !== null) for (const [k, v] of Object.entries(value)) walk(v, `${key}.${k}`);
  };
  for (const frame of frames) {
    if (operation === 'response') {
      if (typeof frame.delta === 'string') add(`${String(frame.type)}|${String(frame.item_id)}|${String(frame.output_index)}|${String(frame.content_index)}|${String(frame.summary_index)}`, frame.delta);
    } else if (operation === 'chat' || operation === 'completion') {
      for (const choice of (frame.choices as Array<Record<string, unknown>> | undefined) ?? []) walk(operation === 'chat' ? choice.delta : choice.text, `choice${String(choice.index)}`);
    } else {
      walk(operation === 'ollama_chat' ? frame.message : { response: frame.response, thinking: frame.thinking }, 'ollama');
    }
  }
  return [...fields].flatMap(([at, text]) => visibleStrings(text, `assembled ${at}`));
}

/** Keys that must not reach the client when output rules apply, with where they may legitimately stay (as null or []). */
const REMOVED = ['token_ids', 'prompt_token_ids', 'prompt_logprobs', 'top_logprobs', 'context', 'partial_image_b64', 'data'];

export function removedLeft(value: unknown, at = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((item, i) => removedLeft(item, `${at}[${i}]`));
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([k, v]) => {
    const here = `${at}.${k}`;
    const bad = REMOVED.includes(k) || (k === 'logprobs' && v !== null && !(Array.isArray(v) && v.length === 0)) || (k === 'result' && (value as { type?: unknown }).type === 'image_generation_call' && v !== null);
    return [...(bad ? [here] : []), ...removedLeft(v, here)];
  });
}

export function decodeWire(framing: 'sse' | 'ndjson', wire: string): Array<Record<string, unknown>> {
  if (framing === 'ndjson') return wire.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
  const decoder = new SseDecoder();
  return [...decoder.push(Buffer.from(wire)), ...decoder.end()].filter((f) => f.hasData && f.data !== '[DONE]').map((f) => JSON.parse(f.data) as Record<string, unknown>);
}

/** The assertions shared by the unit and end-to-end coverage tests. */
export function assertStreamMasked(shape: StreamShape, sent: Array<Record<string, unknown>>, received: Array<Record<string, unknown>>): void {
  assert.ok(!received.some((f) => f.error !== undefined && typeof f.error === 'object' && (f.error as { code?: string }).code === 'upstream_frame_uninspectable'), 'every frame was inspected');
  const leaked = [...leaks(visibleStrings(received)), ...leaks(assembledDeltas(shape.operation, received))];
  assert.deepEqual(leaked, [], `no part of ${ENTITY} reaches the client`);
  assert.deepEqual(removedLeft(received), [], 'token ids, logprobs and media are removed');
  assert.ok(JSON.stringify(received).includes('[EMAIL_1]'), 'the entity arrives as its placeholder');
  if (shape.operation === 'response') {
    const types = (frames: Array<Record<string, unknown>>): Set<unknown> => new Set(frames.map((f) => f.type));
    assert.deepEqual([...types(sent)].filter((t) => !types(received).has(t)), [], 'every event type still reaches the client');
  } else {
    assert.ok(received.length >= sent.length - 1, 'frames are kept');
  }
}

