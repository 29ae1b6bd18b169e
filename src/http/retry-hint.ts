// `x-should-retry` tells OpenAI SDKs the truth: they retry 408, 409, 429
// and 5xx unless told otherwise, and a retry of a prompt the model already
// received runs it (and bills it, and records it) again. So: `false`
// whenever the request may have reached a model server, `true` for a
// refusal made before anything was forwarded.
import type { GatewayError } from './errors.js';

/** SDKs retry these statuses by default. */
const SDK_RETRIED = (status: number): boolean => status === 408 || status === 409 || status === 429 || status >= 500;

/** The hint for an error the gateway answers itself, or undefined to send none. */
export function retryHintForRefusal(error: GatewayError, upstreamMayHavePrompt: boolean | undefined): 'true' | 'false' | undefined {
  if (error.headers['x-should-retry'] !== undefined) return undefined; // the stage that refused knows best
  if (upstreamMayHavePrompt) return 'false';
  return SDK_RETRIED(error.status) ? 'true' : undefined;
}

/**
 * The hint for an upstream's own error answer: it had the prompt, so only a 429 (refused before any work,
 * by definition) is safe to retry.
 */
export function retryHintForUpstreamStatus(status: number): 'true' | 'false' | undefined {
  if (!SDK_RETRIED(status)) return undefined;
  return status === 429 ? 'true' : 'false';
}
