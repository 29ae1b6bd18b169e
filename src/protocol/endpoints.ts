// The model API surface the gateway serves, keyed by request path. The
// upstream is called on the same path: vLLM, TGI, llama.cpp and Ollama all
// serve the OpenAI paths, and Ollama additionally serves its native ones.
import type { Dialect, Operation } from './types.js';

export interface Endpoint {
  operation: Operation;
  dialect: Dialect;
}

export const MODEL_ENDPOINTS: ReadonlyMap<string, Endpoint> = new Map([
  ['/v1/chat/completions', { operation: 'chat', dialect: 'openai' }],
  ['/v1/completions', { operation: 'completion', dialect: 'openai' }],
  ['/v1/embeddings', { operation: 'embedding', dialect: 'openai' }],
  ['/v1/responses', { operation: 'response', dialect: 'openai' }],
  ['/api/chat', { operation: 'ollama_chat', dialect: 'ollama' }],
  ['/api/generate', { operation: 'ollama_generate', dialect: 'ollama' }],
  ['/api/embed', { operation: 'ollama_embed', dialect: 'ollama' }],
  // The older single-text form (`prompt` in, `embedding` out), which clients still call.
  ['/api/embeddings', { operation: 'ollama_embed', dialect: 'ollama' }],
]);
