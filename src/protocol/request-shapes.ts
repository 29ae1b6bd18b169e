// What each request body holds that is NOT text, declared once per protocol
// as data: enums, opaque ids, base64 media, token IDs, and the free-form
// objects (JSON schemas, metadata, template kwargs) whose keys reach the
// model as well. Every other string, in every field, known or not, is text
// that input guardrails inspect (request-texts.ts walks it). Adding a text
// field needs nothing here; declaring a field non-text needs a reason.
//
// Sources: the OpenAI API reference (Chat Completions, Completions,
// Embeddings, Responses), vLLM's OpenAI-compatible server extras, and the
// Ollama API (/api/chat, /api/generate).
import { compileShape, type CompiledShape, type PositionSpec, type RequestShape } from './request-texts.js';
import type { Operation } from './types.js';

const ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'function'];
const PART_TYPES = [
  'text', 'image_url', 'input_audio', 'file', 'refusal', 'thinking', 'video_url', 'audio_url', 'image_embeds',
  'input_text', 'input_image', 'input_file', 'input_audio', 'output_text', 'summary_text', 'reasoning_text',
];
const DETAIL = ['auto', 'low', 'high'];
const AUDIO_FORMATS = ['wav', 'mp3', 'flac', 'opus', 'pcm16', 'aac'];
const EFFORT = ['minimal', 'low', 'medium', 'high', 'none'];
const SERVICE_TIER = ['auto', 'default', 'flex', 'scale', 'priority'];

/** `prefix.key` for every entry: one message shape reused under `messages.*` and `input.*`. */
function under(prefix: string, positions: Record<string, PositionSpec>): Record<string, PositionSpec> {
  return Object.fromEntries(Object.entries(positions).map(([path, spec]) => [`${prefix}.${path}`, spec]));
}

const CONTENT_PARTS: Record<string, PositionSpec> = {
  'type': { string: PART_TYPES },
  'image_url': { string: 'url' }, // Responses and vLLM also take the URL directly
  'image_url.url': { string: 'url' },
  'image_url.detail': { string: DETAIL },
  'detail': { string: DETAIL },
  'input_audio.data': { string: 'binary' },
  'input_audio.format': { string: AUDIO_FORMATS },
  'file.file_data': { string: 'binary' },
  'file.file_id': { string: 'id' },
  'file_data': { string: 'binary' },
  'file_id': { string: 'id' },
  'file_url': { string: 'url' },
  'video_url.url': { string: 'url' },
  'audio_url.url': { string: 'url' },
  'image_embeds': { string: 'binary' },
};

const CHAT_MESSAGE: Record<string, PositionSpec> = {
  '': { message: true },
  'role': { string: ROLES },
  'tool_call_id': { string: 'id' },
  ...under('content.*', CONTENT_PARTS),
  'tool_calls.*.id': { string: 'id' },
  'tool_calls.*.type': { string: ['function'] },
  'tool_calls.*.function.arguments': { kind: 'tool_arguments' },
  'function_call.arguments': { kind: 'tool_arguments' },
  'audio.id': { string: 'id' },
};

/** Chat `messages`, as OpenAI, vLLM and Ollama's OpenAI endpoint read them. */
const CHAT_MESSAGES: Record<string, PositionSpec> = {
  'messages': { kind: 'content' },
  ...Object.fromEntries(Object.entries(CHAT_MESSAGE).map(([path, spec]) => [path ? `messages.*.${path}` : 'messages.*', spec])),
};

const FUNCTION_TOOLS: Record<string, PositionSpec> = {
  'tools.*.type': { string: ['function'] },
  'tools.*.function.parameters': { freeform: true },
  'tool_choice': { string: ['none', 'auto', 'required'] },
  'tool_choice.type': { string: ['function'] },
  'functions.*.parameters': { freeform: true },
  'function_call': { string: ['none', 'auto'] },
};

/** vLLM's extras on chat and completions: templates, structured output, documents, kwargs. */
const VLLM_EXTRAS: Record<string, PositionSpec> = {
  'chat_template_kwargs': { freeform: true },
  'documents': { freeform: true },
  'guided_json': { freeform: true },
  'structured_outputs': { freeform: true },
  'mm_processor_kwargs': { freeform: true },
  'vllm_xargs': { freeform: true },
  'kv_transfer_params': { freeform: true },
  'guided_decoding_backend': { string: 'id' },
  'request_id': { string: 'id' },
  'cache_salt': { string: 'id' },
};

