// OpenTelemetry traces: one server span per request, a child span per
// pipeline stage, and GenAI semantic-convention attributes (`gen_ai.*`) on
// the request and its upstream call. Configured only by the standard OTEL_*
// variables (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL,
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER, ...);
// without an exporter configured it costs nothing.
//
// The provider is the gateway's own, not the global one, so several gateways
// in one process (tests, `modelgate dev`) each export their own spans.
// Prompts and completions never enter a span unless `tracing.capture_content`.
import type { IncomingHttpHeaders } from 'node:http';
import { defaultTextMapGetter, defaultTextMapSetter, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { ModelRequest, Operation } from '../protocol/types.js';
import type { TracingConfig } from '../usage/config.js';
import type { Usage } from '../usage/meter.js';
import type { Logger } from './logger.js';

const propagator = new W3CTraceContextPropagator();

/** GenAI `gen_ai.operation.name` for each operation. */
const OPERATION_NAMES: Record<Operation, string> = {
  chat: 'chat',
  completion: 'text_completion',
  embedding: 'embeddings',
  response: 'chat',
  ollama_chat: 'chat',
  ollama_generate: 'text_completion',
  ollama_embed: 'embeddings',
};

export class Tracing {
  readonly #provider: BasicTracerProvider | undefined;
  readonly #tracer: Tracer | undefined;

  private constructor(
    readonly config: TracingConfig,
    provider: BasicTracerProvider | undefined,
  ) {
    this.#provider = provider;
    this.#tracer = provider?.getTracer('modelgate');
  }

  /** Exports over OTLP when the environment asks for it; otherwise only passes `traceparent` on. */
  static fromEnv(config: TracingConfig, log: Logger, env: NodeJS.ProcessEnv = process.env): Tracing {
    const exporter = exporterFromEnv(env, log);
    if (!exporter) return new Tracing(config, undefined);
    const resource = resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME || 'modelgate' }).merge(detectResources({ detectors: [envDetector] }));
    const provider = new BasicTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(exporter)] });
    return new Tracing(config, provider);
  }

  get enabled(): boolean {
    return this.#tracer !== undefined;
  }

  /** The server span for one request, continuing the client's trace when it sent a valid `traceparent`. */
  startRequest(headers: IncomingHttpHeaders, method: string, path: string, requestId: string): RequestTrace | undefined {
    if (!this.#tracer) return undefined;
    const parent = propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter);
    const span = this.#tracer.startSpan(
      `${method} ${path}`,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': method, 'url.path': path, 'modelgate.request_id': requestId } },
      parent,
    );
    return new RequestTrace(this.#tracer, span, this.config);
  }

  /**
   * Sets `traceparent` for the upstream: the forward span's when tracing is
   * on, else the client's own (validated and re-serialised, never copied as
   * sent), so the model server joins the caller's trace either way.
   */
  propagate(trace: RequestTrace | undefined, clientHeaders: IncomingHttpHeaders, upstreamHeaders: Record<string, string>): void {
    const context = trace ? trace.upstreamContext() : propagator.extract(ROOT_CONTEXT, clientHeaders, defaultTextMapGetter);
    propagator.inject(context, upstreamHeaders, defaultTextMapSetter);
  }

  async close(): Promise<void> {
    await this.#provider?.shutdown();
  }

  async flush(): Promise<void> {
    await this.#provider?.forceFlush();
  }
}

export class RequestTrace {
  readonly #stages = new Map<string, Span>();
  #upstream: Span | undefined;

  constructor(
    private readonly tracer: Tracer,
    readonly root: Span,
    private readonly config: TracingConfig,
  ) {}

  get traceId(): string {
    return this.root.spanContext().traceId;
  }

