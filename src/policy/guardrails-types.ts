// What a guardrail decided, in the one shape the session record, the logs
// and the client's error share. A decision never carries the matched text:
// records and logs must not become a second copy of the secret.
import type { EntityType } from '../detect/types.js';
import type { BodyPath } from '../protocol/body-path.js';

/** `end_stream` is an output rule ending a response instead of masking it. */
export type DecisionAction = 'block' | 'require_approval' | 'mask' | 'flag' | 'end_stream';

export interface DecisionSpan {
  /** The text's path in the request or response body, e.g. `['messages', 1, 'content']`. */
  path: BodyPath;
  /** UTF-16 offsets into that text. */
  start: number;
  end: number;
}

export interface Decision {
  /** The configured rule's name; client errors quote it. */
  rule: string;
  action: DecisionAction;
  type?: EntityType | 'PROMPT_INJECTION';
  span?: DecisionSpan;
  /** The request parameter a limit rule objected to, e.g. `max_tokens`. */
  param?: string;
  confidence?: number;
  /** Why, in words an operator can act on; never the matched value. */
  reason: string;
}
