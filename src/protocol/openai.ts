// Parses OpenAI-dialect request bodies (/v1/chat/completions, /v1/completions,
// /v1/embeddings, /v1/responses) into a ModelRequest. Shapes are checked the
// way the OpenAI API checks them, but unknown parameters pass: vLLM and
// friends accept many extras. Every text that reaches the model, read here or
// not, is found by the request walker with its exact path (requestTexts).

import { badRequest } from '../http/errors.js';
import { formatPath, isJsonObject, type BodyPath } from './body-path.js';
import {
  describeType,
  invalidAt,
  newMessage,
  optionalString,
  readContentParts,
  readStream,
  readTools,
  remainingParams,
  requiredString,
  requireJsonObjectBody,
  requireRole,
  requireModel,
  requestTexts,
} from './request-fields.js';
import type { Message, ModelRequest, Operation } from './types.js';

export type OpenAiOperation = Extract<Operation, 'chat' | 'completion' | 'embedding' | 'response'>;

interface OperationParts {
  messages: Message[];
  tools: unknown[];
  /** Top-level keys the operation read, which therefore do not go to `params`. */
  consumed: string[];
}

export function parseOpenAiRequest(operation: OpenAiOperation, body: unknown): ModelRequest {
  const object = requireJsonObjectBody(body);
  const model = requireModel(object);
  const stream = readStream(object, false);
  const { messages, tools, consumed } = OPERATION_READERS[operation](object);
  return {
    dialect: 'openai',
    operation,
    model,
    stream,
    framing: 'sse',
    messages,
    ...requestTexts(operation, object),
    tools,
    params: remainingParams(object, new Set(['model', 'stream', ...consumed])),
    body: object,
  };
}

const OPERATION_READERS: Record<OpenAiOperation, (body: Record<string, unknown>) => OperationParts> = {
  chat: (body) => ({ messages: readChatMessages(body), tools: readTools(body), consumed: ['messages', 'tools'] }),

  completion: (body) => {
    readPromptOrInput(body, 'prompt');
    optionalString(body, 'suffix', [], 'invalid_suffix');
    return { messages: [], tools: [], consumed: ['prompt', 'suffix'] };
  },

  embedding: (body) => {
    // vLLM also embeds chat-style `messages` instead of `input`; read them so
    // their text is inspected like any other.
    const hasMessages = body.messages !== undefined && body.messages !== null;
    const messages = hasMessages ? readChatMessages(body) : [];
    if (!hasMessages || (body.input !== undefined && body.input !== null)) readPromptOrInput(body, 'input');
    return { messages, tools: [], consumed: ['input', 'messages'] };
  },

  response: (body) => {
    optionalString(body, 'instructions', [], 'invalid_instructions');
    return { messages: readResponseInput(body), tools: readTools(body), consumed: ['input', 'instructions', 'tools'] };
  },
};

// ---- chat ----------------------------------------------------------------

function readChatMessages(body: Record<string, unknown>): Message[] {
  const messages = body.messages;
  if (messages === undefined || messages === null) {
    throw badRequest('missing_messages', 'Request body must include `messages`, an array of chat messages', 'messages');
  }
  if (!Array.isArray(messages)) {
    throw badRequest('invalid_messages', `\`messages\` must be an array, got ${describeType(messages)}`, 'messages');
  }
  if (messages.length === 0) throw badRequest('invalid_messages', '`messages` must contain at least one message', 'messages');
  return messages.map((message, i) => readChatMessage(message, ['messages', i]));
}

