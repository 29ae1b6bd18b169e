// Shared pieces of the OpenAI and Ollama request parsers: body and model
// checks, error construction from a body path, and Messages. The texts a
// request carries are not found here but by one walker over the whole body
// (request-texts.ts), so a field a parser does not read is still inspected.

import { badRequest, type GatewayError } from '../http/errors.js';
import { formatPath, isJsonObject, type BodyPath } from './body-path.js';
import { requestShape } from './request-shapes.js';
import { collectRequestTexts } from './request-texts.js';
import type { Message, ModelRequest, Operation } from './types.js';

/** A 400 whose `param` is the exact path of the offending value. */
export const invalidAt = (code: string, path: BodyPath, message: string): GatewayError =>
  badRequest(code, message, formatPath(path));

/** "a string", "an array", "null"... for error messages. */
export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  const type = typeof value;
  return type === 'object' ? 'an object' : type === 'undefined' ? 'nothing' : `a ${type}`;
}

export function requireJsonObjectBody(body: unknown): Record<string, unknown> {
  if (!isJsonObject(body)) throw badRequest('invalid_body', `Request body must be a JSON object, got ${describeType(body)}`);
  return body;
}

export function requireModel(body: Record<string, unknown>): string {
  const model = body.model;
  if (model === undefined || model === null || model === '') {
    throw badRequest('missing_model', 'Request body must name a `model`', 'model');
  }
  if (typeof model !== 'string') throw badRequest('invalid_model', `\`model\` must be a string, got ${describeType(model)}`, 'model');
  return model;
}

/** `stream`, where null means "not given" as in both upstream APIs. */
export function readStream(body: Record<string, unknown>, fallback: boolean): boolean {
  const stream = body.stream;
  if (stream === undefined || stream === null) return fallback;
  if (typeof stream !== 'boolean') throw badRequest('invalid_stream', `\`stream\` must be a boolean, got ${describeType(stream)}`, 'stream');
  return stream;
}

/** Tool definitions are passed on as sent; only their container is checked. */
export function readTools(body: Record<string, unknown>): unknown[] {
  const tools = body.tools;
  if (tools === undefined || tools === null) return [];
  if (!Array.isArray(tools)) throw badRequest('invalid_tools', `\`tools\` must be an array, got ${describeType(tools)}`, 'tools');
  tools.forEach((tool, i) => {
    if (!isJsonObject(tool)) throw invalidAt('invalid_tools', ['tools', i], `\`tools[${i}]\` must be an object, got ${describeType(tool)}`);
  });
  return tools;
}

/** A string at `key` if present (null counts as absent), else a 400 with `code`. */
export function optionalString(obj: Record<string, unknown>, key: string, at: BodyPath, code: string): string | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') {
    throw invalidAt(code, [...at, key], `\`${formatPath([...at, key])}\` must be a string, got ${describeType(value)}`);
  }
  return value;
}

export function requiredString(obj: Record<string, unknown>, key: string, at: BodyPath, code: string): string {
  const value = optionalString(obj, key, at, code);
  if (value === undefined) throw invalidAt(code, [...at, key], `\`${formatPath([...at, key])}\` is required`);
  return value;
}

/** A message's `role`: any non-empty string, since servers accept custom roles. */
export function requireRole(message: Record<string, unknown>, at: BodyPath, code: string): string {
  const role = message.role;
  if (typeof role !== 'string' || role === '') {
    throw invalidAt(code, [...at, 'role'], `\`${formatPath([...at, 'role'])}\` must be a non-empty string, got ${describeType(role)}`);
  }
  return role;
}

/** The request without its undocumented top-level keys, for connections set to drop them. */
export function withoutUnknownParams(request: ModelRequest): ModelRequest {
  if (request.unknownParams.length === 0) return request;
  const unknown = new Set<string | number>(request.unknownParams);
  const keep = <T>(entries: Record<string, T>): Record<string, T> => Object.fromEntries(Object.entries(entries).filter(([key]) => !unknown.has(key)));
  return {
    ...request,
    body: keep(request.body),
    params: keep(request.params),
    fields: request.fields.filter((field) => !unknown.has(field.path[0]!)),
    uninspectable: request.uninspectable.filter((path) => !unknown.has(path[0]!)),
    unknownParams: [],
  };
}

/** Every top-level key the operation did not consume, so nothing the client sent goes unseen. */
export function remainingParams(body: Record<string, unknown>, consumed: ReadonlySet<string>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(body).filter(([key]) => !consumed.has(key)));
}

export const newMessage = (role: string): Message => ({ role, text: [], nonTextParts: 0, toolCalls: [] });

/** The inspectable parts of a request: every text with its path, token-ID prompts, undocumented keys. */
export function requestTexts(operation: Operation, body: Record<string, unknown>): Pick<ModelRequest, 'fields' | 'uninspectable' | 'unknownParams'> {
  return collectRequestTexts(requestShape(operation), body);
}

// Content-part types whose value is the message's text (for approvals and
// records; guardrails inspect every part through the walker). Beyond OpenAI's
// own, vLLM renders `thinking` parts and bare strings.
const TEXT_PART_KEYS = new Map([
  ['text', 'text'],
  ['input_text', 'text'],
  ['output_text', 'text'],
  ['refusal', 'refusal'],
  ['thinking', 'thinking'],
]);

/**
 * Reads an array of content parts: text-bearing parts become message text,
 * other parts (images, audio, files) are only counted.
 */
export function readContentParts(parts: unknown[], at: BodyPath, message: Message, code: string): void {
  parts.forEach((part, i) => {
    const partPath = [...at, i];
    if (typeof part === 'string') {
      message.text.push(part);
      return;
    }
    if (!isJsonObject(part)) {
      throw invalidAt(code, partPath, `\`${formatPath(partPath)}\` must be a content part object, got ${describeType(part)}`);
    }
    const type = part.type;
    if (type !== undefined && typeof type !== 'string') {
      throw invalidAt(code, [...partPath, 'type'], `\`${formatPath([...partPath, 'type'])}\` must be a string, got ${describeType(type)}`);
    }
    const textKey = type === undefined ? undefined : TEXT_PART_KEYS.get(type);
    if (textKey === undefined) {
      message.nonTextParts += 1;
      return;
    }
    const text = part[textKey];
    const textPath = [...partPath, textKey];
    if (typeof text !== 'string') {
      throw invalidAt(code, textPath, `\`${formatPath(textPath)}\` must be a string for a "${type}" part, got ${describeType(text)}`);
    }
    message.text.push(text);
  });
}
