// Every refusal the gateway makes is a GatewayError with a stable `code`.
// The same code reaches the client's error JSON, the logs and (later) the
// session record, so an operator can grep one string end to end.

export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'upstream_error'
  | 'timeout_error'
  | 'server_error'
  | 'service_unavailable';

export interface GatewayErrorOptions {
  status: number;
  type: ErrorType;
  code: string;
  /** Extra response headers, e.g. WWW-Authenticate or Retry-After. */
  headers?: Record<string, string>;
  /** Body `error.param`, as OpenAI uses it for the offending field. */
  param?: string;
  /** Extra fields of the error object, e.g. `review_id`; clients that do not know them ignore them. */
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class GatewayError extends Error {
  readonly status: number;
  readonly type: ErrorType;
  readonly code: string;
  readonly headers: Record<string, string>;
  readonly param: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(message: string, options: GatewayErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.status = options.status;
    this.type = options.type;
    this.code = options.code;
    this.headers = options.headers ?? {};
    this.param = options.param;
    this.details = options.details;
  }

  /** Ollama's error body, `{"error":"message"}`: its clients show `error` as the message, so it must be a string. */
  toOllamaJSON(): { error: string } {
    return { error: this.message };
  }

  /** The OpenAI-style error body: `{"error":{"message","type","param","code"}}`. */
  toJSON(): { error: { message: string; type: string; param: string | null; code: string } } {
    return { error: { message: this.message, type: this.type, param: this.param ?? null, code: this.code, ...this.details } };
  }
}

export const badRequest = (code: string, message: string, param?: string): GatewayError =>
  new GatewayError(message, { status: 400, type: 'invalid_request_error', code, ...(param ? { param } : {}) });

export function methodNotAllowed(allowed: string): GatewayError {
  return new GatewayError(`Method not allowed; use ${allowed}.`, {
    status: 405,
    type: 'invalid_request_error',
    code: 'method_not_allowed',
    headers: { allow: allowed },
  });
}

/** Wraps anything thrown into a GatewayError without leaking internals to the client. */
export function asGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  return new GatewayError('The gateway hit an internal error. The request was not forwarded; see the gateway logs for this request ID.', {
    status: 500,
    type: 'server_error',
    code: 'internal_error',
    cause: err,
  });
}
