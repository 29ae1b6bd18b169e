import { parseOllamaRequest } from './ollama.js';
import { parseOpenAiRequest } from './openai.js';
import type { ModelRequest, Operation } from './types.js';

/** Parses any supported request body into the one internal shape. */
export function parseModelRequest(operation: Operation, body: unknown): ModelRequest {
  switch (operation) {
    case 'ollama_chat':
    case 'ollama_generate':
    case 'ollama_embed':
      return parseOllamaRequest(operation, body);
    default:
      return parseOpenAiRequest(operation, body);
  }
}