  /** Runs one pipeline stage inside its own child span. */
  async stage<T>(name: string, run: () => Promise<T> | T): Promise<T> {
    const span = this.start(name);
    try {
      return await run();
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as { code?: string }).code ?? (err as Error).message });
      throw err;
    } finally {
      this.end(name);
    }
  }

  /** Starts a stage span that ends elsewhere (first token, relay). */
  start(name: string, kind: SpanKind = SpanKind.INTERNAL): Span {
    const span = this.tracer.startSpan(name, { kind }, trace.setSpan(ROOT_CONTEXT, this.root));
    this.#stages.set(name, span);
    return span;
  }

  end(name: string): void {
    this.#stages.get(name)?.end();
    this.#stages.delete(name);
  }

  /** The upstream call: a client span with the GenAI request attributes; its context goes upstream. */
  startUpstream(request: ModelRequest, model: string, connection: string, serverAddress?: string): void {
    const operation = OPERATION_NAMES[request.operation];
    const span = this.start('forward', SpanKind.CLIENT);
    span.updateName(`${operation} ${model}`);
    const attributes = genAiRequestAttributes(request, model, connection);
    if (serverAddress) attributes['server.address'] = serverAddress;
    span.setAttributes(attributes);
    this.root.setAttributes(attributes);
    if (this.config.capture_content) span.setAttribute('gen_ai.input.messages', JSON.stringify(request.messages.length > 0 ? request.messages.map((m) => ({ role: m.role, parts: m.text })) : request.fields.map((f) => f.text)));
    this.#upstream = span;
  }

  upstreamContext(): Context {
    return trace.setSpan(ROOT_CONTEXT, this.#upstream ?? this.root);
  }

  /** The response headers arrived: the forward span ends, the wait for the first token begins. */
  upstreamAnswered(status: number): void {
    this.#upstream?.setAttribute('http.response.status_code', status);
    this.end('forward');
    this.start('first_token');
  }

  firstToken(): void {
    this.end('first_token');
  }

  /** Ends every open span, the request's last. */
  finish(status: number, usage: Usage | undefined, errorCode: string | undefined, limitOutcome: string | undefined): void {
    for (const name of [...this.#stages.keys()]) this.end(name);
    const attributes: Record<string, string | number | boolean> = { 'http.response.status_code': status };
    if (usage) {
      attributes['gen_ai.usage.input_tokens'] = usage.prompt_tokens;
      attributes['gen_ai.usage.output_tokens'] = usage.completion_tokens;
      attributes['modelgate.usage.estimated'] = usage.estimated;
    }
    if (errorCode) attributes['error.type'] = errorCode;
    if (limitOutcome) attributes['modelgate.limit.outcome'] = limitOutcome;
    this.root.setAttributes(attributes);
    if (usage) this.#upstream?.setAttributes(attributes);
    if (status >= 500 || errorCode) this.root.setStatus({ code: SpanStatusCode.ERROR, ...(errorCode && { message: errorCode }) });
    this.#upstream?.end();
    this.root.end();
  }
}

function genAiRequestAttributes(request: ModelRequest, model: string, connection: string): Record<string, string | number> {
  const p = request.params;
  const attributes: Record<string, string | number> = {
    'gen_ai.operation.name': OPERATION_NAMES[request.operation],
    'gen_ai.provider.name': request.dialect === 'ollama' ? 'ollama' : 'openai',
    'gen_ai.request.model': model,
    'modelgate.connection': connection,
  };
  const maxTokens = p.max_completion_tokens ?? p.max_tokens ?? p.max_output_tokens;
  if (typeof maxTokens === 'number') attributes['gen_ai.request.max_tokens'] = maxTokens;
  if (typeof p.temperature === 'number') attributes['gen_ai.request.temperature'] = p.temperature;
  if (typeof p.top_p === 'number') attributes['gen_ai.request.top_p'] = p.top_p;
  return attributes;
}

/** The OTLP exporter OTEL_* asks for, or undefined when traces are off (the default). */
function exporterFromEnv(env: NodeJS.ProcessEnv, log: Logger): SpanExporter | undefined {
  if (env.OTEL_SDK_DISABLED === 'true') return undefined;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (exporters.includes('none')) return undefined;
  const endpointSet = Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  if (!exporters.includes('otlp') && !endpointSet) return undefined;
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL || env.OTEL_EXPORTER_OTLP_PROTOCOL || 'http/protobuf';
  if (protocol === 'http/json') return new OtlpJsonExporter();
  if (protocol !== 'http/protobuf') log.warn({ protocol }, 'OTLP protocol not supported by modelgate; exporting traces as http/protobuf');
  return new OtlpProtobufExporter();
}
