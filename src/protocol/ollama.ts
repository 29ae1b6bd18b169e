// Parses Ollama-dialect request bodies (/api/chat, /api/generate, /api/embed)
// into a ModelRequest. Ollama streams NDJSON and, unlike OpenAI, streams by default.

import { badRequest } from '../http/errors.js';
import { formatPath, isJsonObject, type BodyPath } from './body-path.js';
import {
  describeType,
  invalidAt,
  newMessage,
  optionalString,
  readStream,
  readTools,
  remainingParams,
  requiredString,
  requireJsonObjectBody,
  requireModel,
  requireRole,
  requestTexts,
} from './request-fields.js';
import type { Message, ModelRequest, Operation } from './types.js';

export type OllamaOperation = Extract<Operation, 'ollama_chat' | 'ollama_generate' | 'ollama_embed'>;

export function parseOllamaRequest(operation: OllamaOperation, body: unknown): ModelRequest {
  const object = requireJsonObjectBody(body);
  const model = requireModel(object);
  // Embeddings never stream.
  const stream = operation === 'ollama_embed' ? false : readStream(object, true);
  const options = object.options;
  if (options !== undefined && options !== null && !isJsonObject(options)) {
    throw badRequest('invalid_options', `\`options\` must be an object, got ${describeType(options)}`, 'options');
  }
  let messages: Message[] = [];
  let tools: unknown[] = [];
  let consumed: string[];
  if (operation === 'ollama_chat') {
    messages = readChatMessages(object);
    tools = readTools(object);
    consumed = ['messages', 'tools'];
  } else if (operation === 'ollama_embed') {
    checkEmbedTexts(object);
    consumed = ['input', 'prompt', 'stream'];
  } else {
    checkGenerateTexts(object);
    consumed = ['prompt', 'suffix', 'system', 'template'];
  }
  return {
    dialect: 'ollama',
    operation,
    model,
    stream,
    framing: 'ndjson',
    messages,
    ...requestTexts(operation, object),
    tools,
    params: remainingParams(object, new Set(['model', 'stream', ...consumed])),
    body: object,
  };
}

function readChatMessages(body: Record<string, unknown>): Message[] {
  const messages = body.messages;
  // No messages at all is how Ollama clients preload a model.
  if (messages === undefined || messages === null) return [];
  if (!Array.isArray(messages)) {
    throw badRequest('invalid_messages', `\`messages\` must be an array, got ${describeType(messages)}`, 'messages');
  }
  return messages.map((message, i) => readChatMessage(message, ['messages', i]));
}

function readChatMessage(raw: unknown, at: BodyPath): Message {
  if (!isJsonObject(raw)) throw invalidAt('invalid_messages', at, `\`${formatPath(at)}\` must be a message object, got ${describeType(raw)}`);
  const message = newMessage(requireRole(raw, at, 'invalid_messages'));
  const toolName = optionalString(raw, 'tool_name', at, 'invalid_messages');
  if (toolName !== undefined) message.name = toolName;
  const toolCallId = optionalString(raw, 'tool_call_id', at, 'invalid_messages');
  if (toolCallId !== undefined) message.toolCallId = toolCallId;

  const content = optionalString(raw, 'content', at, 'invalid_messages');
  if (content !== undefined) message.text.push(content);
  // Earlier turns' thinking, which thinking-model templates render back into the prompt.
  optionalString(raw, 'thinking', at, 'invalid_messages');

  const images = raw.images;
  if (images !== undefined && images !== null) {
    const imagesPath = [...at, 'images'];
    if (!Array.isArray(images)) throw invalidAt('invalid_messages', imagesPath, `\`${formatPath(imagesPath)}\` must be an array of base64 strings, got ${describeType(images)}`);
    message.nonTextParts += images.length;
  }
  readToolCalls(raw, at, message);
  return message;
}

function readToolCalls(raw: Record<string, unknown>, at: BodyPath, message: Message): void {
  const calls = raw.tool_calls;
  if (calls === undefined || calls === null) return;
  const callsPath = [...at, 'tool_calls'];
  if (!Array.isArray(calls)) throw invalidAt('invalid_tool_calls', callsPath, `\`${formatPath(callsPath)}\` must be an array, got ${describeType(calls)}`);
  calls.forEach((call, i) => {
    const callPath = [...callsPath, i];
    if (!isJsonObject(call)) throw invalidAt('invalid_tool_calls', callPath, `\`${formatPath(callPath)}\` must be a tool call object, got ${describeType(call)}`);
    const fnPath = [...callPath, 'function'];
    const fn = call.function;
    if (!isJsonObject(fn)) {
      throw invalidAt('invalid_tool_calls', fnPath, `\`${formatPath(fnPath)}\` must be an object with \`name\` and \`arguments\`, got ${describeType(fn)}`);
    }
    const name = requiredString(fn, 'name', fnPath, 'invalid_tool_calls');
    const id = optionalString(call, 'id', callPath, 'invalid_tool_calls');
    const argsPath = [...fnPath, 'arguments'];
    const args = fn.arguments;
    if (args === undefined || args === null) {
      message.toolCalls.push({ ...(id !== undefined && { id }), name, arguments: '{}' });
      return;
    }
    if (!isJsonObject(args)) throw invalidAt('invalid_tool_calls', argsPath, `\`${formatPath(argsPath)}\` must be an object, got ${describeType(args)}`);
    // Ollama sends arguments as an object, not OpenAI's JSON string.
    message.toolCalls.push({ ...(id !== undefined && { id }), name, arguments: JSON.stringify(args) });
  });
}

/** Types of the generate texts; no prompt at all is how Ollama clients preload a model. */
function checkGenerateTexts(body: Record<string, unknown>): void {
  optionalString(body, 'system', [], 'invalid_system');
  optionalString(body, 'template', [], 'invalid_template');
  optionalString(body, 'prompt', [], 'invalid_prompt');
  optionalString(body, 'suffix', [], 'invalid_suffix');
}

/** `/api/embed` takes `input` (a string or strings); the older `/api/embeddings` takes one `prompt`. */
function checkEmbedTexts(body: Record<string, unknown>): void {
  const input = body.input;
  if (Array.isArray(input)) {
    input.forEach((item, i) => {
      if (typeof item !== 'string') throw invalidAt('invalid_input', ['input', i], `\`input[${i}]\` must be a string, got ${describeType(item)}`);
    });
  } else if (typeof input !== 'string' && input !== undefined && input !== null) {
    throw badRequest('invalid_input', `\`input\` must be a string or an array of strings, got ${describeType(input)}`, 'input');
  }
  optionalString(body, 'prompt', [], 'invalid_prompt');
}