function readChatMessage(raw: unknown, at: BodyPath): Message {
  if (!isJsonObject(raw)) throw invalidAt('invalid_messages', at, `\`${formatPath(at)}\` must be a message object, got ${describeType(raw)}`);
  const role = requireRole(raw, at, 'invalid_messages');
  const message = newMessage(role);
  const name = optionalString(raw, 'name', at, 'invalid_messages');
  if (name !== undefined) message.name = name;
  const toolCallId = optionalString(raw, 'tool_call_id', at, 'invalid_messages');
  if (toolCallId !== undefined) message.toolCallId = toolCallId;
  else if (role === 'tool') throw invalidAt('invalid_messages', [...at, 'tool_call_id'], `\`${formatPath([...at, 'tool_call_id'])}\` is required for a "tool" message`);

  const content = raw.content;
  const contentPath = [...at, 'content'];
  if (typeof content === 'string') {
    message.text.push(content);
  } else if (Array.isArray(content)) {
    readContentParts(content, contentPath, message, 'invalid_messages');
  } else if (content !== undefined && content !== null) {
    throw invalidAt('invalid_messages', contentPath, `\`${formatPath(contentPath)}\` must be a string, an array of content parts or null, got ${describeType(content)}`);
  } else if (role !== 'assistant') {
    // Only an assistant turn may be content-less (tool calls, a refusal, audio).
    throw invalidAt('invalid_messages', contentPath, `\`${formatPath(contentPath)}\` is required for a "${role}" message`);
  }

  // Reasoning from earlier turns: vLLM chat templates may render it back into the prompt.
  for (const key of ['reasoning_content', 'reasoning']) optionalString(raw, key, at, 'invalid_messages');
  readToolCalls(raw, at, message);
  readLegacyFunctionCall(raw, at, message);
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
    if (call.type !== undefined && call.type !== 'function') {
      throw invalidAt('invalid_tool_calls', [...callPath, 'type'], `\`${formatPath([...callPath, 'type'])}\` must be "function"`);
    }
    const id = optionalString(call, 'id', callPath, 'invalid_tool_calls');
    const { name, args } = readFunctionCall(call.function, [...callPath, 'function']);
    message.toolCalls.push({ ...(id !== undefined && { id }), name, arguments: args });
  });
}

/** The deprecated single `function_call` on assistant messages. */
function readLegacyFunctionCall(raw: Record<string, unknown>, at: BodyPath, message: Message): void {
  if (raw.function_call === undefined || raw.function_call === null) return;
  const path = [...at, 'function_call'];
  const { name, args } = readFunctionCall(raw.function_call, path);
  message.toolCalls.push({ name, arguments: args });
}

function readFunctionCall(fn: unknown, path: BodyPath): { name: string; args: string } {
  if (!isJsonObject(fn)) {
    throw invalidAt('invalid_tool_calls', path, `\`${formatPath(path)}\` must be an object with \`name\` and \`arguments\`, got ${describeType(fn)}`);
  }
  const name = requiredString(fn, 'name', path, 'invalid_tool_calls');
  if (name === '') throw invalidAt('invalid_tool_calls', [...path, 'name'], `\`${formatPath([...path, 'name'])}\` must not be empty`);
  // OpenAI sends arguments as a JSON-encoded string, not an object.
  return { name, args: requiredString(fn, 'arguments', path, 'invalid_tool_calls') };
}

// ---- completions and embeddings -----------------------------------------

type TokenPromptKind = 'string' | 'tokens' | 'token_arrays';

const isTokenId = (value: unknown): boolean => Number.isInteger(value) && (value as number) >= 0;

function itemKind(item: unknown): TokenPromptKind | undefined {
  if (typeof item === 'string') return 'string';
  if (isTokenId(item)) return 'tokens';
  if (Array.isArray(item) && item.every(isTokenId)) return 'token_arrays';
  return undefined;
}

/**
 * `prompt` (completions) or `input` (embeddings): a string, an array of
 * strings, or token IDs. Token IDs carry no text the gateway can read: the
 * walker lists them as uninspectable.
 */
function readPromptOrInput(body: Record<string, unknown>, key: 'prompt' | 'input'): void {
  const value = body[key];
  if (value === undefined || value === null) throw badRequest(`missing_${key}`, `Request body must include \`${key}\``, key);
  if (typeof value === 'string') return;
  const expected = `\`${key}\` must be a string, an array of strings, an array of token IDs or an array of token-ID arrays`;
  if (!Array.isArray(value)) throw badRequest(`invalid_${key}`, `${expected}, got ${describeType(value)}`, key);
  if (value.length === 0) throw badRequest(`invalid_${key}`, `${expected}, got an empty array`, key);
  const kind = itemKind(value[0]);
  value.forEach((item, i) => {
    if (itemKind(item) !== kind || kind === undefined) {
      throw invalidAt(`invalid_${key}`, [key, i], `${expected}, all of one kind; \`${key}[${i}]\` does not fit (${describeType(item)})`);
    }
  });
}

