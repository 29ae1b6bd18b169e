// Once a streamed response has started, the HTTP status is already sent, so
// a failure mid-stream has to travel as a frame the client's SDK recognises.

import { encodeSseFrame } from './sse.js';
import type { StreamFraming } from './types.js';

export interface StreamErrorInfo {
  message: string;
  type: string;
  code: string;
  /** Seconds after which a retry should succeed; told in the frame since the headers are long sent. */
  retryAfter?: string;
}

export function encodeStreamError(framing: StreamFraming, error: StreamErrorInfo): string {
  switch (framing) {
    case 'sse': {
      // The openai SDK's Stream throws an APIError for any data frame carrying an `error` key.
      const body = { error: { message: error.message, type: error.type, param: null, code: error.code, ...(error.retryAfter && { retry_after: Number(error.retryAfter) }) } };
      return encodeSseFrame({ data: JSON.stringify(body) });
    }
    case 'ndjson':
      // Ollama's own mid-stream error line has only a message, so the code rides inside it.
      return `${JSON.stringify({ error: `${error.message} (${error.code})`, ...(error.retryAfter && { retry_after: Number(error.retryAfter) }) })}\n`;
  }
}