const COMMON: Record<string, PositionSpec> = {
  'model': { string: 'id' },
  'metadata': { freeform: true },
  'service_tier': { string: SERVICE_TIER },
  'prompt_cache_key': { string: 'id' },
  'safety_identifier': { string: 'id' },
};

// Numbers, flags and plain-text parameters each API documents (plain text
// such as `stop`, `user`, `chat_template` needs no spec: it is text).
const SAMPLING = [
  'stream', 'stream_options', 'temperature', 'top_p', 'n', 'max_tokens', 'max_completion_tokens', 'stop', 'seed',
  'presence_penalty', 'frequency_penalty', 'logit_bias', 'logprobs', 'top_logprobs', 'user', 'parallel_tool_calls',
  'store', 'tools',
];
const VLLM_SAMPLING = [
  'top_k', 'min_p', 'repetition_penalty', 'length_penalty', 'use_beam_search', 'min_tokens', 'skip_special_tokens',
  'spaces_between_special_tokens', 'truncate_prompt_tokens', 'include_stop_str_in_output', 'ignore_eos', 'echo',
  'add_generation_prompt', 'continue_final_message', 'add_special_tokens', 'return_tokens_as_token_ids',
  'return_token_ids', 'prompt_logprobs', 'allowed_token_ids', 'bad_words', 'stop_token_ids', 'guided_regex',
  'guided_choice', 'guided_grammar', 'guided_whitespace_pattern', 'priority', 'chat_template', 'logits_processors',
  'response_format', 'best_of', 'suffix',
];

const RESPONSE_ITEM_TYPES = [
  'message', 'function_call', 'function_call_output', 'reasoning', 'item_reference',
];

/** The role an item of a Responses `input` speaks with. */
function responseItemRole(item: Record<string, unknown>): string | undefined {
  if (typeof item.role === 'string') return item.role;
  switch (item.type) {
    case 'function_call':
    case 'reasoning':
      return 'assistant';
    case 'function_call_output':
      return 'tool';
    default:
      return undefined;
  }
}

