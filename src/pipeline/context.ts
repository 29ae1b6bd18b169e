// Everything known about one request as it moves through the stages.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../identity/principal.js';
import type { SessionWriter } from '../audit/recorder.js';
import type { Review } from '../approvals/review.js';
import type { ApprovalNeed } from './approve.js';
import type { MaskingSession } from '../mask/session.js';
import type { Logger } from '../ops/logger.js';
import type { Decision } from '../policy/guardrails-types.js';
import type { ModelRoute } from '../proxy/model-routes.js';
import type { ModelRequest } from '../protocol/types.js';
import type { Grant } from '../usage/limiter.js';
import type { Usage, UsageMeter } from '../usage/meter.js';
import type { RequestTrace } from '../ops/tracing.js';

export interface RequestContext {
  readonly id: string;
  /** `performance.now()` when the request arrived. */
  readonly receivedAt: number;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Fires when the client disconnects or the gateway shuts down; cancels upstream work. */
  readonly abort: AbortController;
  /** The caller's own X-Request-Id, when it sent a usable one. */
  readonly clientReqId?: string;
  log: Logger;
  principal?: Principal;
  request?: ModelRequest;
  route?: ModelRoute;
  /** Guardrail decisions on the prompt and the response, for the record. */
  decisions: Decision[];
  /** Placeholders shared by the prompt's and the response's masking. */
  masking?: MaskingSession;
  /** The session record being written, when recording is on. */
  recording?: SessionWriter;
  /** Set by inspect when a rule requires a human approval. */
  approvalNeed?: ApprovalNeed;
  /** The just-in-time access grant that let this request through, when access rules alone did not. */
  accessGrant?: Review;
  /** The body to forward when input masking rewrote the prompt. */
  forwardBody?: Record<string, unknown>;
  /** Set once the upstream has answered, for the access log. */
  upstreamTarget?: string;
  /** The client closed its connection before the response was finished. */
  clientGone?: boolean;
  /** Set once the request may have reached a model server: from then on a retry could run the prompt twice. */
  upstreamMayHavePrompt?: boolean;
  /** Reads the call's token usage from the upstream's answer (set by the limit stage). */
  usage?: UsageMeter;
  /** What the call used, once it ended; for the record, metrics and logs. */
  usageResult?: Usage;
  /** The limits that admitted the call, to settle and release when it ends. */
  limits?: Grant;
  /** The request's span and its stages' spans. */
  trace?: RequestTrace;
  /** The first refusal or failure, by stable code. */
  errorCode?: string;
}