// ---- responses -----------------------------------------------------------

const RESPONSE_ITEM_TYPES = ['message', 'function_call', 'function_call_output', 'reasoning', 'item_reference'];

function readResponseInput(body: Record<string, unknown>): Message[] {
  const input = body.input;
  // `input` is optional here: a request may continue from `previous_response_id`.
  if (input === undefined || input === null) return [];
  if (typeof input === 'string') {
    const message = newMessage('user');
    message.text.push(input);
    return [message];
  }
  if (!Array.isArray(input)) {
    throw badRequest('invalid_input', `\`input\` must be a string or an array of input items, got ${describeType(input)}`, 'input');
  }
  return input.flatMap((item, i) => readResponseItem(item, ['input', i]));
}

function readResponseItem(item: unknown, at: BodyPath): Message[] {
  if (!isJsonObject(item)) throw invalidAt('invalid_input', at, `\`${formatPath(at)}\` must be an input item object, got ${describeType(item)}`);
  // Plain `{role, content}` messages may leave out `type`.
  const type = item.type ?? 'message';
  switch (type) {
    case 'message': {
      const message = newMessage(requireRole(item, at, 'invalid_input'));
      const content = item.content;
      const contentPath = [...at, 'content'];
      if (typeof content === 'string') message.text.push(content);
      else if (Array.isArray(content)) readContentParts(content, contentPath, message, 'invalid_input');
      else throw invalidAt('invalid_input', contentPath, `\`${formatPath(contentPath)}\` must be a string or an array of content parts, got ${describeType(content)}`);
      return [message];
    }
    case 'function_call': {
      const name = requiredString(item, 'name', at, 'invalid_input');
      const args = requiredString(item, 'arguments', at, 'invalid_input');
      const id = optionalString(item, 'call_id', at, 'invalid_input');
      const message = newMessage('assistant');
      message.toolCalls.push({ ...(id !== undefined && { id }), name, arguments: args });
      return [message];
    }
    case 'function_call_output': {
      const message = newMessage('tool');
      message.toolCallId = requiredString(item, 'call_id', at, 'invalid_input');
      const output = item.output;
      const outputPath = [...at, 'output'];
      if (typeof output === 'string') message.text.push(output);
      else if (Array.isArray(output)) readContentParts(output, outputPath, message, 'invalid_input');
      else throw invalidAt('invalid_input', outputPath, `\`${formatPath(outputPath)}\` must be a string or an array of content parts, got ${describeType(output)}`);
      return [message];
    }
    case 'reasoning':
      // Echoed reasoning from an earlier turn; chat templates may render it.
      checkReasoningParts(item, at);
      return [];
    case 'item_reference':
      return [];
    default:
      // Other items (built-in tool calls and their outputs) carry text in
      // shapes the gateway does not inspect, so they are refused, not passed blind.
      throw invalidAt(
        'unsupported_input_item',
        [...at, 'type'],
        `\`${formatPath([...at, 'type'])}\` ${typeof type === 'string' ? `"${type}"` : describeType(type)} is not supported; use one of ${RESPONSE_ITEM_TYPES.join(', ')}`,
      );
  }
}

function checkReasoningParts(item: Record<string, unknown>, at: BodyPath): void {
  for (const key of ['summary', 'content']) {
    const parts = item[key];
    if (parts === undefined || parts === null) continue;
    const partsPath = [...at, key];
    if (!Array.isArray(parts)) throw invalidAt('invalid_input', partsPath, `\`${formatPath(partsPath)}\` must be an array, got ${describeType(parts)}`);
    parts.forEach((part, i) => {
      const partPath = [...partsPath, i];
      if (!isJsonObject(part)) throw invalidAt('invalid_input', partPath, `\`${formatPath(partPath)}\` must be an object, got ${describeType(part)}`);
      requiredString(part, 'text', partPath, 'invalid_input');
    });
  }
}