const SHAPES: Record<Operation, RequestShape> = {
  chat: {
    positions: {
      ...COMMON,
      ...CHAT_MESSAGES,
      ...FUNCTION_TOOLS,
      ...VLLM_EXTRAS,
      'response_format.type': { string: ['text', 'json_object', 'json_schema', 'structural_tag'] },
      'response_format.json_schema.schema': { freeform: true },
      'reasoning_effort': { string: EFFORT },
      'modalities.*': { string: ['text', 'audio'] },
      'audio.voice': { string: 'id' },
      'audio.format': { string: AUDIO_FORMATS },
      'prediction.type': { string: ['content'] },
      'verbosity': { string: ['low', 'medium', 'high'] },
      'web_search_options.search_context_size': { string: ['low', 'medium', 'high'] },
    },
    known: [...SAMPLING, ...VLLM_SAMPLING, 'web_search_options', 'prediction'],
  },
  completion: {
    positions: {
      ...COMMON,
      ...VLLM_EXTRAS,
      'prompt': { kind: 'prompt', tokens: 'ids' },
      'suffix': { kind: 'prompt' },
      'prompt_token_ids': { tokens: 'ids' },
      'prompt_embeds': { tokens: 'any' },
      'response_format.type': { string: ['text', 'json_object', 'json_schema', 'structural_tag'] },
      'response_format.json_schema.schema': { freeform: true },
    },
    known: [...SAMPLING, ...VLLM_SAMPLING],
  },
  embedding: {
    positions: {
      ...COMMON,
      ...CHAT_MESSAGES,
      'input': { kind: 'input', tokens: 'ids' },
      'encoding_format': { string: ['float', 'base64'] },
    },
    known: ['dimensions', 'user', 'truncate_prompt_tokens', 'additional_data', 'add_special_tokens', 'priority', 'normalize', 'embed_dtype'],
  },
  response: {
    positions: {
      ...COMMON,
      'input': { kind: 'input', role: 'user' },
      'input.*': { message: true, kind: 'content' },
      'input.*.type': { string: RESPONSE_ITEM_TYPES },
      'input.*.role': { string: ROLES },
      'input.*.id': { string: 'id' },
      'input.*.call_id': { string: 'id' },
      'input.*.status': { string: ['in_progress', 'completed', 'incomplete'] },
      'input.*.arguments': { kind: 'tool_arguments' },
      'input.*.encrypted_content': { string: 'binary' },
      'input.*.summary.*.type': { string: PART_TYPES },
      'input.*.content.*.type': { string: PART_TYPES },
      ...under('input.*.content.*', CONTENT_PARTS),
      ...under('input.*.output.*', CONTENT_PARTS),
      'instructions': { kind: 'instructions', role: 'system' },
      'tools.*.type': { string: ['function', 'file_search', 'web_search', 'web_search_preview', 'code_interpreter', 'mcp', 'image_generation', 'local_shell', 'custom'] },
      'tools.*.parameters': { freeform: true },
      'tools.*.function.parameters': { freeform: true },
      'tools.*.headers': { freeform: true },
      'tool_choice': { string: ['none', 'auto', 'required'] },
      'tool_choice.type': { string: ['function', 'allowed_tools', 'mcp', 'custom', 'file_search', 'web_search_preview', 'code_interpreter', 'image_generation'] },
      'text.format.type': { string: ['text', 'json_object', 'json_schema'] },
      'text.format.schema': { freeform: true },
      'text.verbosity': { string: ['low', 'medium', 'high'] },
      'reasoning.effort': { string: EFFORT },
      'reasoning.summary': { string: ['auto', 'concise', 'detailed'] },
      'reasoning.generate_summary': { string: ['auto', 'concise', 'detailed'] },
      'previous_response_id': { string: 'id' },
      'conversation': { string: 'id' },
      'conversation.id': { string: 'id' },
      'include.*': { string: 'id' },
      'truncation': { string: ['auto', 'disabled'] },
      'prompt.id': { string: 'id' },
      'prompt.version': { string: 'id' },
      'prompt.variables': { freeform: true },
    },
    known: [
      'stream', 'stream_options', 'temperature', 'top_p', 'max_output_tokens', 'max_tool_calls', 'parallel_tool_calls',
      'store', 'background', 'user', 'top_logprobs', 'tools', 'text', 'reasoning',
    ],
  },
  ollama_chat: {
    positions: {
      'model': { string: 'id' },
      'messages': { kind: 'content' },
      'messages.*': { message: true },
      'messages.*.role': { string: ROLES },
      'messages.*.images.*': { string: 'binary' },
      'messages.*.tool_call_id': { string: 'id' },
      'messages.*.tool_calls.*.id': { string: 'id' },
      'messages.*.tool_calls.*.function.arguments': { kind: 'tool_arguments', freeform: true },
      'tools.*.type': { string: ['function'] },
      'tools.*.function.parameters': { freeform: true },
      'format': { string: ['json'], freeform: true },
      'keep_alive': { string: 'id' },
      'think': { string: ['low', 'medium', 'high'] },
    },
    known: ['stream', 'options', 'tools', 'logprobs', 'top_logprobs', 'truncate', 'shift'],
  },
  ollama_generate: {
    positions: {
      'model': { string: 'id' },
      'system': { kind: 'system', role: 'system' },
      'template': { kind: 'system', role: 'system' },
      'prompt': { kind: 'prompt' },
      'suffix': { kind: 'prompt' },
      'context': { tokens: 'ids' },
      'images.*': { string: 'binary' },
      'format': { string: ['json'], freeform: true },
      'keep_alive': { string: 'id' },
      'think': { string: ['low', 'medium', 'high'] },
    },
    known: ['stream', 'options', 'raw', 'logprobs', 'top_logprobs', 'truncate', 'shift'],
  },
  ollama_embed: {
    positions: {
      'model': { string: 'id' },
      'input': { kind: 'input' },
      'prompt': { kind: 'prompt' },
      'keep_alive': { string: 'id' },
    },
    known: ['stream', 'options', 'truncate', 'dimensions'],
  },
};

const COMPILED = new Map<Operation, CompiledShape>();

/** The compiled shape of an operation's request body. */
export function requestShape(operation: Operation): CompiledShape {
  let compiled = COMPILED.get(operation);
  if (compiled === undefined) {
    const shape = SHAPES[operation];
    compiled = compileShape(operation === 'response' ? { ...shape, roleOf: responseItemRole } : shape);
    COMPILED.set(operation, compiled);
  }
  return compiled;
}
