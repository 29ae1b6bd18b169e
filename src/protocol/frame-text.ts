// Whether a streamed frame carries generated text, for time to first token:
// the first frames of a stream are often empty (OpenAI's role-only delta,
// Responses' `response.created`), and timing those would flatter the model.
import type { StreamFraming } from './types.js';

/** Fields that carry generated text (or reasoning, or tool-call arguments) in OpenAI, Responses and Ollama frames. */
const TEXT_KEYS = new Set(['content', 'reasoning_content', 'reasoning', 'text', 'refusal', 'arguments', 'response', 'thinking', 'delta']);

/** True when the encoded frame carries at least one non-empty text field. */
export function frameCarriesText(raw: string, framing: StreamFraming): boolean {
  const payloads = framing === 'sse' ? sseData(raw) : [raw];
  for (const payload of payloads) {
    if (payload === '' || payload === '[DONE]') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload);
    } catch {
      continue;
    }
    if (hasText(parsed, 0)) return true;
  }
  return false;
}

function sseData(raw: string): string[] {
  const data: string[] = [];
  for (const line of raw.split(/\r?\n/)) if (line.startsWith('data:')) data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
  return [data.join('\n')];
}

function hasText(value: unknown, depth: number): boolean {
  if (depth > 8 || value === null || typeof value !== 'object') return false;
  if (Array.isArray(value)) return value.some((item) => hasText(item, depth + 1));
  for (const [key, v] of Object.entries(value)) {
    if (TEXT_KEYS.has(key) && typeof v === 'string' && v !== '') return true;
    if (typeof v === 'object' && hasText(v, depth + 1)) return true;
  }
  return false;
}
