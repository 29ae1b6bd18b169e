// Shared pieces of the OpenAI and Ollama request parsers: body and model
// checks, error construction from a body path, and the collector that turns
// found text into TextFields and Messages.

import { badRequest, type GatewayError } from '../http/errors.js';
import { formatPath, isJsonObject, type BodyPath } from './body-path.js';
import type { Message, TextField } from './types.js';

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

/** Every top-level key the operation did not consume, so nothing the client sent goes unseen. */
export function remainingParams(body: Record<string, unknown>, consumed: ReadonlySet<string>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(body).filter(([key]) => !consumed.has(key)));
}

export const newMessage = (role: string): Message => ({ role, text: [], nonTextParts: 0, toolCalls: [] });

/** Collects inspectable text in body order. */
export class TextCollector {
  readonly fields: TextField[] = [];

  add(path: BodyPath, kind: TextField['kind'], text: string, role?: string): void {
    this.fields.push({ path, kind, ...(role !== undefined && { role }), text });
  }

  /** Adds message text: a field, and the text on the message itself. */
  addToMessage(message: Message, path: BodyPath, kind: TextField['kind'], text: string): void {
    this.add(path, kind, text, message.role);
    message.text.push(text);
  }
}

// Content-part types whose value reaches the model as text, and the key that
// holds it. Beyond OpenAI's own, vLLM renders `thinking` parts and bare
// strings, so those are inspected too.
const TEXT_PART_KEYS = new Map([
  ['text', 'text'],
  ['input_text', 'text'],
  ['output_text', 'text'],
  ['refusal', 'refusal'],
  ['thinking', 'thinking'],
]);

/**
 * Reads an array of content parts: text-bearing parts become fields and
 * message text, other parts (images, audio, files) are only counted.
 */
export function readContentParts(parts: unknown[], at: BodyPath, message: Message, texts: TextCollector, code: string): void {
  parts.forEach((part, i) => {
    const partPath = [...at, i];
    if (typeof part === 'string') {
      texts.addToMessage(message, partPath, 'content', part);
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
    texts.addToMessage(message, textPath, 'content', text);
  });
}
