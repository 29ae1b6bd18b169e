// A demo model server that speaks the real OpenAI/vLLM and Ollama wire
// formats. `modelgate dev` runs it as the model behind the gateway; tests and
// benchmarks use it as the upstream, with injectable faults for the failure
// modes a real model server shows (resets, stalls, odd SSE framing).

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomUUID } from 'node:crypto';

export interface DemoModelOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  models?: string[];
  /** When set, requests need `Authorization: Bearer <apiKey>` (like `vllm --api-key`); `/health` stays open as in vLLM. */
  apiKey?: string;
  /** Delay between streamed chunks; 0 answers instantly. */
  chunkDelayMs?: number;
  /** Exact word count of the canned reply; by default the natural greeting (about 12 words). */
  replyWords?: number;
}

export type Fault =
  | { kind: 'status'; status: number; body?: unknown }
  | { kind: 'hang' }
  | { kind: 'slow_headers'; delayMs: number }
  | { kind: 'reset_before_response' }
  /** Streams N frames, then resets the connection. Non-streaming answers send headers and half the body. */
  | { kind: 'reset_mid_stream'; afterChunks: number }
  /** Streams N frames, then goes silent with the connection open. Non-streaming answers send headers and half the body. */
  | { kind: 'stall_mid_stream'; afterChunks: number }
  /** SSE framing edge cases; `splitEveryBytes` applies to every body, streamed or not. */
  | { kind: 'wire'; lineEnding?: '\n' | '\r\n'; comments?: boolean; splitEveryBytes?: number }
  /** Answers 200 with exactly these body writes, each flushed on its own, then ends the response. */
  | { kind: 'raw'; contentType: string; writes: string[] };

export interface ReceivedRequest {
  method: string;
  /** The request target as sent, including any query string. */
  path: string;
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON; the raw text when it was not JSON; undefined when empty. */
  body: unknown;
  aborted: boolean;
}

export interface FaultOptions {
  /** How many requests the fault applies to; default: until cleared. */
  times?: number;
  /** Only requests to this exact path (e.g. '/v1/chat/completions') take the fault, so health probes do not consume it. */
  path?: string;
}

export interface DemoModel {
  readonly url: string;
  /** The last 100 requests, oldest first. */
  readonly received: ReceivedRequest[];
  setFault(fault: Fault | null, opts?: FaultOptions): void;
  /** Resolves with the next request whose client disconnected before the response finished (queued if it already happened). */
  waitForAbort(timeoutMs?: number): Promise<ReceivedRequest>;
  /** Response body bytes handed to sockets so far, all requests together: how far a stream got past backpressure. */
  readonly bytesWritten: number;
  close(): Promise<void>;
}

export async function startDemoModel(options: DemoModelOptions = {}): Promise<DemoModel> {
  const demo = new DemoModelServer(options);
  await demo.listen(options.host ?? '127.0.0.1', options.port ?? 0);
  return demo;
}

const DEFAULT_MODELS = ['demo-chat', 'demo-embed'];
const RECEIVED_LIMIT = 100;
const MAX_BODY_BYTES = 32 * 1024 * 1024;
const DEFAULT_EMBEDDING_DIMENSIONS = 16;
const MAX_EMBEDDING_DIMENSIONS = 8192;
const MAX_CHOICES = 128;
const DEFAULT_ABORT_WAIT_MS = 5000;
const OLLAMA_VERSION = '0.6.8';
const SSE_CONTENT_TYPE = 'text/event-stream; charset=utf-8';
const NDJSON_CONTENT_TYPE = 'application/x-ndjson';
const JSON_CONTENT_TYPE = 'application/json';
const OLLAMA_JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

type Json = Record<string, unknown>;
type Dialect = 'openai' | 'ollama';
type InterruptFault = Extract<Fault, { kind: 'reset_mid_stream' | 'stall_mid_stream' }>;
type WireFault = Extract<Fault, { kind: 'wire' }>;
type ParsedBody = { kind: 'empty' } | { kind: 'json'; value: unknown } | { kind: 'invalid'; text: string; reason: string };

/** A client mistake, answered in the dialect of the endpoint. */
class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
    readonly type: string = 'invalid_request_error',
  ) {
    super(message);
  }
}

interface Route {
  method: 'GET' | 'POST';
  handle: (exchange: Exchange, body: ParsedBody) => Promise<void> | void;
}

class DemoModelServer implements DemoModel {
  readonly received: ReceivedRequest[] = [];
  readonly #written = { bytes: 0 };
  get bytesWritten(): number {
    return this.#written.bytes;
  }
  private readonly server: http.Server;
  private readonly modelNames: string[];
  private readonly modelSet: Set<string>;
  private readonly apiKey: string | undefined;
  private readonly chunkDelayMs: number;
  private readonly replyWords: number | undefined;
  private readonly startedAt = new Date();
  private readonly routes: Map<string, Route>;
  private activeFault: { fault: Fault; remaining: number; path: string | undefined } | null = null;
  private readonly unclaimedAborts: ReceivedRequest[] = [];
  private readonly abortWaiters: Array<(request: ReceivedRequest) => void> = [];
  private closing = false;
  private closed: Promise<void> | undefined;
  private baseUrl = '';

  constructor(options: DemoModelOptions) {
    this.modelNames = options.models && options.models.length > 0 ? [...options.models] : [...DEFAULT_MODELS];
    this.modelSet = new Set(this.modelNames);
    this.apiKey = options.apiKey || undefined;
    this.chunkDelayMs = Math.max(0, options.chunkDelayMs ?? 0);
    this.replyWords = options.replyWords === undefined ? undefined : Math.max(0, Math.floor(options.replyWords));
    this.routes = new Map<string, Route>([
      ['/', { method: 'GET', handle: (ex) => ex.sendText(200, 'modelgate demo model is running') }],
      ['/health', { method: 'GET', handle: (ex) => ex.sendEmpty(200) }],
      ['/v1/models', { method: 'GET', handle: (ex) => this.listModels(ex) }],
      ['/v1/chat/completions', { method: 'POST', handle: (ex, body) => this.chatCompletions(ex, requireObject(body, ex.dialect)) }],
      ['/v1/completions', { method: 'POST', handle: (ex, body) => this.completions(ex, requireObject(body, ex.dialect)) }],
      ['/v1/embeddings', { method: 'POST', handle: (ex, body) => this.embeddings(ex, requireObject(body, ex.dialect)) }],
      ['/v1/responses', { method: 'POST', handle: (ex, body) => this.responses(ex, requireObject(body, ex.dialect)) }],
      ['/api/tags', { method: 'GET', handle: (ex) => this.ollamaTags(ex) }],
      ['/api/version', { method: 'GET', handle: (ex) => ex.sendJson(200, { version: OLLAMA_VERSION }) }],
      ['/api/chat', { method: 'POST', handle: (ex, body) => this.ollamaChat(ex, requireObject(body, ex.dialect)) }],
      ['/api/generate', { method: 'POST', handle: (ex, body) => this.ollamaGenerate(ex, requireObject(body, ex.dialect)) }],
      ['/api/embed', { method: 'POST', handle: (ex, body) => this.ollamaEmbed(ex, requireObject(body, ex.dialect)) }],
      ['/api/embeddings', { method: 'POST', handle: (ex, body) => this.ollamaEmbeddings(ex, requireObject(body, ex.dialect)) }],
      ['/api/show', { method: 'POST', handle: (ex, body) => this.ollamaShow(ex, requireObject(body, ex.dialect)) }],
      ['/api/ps', { method: 'GET', handle: (ex) => this.ollamaPs(ex) }],
    ]);
    this.server = http.createServer((req, res) => {
      this.serve(req, res).catch(() => {
        // A handler bug must not take the whole demo down; drop just this connection.
        res.destroy();
      });
    });
  }

  get url(): string {
    return this.baseUrl;
  }

  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const address = this.server.address() as AddressInfo;
        const urlHost = address.family === 'IPv6' || address.address.includes(':') ? `[${address.address}]` : address.address;
        this.baseUrl = `http://${urlHost}:${address.port}`;
        resolve();
      });
    });
  }

  setFault(fault: Fault | null, opts: FaultOptions = {}): void {
    const times = opts.times ?? Infinity;
    this.activeFault = fault && times > 0 ? { fault, remaining: times, path: opts.path } : null;
  }

  waitForAbort(timeoutMs = DEFAULT_ABORT_WAIT_MS): Promise<ReceivedRequest> {
    const ready = this.unclaimedAborts.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const waiter = (request: ReceivedRequest): void => {
        clearTimeout(timer);
        resolve(request);
      };
      const timer = setTimeout(() => {
        const index = this.abortWaiters.indexOf(waiter);
        if (index !== -1) this.abortWaiters.splice(index, 1);
        reject(new Error(`No client abort reached the demo model within ${timeoutMs} ms`));
      }, timeoutMs);
      this.abortWaiters.push(waiter);
    });
  }

  close(): Promise<void> {
    this.closed ??= new Promise<void>((resolve, reject) => {
      this.closing = true;
      this.server.close((err) => (err ? reject(err) : resolve()));
      this.server.closeAllConnections();
    });
    return this.closed;
  }

  private remember(request: ReceivedRequest): void {
    this.received.push(request);
    if (this.received.length > RECEIVED_LIMIT) this.received.shift();
  }

  private noteAbort(request: ReceivedRequest): void {
    request.aborted = true;
    const waiter = this.abortWaiters.shift();
    if (waiter) return waiter(request);
    this.unclaimedAborts.push(request);
    if (this.unclaimedAborts.length > RECEIVED_LIMIT) this.unclaimedAborts.shift();
  }

  private takeFault(pathname: string): Fault | null {
    const active = this.activeFault;
    if (!active || (active.path !== undefined && active.path !== pathname)) return null;
    active.remaining -= 1;
    if (active.remaining <= 0) this.activeFault = null;
    return active.fault;
  }

  private async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const target = req.url ?? '/';
    const queryStart = target.indexOf('?');
    const pathname = queryStart === -1 ? target : target.slice(0, queryStart);
    const record: ReceivedRequest = { method, path: target, headers: req.headers, body: undefined, aborted: false };
    this.remember(record);

    const ex = new Exchange(req, res, pathname.startsWith('/api/') ? 'ollama' : 'openai', this.chunkDelayMs);
    ex.written = this.#written;
    // Writes after a client disconnect surface as errors; the 'close' handler below already covers them.
    res.on('error', () => {});
    res.on('close', () => {
      ex.markGone();
      if (!res.writableEnded && !ex.destroyedByServer && !this.closing) this.noteAbort(record);
    });

    let raw: Buffer | null;
    try {
      raw = await readBody(req, MAX_BODY_BYTES);
    } catch {
      return; // the client went away mid-upload
    }
    if (raw === null) {
      return ex.sendError(new RequestError(413, `Request body exceeds ${MAX_BODY_BYTES} bytes.`, 'request_too_large'));
    }
    const body = parseBody(raw);
    record.body = body.kind === 'json' ? body.value : body.kind === 'invalid' ? body.text : undefined;

    const fault = this.takeFault(pathname);
    if (fault && !(await this.applyFault(ex, fault))) return;

    if (this.apiKey !== undefined && pathname !== '/health' && !hasBearer(req, this.apiKey)) {
      const message = req.headers.authorization
        ? 'Incorrect API key provided.'
        : "You didn't provide an API key. Provide it in the Authorization header (Authorization: Bearer YOUR_KEY).";
      return ex.sendError(new RequestError(401, message, 'invalid_api_key'));
    }

    try {
      const route = this.routes.get(pathname);
      if (!route) throw new RequestError(404, ex.dialect === 'ollama' ? '404 page not found' : `Invalid URL (${method} ${pathname})`);
      if (method !== route.method && !(method === 'HEAD' && route.method === 'GET')) {
        throw new RequestError(405, `Method ${method} is not allowed for ${pathname}; use ${route.method}.`, 'method_not_allowed');
      }
      await route.handle(ex, body);
    } catch (err) {
      if (!(err instanceof RequestError)) throw err;
      if (!res.headersSent) await ex.sendError(err);
    }
  }

  /** Returns true when the request should continue to its normal handler. */
  private async applyFault(ex: Exchange, fault: Fault): Promise<boolean> {
    switch (fault.kind) {
      case 'status':
        await ex.sendJson(fault.status, fault.body ?? injectedErrorBody(fault.status));
        return false;
      case 'hang':
        return false; // never answer; the connection stays open until the client or close() ends it
      case 'slow_headers':
        return ex.sleep(fault.delayMs);
      case 'reset_before_response':
        ex.reset();
        return false;
      case 'reset_mid_stream':
      case 'stall_mid_stream':
        ex.interrupt = fault;
        return true;
      case 'wire':
        ex.wire = fault;
        return true;
      case 'raw':
        await ex.sendRaw(fault.contentType, fault.writes);
        return false;
    }
  }

  private resolveModel(body: Json, dialect: Dialect): string {
    const model = body.model;
    if (typeof model !== 'string' || model === '') {
      throw new RequestError(400, dialect === 'ollama' ? 'model is required' : 'you must provide a model parameter', null, 'model');
    }
    if (this.modelSet.has(model)) return model;
    // Ollama treats a bare name and `name:latest` as the same model.
    if (dialect === 'ollama' && model.endsWith(':latest') && this.modelSet.has(model.slice(0, -':latest'.length))) return model;
    if (dialect === 'ollama') throw new RequestError(404, `model "${model}" not found, try pulling it first`);
    throw new RequestError(404, `The model \`${model}\` does not exist or you do not have access to it.`, 'model_not_found', 'model');
  }

  private reply(userText: string | undefined, maxTokens: number | undefined): Reply {
    return composeReply(userText, this.replyWords, maxTokens);
  }

  private listModels(ex: Exchange): Promise<void> {
    const created = Math.floor(this.startedAt.getTime() / 1000);
    return ex.sendJson(200, {
      object: 'list',
      data: this.modelNames.map((id) => ({ id, object: 'model', created, owned_by: 'modelgate-demo' })),
    });
  }

  private async chatCompletions(ex: Exchange, body: Json): Promise<void> {
    const model = this.resolveModel(body, 'openai');
    const messages = body.messages;
    if (!Array.isArray(messages) || messages.length === 0) {
      throw new RequestError(400, "'messages' must be a non-empty array.", null, 'messages');
    }
    const choiceCount = optionalPositiveInt(body.n, 'n', MAX_CHOICES) ?? 1;
    const maxTokens = optionalPositiveInt(body.max_completion_tokens, 'max_completion_tokens') ?? optionalPositiveInt(body.max_tokens, 'max_tokens');
    const userText = lastUserText(messages);
    const promptTokens = messages.reduce<number>((sum, message) => sum + estimateTokens(isRecord(message) ? textOf(message.content) : ''), 0);
    const toolCall = planToolCall(body.tools, body.tool_choice, userText);
    const reply = toolCall ? undefined : this.reply(userText, maxTokens);
    const completionTokens = (toolCall ? toolCall.fragments.length : reply!.pieces.length) * choiceCount;
    const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
    const id = `chatcmpl-${randomId()}`;
    const created = nowSeconds();
    const choiceIndexes = Array.from({ length: choiceCount }, (_, index) => index);

    if (body.stream !== true) {
      const message = toolCall
        ? {
            role: 'assistant',
            content: null,
            tool_calls: [{ id: toolCall.id, type: 'function', function: { name: toolCall.name, arguments: toolCall.arguments } }],
            refusal: null,
            annotations: [],
          }
        : { role: 'assistant', content: reply!.text, refusal: null, annotations: [] };
      const finishReason = toolCall ? 'tool_calls' : reply!.finishReason;
      return ex.sendJson(200, {
        id,
        object: 'chat.completion',
        created,
        model,
        choices: choiceIndexes.map((index) => ({ index, message, logprobs: null, finish_reason: finishReason })),
        usage,
      });
    }

    const includeUsage = isRecord(body.stream_options) && body.stream_options.include_usage === true;
    const frame = (choices: unknown[], usageField?: unknown): string =>
      ex.sse(JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices, ...(includeUsage ? { usage: usageField ?? null } : {}) }));
    const choiceDelta = (index: number, delta: Json, finishReason: string | null = null): Json => ({ index, delta, logprobs: null, finish_reason: finishReason });

    function* frames(): Generator<string> {
      if (toolCall) {
        for (const index of choiceIndexes) {
          const opening = { index: 0, id: toolCall.id, type: 'function', function: { name: toolCall.name, arguments: '' } };
          yield frame([choiceDelta(index, { role: 'assistant', content: null, tool_calls: [opening], refusal: null })]);
        }
        for (const fragment of toolCall.fragments) {
          for (const index of choiceIndexes) {
            yield frame([choiceDelta(index, { tool_calls: [{ index: 0, function: { arguments: fragment } }] })]);
          }
        }
      } else {
        for (const index of choiceIndexes) yield frame([choiceDelta(index, { role: 'assistant', content: '', refusal: null })]);
        for (const piece of reply!.pieces) {
          for (const index of choiceIndexes) yield frame([choiceDelta(index, { content: piece })]);
        }
      }
      const finishReason = toolCall ? 'tool_calls' : reply!.finishReason;
      for (const index of choiceIndexes) yield frame([choiceDelta(index, {}, finishReason)]);
      if (includeUsage) yield frame([], usage);
      yield ex.sse('[DONE]');
    }
    return ex.stream(SSE_CONTENT_TYPE, frames());
  }

  private async completions(ex: Exchange, body: Json): Promise<void> {
    const model = this.resolveModel(body, 'openai');
    const prompts = textInputs(body.prompt);
    if (!prompts) throw new RequestError(400, "'prompt' must be a string, an array of strings, or token arrays.", null, 'prompt');
    const choiceCount = optionalPositiveInt(body.n, 'n', MAX_CHOICES) ?? 1;
    const maxTokens = optionalPositiveInt(body.max_tokens, 'max_tokens');
    const echo = body.echo === true;
    const choices = prompts.flatMap((prompt, promptIndex) => {
      const reply = this.reply(prompt, maxTokens);
      return Array.from({ length: choiceCount }, (_, n) => ({ index: promptIndex * choiceCount + n, prompt, reply }));
    });
    const promptTokens = prompts.reduce((sum, prompt) => sum + estimateTokens(prompt), 0);
    const completionTokens = choices.reduce((sum, choice) => sum + choice.reply.pieces.length, 0);
    const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
    const id = `cmpl-${randomId()}`;
    const created = nowSeconds();

    if (body.stream !== true) {
      return ex.sendJson(200, {
        id,
        object: 'text_completion',
        created,
        model,
        choices: choices.map(({ index, prompt, reply }) => ({
          text: echo ? prompt + reply.text : reply.text,
          index,
          logprobs: null,
          finish_reason: reply.finishReason,
        })),
        usage,
      });
    }

    const includeUsage = isRecord(body.stream_options) && body.stream_options.include_usage === true;
    const frame = (choiceList: unknown[], usageField?: unknown): string =>
      ex.sse(JSON.stringify({ id, object: 'text_completion', created, model, choices: choiceList, ...(includeUsage ? { usage: usageField ?? null } : {}) }));
    const choiceText = (index: number, text: string, finishReason: string | null = null): Json => ({ text, index, logprobs: null, finish_reason: finishReason });
    const longest = Math.max(0, ...choices.map((choice) => choice.reply.pieces.length));

    function* frames(): Generator<string> {
      if (echo) for (const choice of choices) yield frame([choiceText(choice.index, choice.prompt)]);
      for (let position = 0; position < longest; position++) {
        for (const choice of choices) {
          const piece = choice.reply.pieces[position];
          if (piece !== undefined) yield frame([choiceText(choice.index, piece)]);
        }
      }
      for (const choice of choices) yield frame([choiceText(choice.index, '', choice.reply.finishReason)]);
      if (includeUsage) yield frame([], usage);
      yield ex.sse('[DONE]');
    }
    return ex.stream(SSE_CONTENT_TYPE, frames());
  }

  private async embeddings(ex: Exchange, body: Json): Promise<void> {
    const model = this.resolveModel(body, 'openai');
    const inputs = textInputs(body.input);
    if (!inputs) throw new RequestError(400, "'input' must be a non-empty string, array of strings, or token arrays.", null, 'input');
    const format = body.encoding_format ?? 'float';
    if (format !== 'float' && format !== 'base64') {
      throw new RequestError(400, "'encoding_format' must be 'float' or 'base64'.", null, 'encoding_format');
    }
    const dimensions = optionalPositiveInt(body.dimensions, 'dimensions', MAX_EMBEDDING_DIMENSIONS) ?? DEFAULT_EMBEDDING_DIMENSIONS;
    const promptTokens = inputs.reduce((sum, input) => sum + estimateTokens(input), 0);
    return ex.sendJson(200, {
      object: 'list',
      data: inputs.map((input, index) => {
        const vector = embeddingOf(input, dimensions);
        return { object: 'embedding', index, embedding: format === 'base64' ? float32Base64(vector) : Array.from(vector) };
      }),
      model,
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    });
  }

  private async responses(ex: Exchange, body: Json): Promise<void> {
    const model = this.resolveModel(body, 'openai');
    const input = body.input;
    if (typeof input !== 'string' && !Array.isArray(input)) {
      throw new RequestError(400, "'input' must be a string or an array of input items.", null, 'input');
    }
    const instructions = typeof body.instructions === 'string' ? body.instructions : null;
    const maxOutputTokens = optionalPositiveInt(body.max_output_tokens, 'max_output_tokens');
    const userText = typeof input === 'string' ? input : lastUserText(input);
    const inputTokens = estimateTokens(instructions ?? '') + (typeof input === 'string' ? estimateTokens(input) : input.reduce<number>((sum, item) => sum + estimateTokens(isRecord(item) ? textOf(item.content) : ''), 0));
    const reply = this.reply(userText, maxOutputTokens);
    const outputTokens = reply.pieces.length;
    const incomplete = reply.finishReason === 'length';
    const responseId = `resp_${randomId()}`;
    const messageId = `msg_${randomId()}`;
    const createdAt = nowSeconds();
    const usage = {
      input_tokens: inputTokens,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: outputTokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: inputTokens + outputTokens,
    };
    const textPart = (text: string): Json => ({ type: 'output_text', annotations: [], logprobs: [], text });
    const messageItem = (status: string, content: Json[]): Json => ({ id: messageId, type: 'message', status, content, role: 'assistant' });
    const responseObject = (status: string, output: Json[], finalUsage: Json | null): Json => ({
      id: responseId,
      object: 'response',
      created_at: createdAt,
      status,
      background: false,
      error: null,
      incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
      instructions,
      max_output_tokens: maxOutputTokens ?? null,
      model,
      output,
      parallel_tool_calls: true,
      previous_response_id: typeof body.previous_response_id === 'string' ? body.previous_response_id : null,
      reasoning: { effort: null, summary: null },
      store: body.store !== false,
      temperature: typeof body.temperature === 'number' ? body.temperature : 1,
      text: { format: { type: 'text' } },
      tool_choice: 'auto',
      tools: [],
      top_p: typeof body.top_p === 'number' ? body.top_p : 1,
      truncation: 'disabled',
      usage: finalUsage,
      user: null,
      metadata: isRecord(body.metadata) ? body.metadata : {},
    });
    const finalStatus = incomplete ? 'incomplete' : 'completed';
    const finalItem = messageItem(incomplete ? 'incomplete' : 'completed', [textPart(reply.text)]);

    if (body.stream !== true) return ex.sendJson(200, responseObject(finalStatus, [finalItem], usage));

    let sequence = 0;
    const event = (type: string, fields: Json): string => ex.sse(JSON.stringify({ type, sequence_number: sequence++, ...fields }), type);
    const at = { item_id: messageId, output_index: 0, content_index: 0 };
    function* frames(): Generator<string> {
      yield event('response.created', { response: responseObject('in_progress', [], null) });
      yield event('response.in_progress', { response: responseObject('in_progress', [], null) });
      yield event('response.output_item.added', { output_index: 0, item: messageItem('in_progress', []) });
      yield event('response.content_part.added', { ...at, part: textPart('') });
      for (const piece of reply.pieces) yield event('response.output_text.delta', { ...at, delta: piece, logprobs: [] });
      yield event('response.output_text.done', { ...at, text: reply.text, logprobs: [] });
      yield event('response.content_part.done', { ...at, part: textPart(reply.text) });
      yield event('response.output_item.done', { output_index: 0, item: finalItem });
      yield event(incomplete ? 'response.incomplete' : 'response.completed', { response: responseObject(finalStatus, [finalItem], usage) });
    }
    return ex.stream(SSE_CONTENT_TYPE, frames());
  }

  private ollamaTags(ex: Exchange): Promise<void> {
    const modifiedAt = this.startedAt.toISOString();
    return ex.sendJson(200, {
      models: this.modelNames.map((name) => {
        const tagged = name.includes(':') ? name : `${name}:latest`;
        return {
          name: tagged,
          model: tagged,
          modified_at: modifiedAt,
          size: 4096,
          digest: createHash('sha256').update(tagged).digest('hex'),
          details: { parent_model: '', format: 'gguf', family: 'demo', families: ['demo'], parameter_size: '0B', quantization_level: 'F32' },
        };
      }),
    }, OLLAMA_JSON_CONTENT_TYPE);
  }

  private async ollamaChat(ex: Exchange, body: Json): Promise<void> {
    const model = this.resolveModel(body, 'ollama');
    const messages = body.messages ?? [];
    if (!Array.isArray(messages)) throw new RequestError(400, 'messages must be an array');
    const stream = body.stream !== false;
    if (messages.length === 0) return ollamaLoaded(ex, model, { message: { role: 'assistant', content: '' } }, stream);

    const userText = lastUserText(messages);
    const promptTokens = messages.reduce<number>((sum, message) => sum + estimateTokens(isRecord(message) ? textOf(message.content) : ''), 0);
    const toolCall = planToolCall(body.tools, undefined, userText);
    const reply = toolCall ? undefined : this.reply(userText, ollamaNumPredict(body));
    const evalCount = toolCall ? toolCall.fragments.length : reply!.pieces.length;
    const doneReason = toolCall ? 'stop' : reply!.finishReason;
    const assistant = (content: string, withToolCall: boolean): Json => ({
      role: 'assistant',
      content,
      ...(withToolCall && toolCall ? { tool_calls: [{ function: { name: toolCall.name, arguments: JSON.parse(toolCall.arguments) as unknown } }] } : {}),
    });
    const final = (content: string): Json => ({
      model,
      created_at: new Date().toISOString(),
      message: assistant(content, !stream && toolCall !== undefined),
      done_reason: doneReason,
      done: true,
      ...ollamaTimings(ex, promptTokens, evalCount),
    });

    if (!stream) return ex.sendJson(200, final(reply?.text ?? ''), OLLAMA_JSON_CONTENT_TYPE);
    function* lines(): Generator<string> {
      if (toolCall) {
        yield ndjson({ model, created_at: new Date().toISOString(), message: assistant('', true), done: false });
      } else {
        for (const piece of reply!.pieces) yield ndjson({ model, created_at: new Date().toISOString(), message: assistant(piece, false), done: false });
      }
      yield ndjson(final(''));
    }
    return ex.stream(NDJSON_CONTENT_TYPE, lines());
  }

  private async ollamaGenerate(ex: Exchange, body: Json): Promise<void> {
    const model = this.resolveModel(body, 'ollama');
    const prompt = body.prompt ?? '';
    if (typeof prompt !== 'string') throw new RequestError(400, 'prompt must be a string');
    const stream = body.stream !== false;
    if (prompt === '') return ollamaLoaded(ex, model, { response: '' }, stream);

    const promptTokens = estimateTokens(prompt) + (typeof body.system === 'string' ? estimateTokens(body.system) : 0);
    const reply = this.reply(prompt, ollamaNumPredict(body));
    const final = (response: string): Json => ({
      model,
      created_at: new Date().toISOString(),
      response,
      done: true,
      done_reason: reply.finishReason,
      context: Array.from({ length: promptTokens + reply.pieces.length }, (_, index) => index + 1),
      ...ollamaTimings(ex, promptTokens, reply.pieces.length),
    });

    if (!stream) return ex.sendJson(200, final(reply.text), OLLAMA_JSON_CONTENT_TYPE);
    function* lines(): Generator<string> {
      for (const piece of reply.pieces) yield ndjson({ model, created_at: new Date().toISOString(), response: piece, done: false });
      yield ndjson(final(''));
    }
    return ex.stream(NDJSON_CONTENT_TYPE, lines());
  }

  private async ollamaEmbed(ex: Exchange, body: Json): Promise<void> {
    const model = this.resolveModel(body, 'ollama');
    const inputs = typeof body.input === 'string' ? [body.input] : Array.isArray(body.input) && body.input.every(isString) ? body.input : undefined;
    if (!inputs || inputs.length === 0) throw new RequestError(400, 'input must be a string or a non-empty array of strings');
    const dimensions = optionalPositiveInt(body.dimensions, 'dimensions', MAX_EMBEDDING_DIMENSIONS) ?? DEFAULT_EMBEDDING_DIMENSIONS;
    const promptTokens = inputs.reduce((sum, input) => sum + estimateTokens(input), 0);
    const timings = ollamaTimings(ex, promptTokens, 0);
    return ex.sendJson(200, {
      model,
      embeddings: inputs.map((input) => Array.from(embeddingOf(input, dimensions))),
      total_duration: timings.total_duration,
      load_duration: timings.load_duration,
      prompt_eval_count: promptTokens,
    }, OLLAMA_JSON_CONTENT_TYPE);
  }

  /** The older single-text form: `prompt` in, one `embedding` out. */
  private ollamaEmbeddings(ex: Exchange, body: Json): Promise<void> {
    this.resolveModel(body, 'ollama');
    if (typeof body.prompt !== 'string') throw new RequestError(400, 'prompt must be a string');
    return ex.sendJson(200, { embedding: Array.from(embeddingOf(body.prompt, DEFAULT_EMBEDDING_DIMENSIONS)) }, OLLAMA_JSON_CONTENT_TYPE);
  }

  private ollamaShow(ex: Exchange, body: Json): Promise<void> {
    const model = this.resolveModel({ ...body, model: body.model ?? body.name }, 'ollama');
    const embedding = model.includes('embed');
    return ex.sendJson(200, {
      license: 'Demo model: canned replies, no weights.',
      // A real Ollama names its blob store here; gateways should not pass it on.
      modelfile: `FROM /var/lib/ollama/blobs/sha256-${createHash('sha256').update(model).digest('hex')}`,
      parameters: 'temperature 0.7',
      template: '{{ .Prompt }}',
      details: { parent_model: '', format: 'gguf', family: 'demo', families: ['demo'], parameter_size: '0B', quantization_level: 'F32' },
      model_info: { 'general.architecture': 'demo', 'general.parameter_count': 0, 'demo.context_length': 8192 },
      capabilities: embedding ? ['embedding'] : ['completion', 'tools'],
      modified_at: this.startedAt.toISOString(),
    }, OLLAMA_JSON_CONTENT_TYPE);
  }

  /** Every model reads as loaded: the demo has nothing to load. */
  private ollamaPs(ex: Exchange): Promise<void> {
    const expiresAt = new Date(Date.now() + 5 * 60_000).toISOString();
    return ex.sendJson(200, {
      models: this.modelNames.map((name) => ({
        name,
        model: name,
        size: 4096,
        digest: createHash('sha256').update(name).digest('hex'),
        details: { parent_model: '', format: 'gguf', family: 'demo', families: ['demo'], parameter_size: '0B', quantization_level: 'F32' },
        expires_at: expiresAt,
        size_vram: 0,
        context_length: 8192,
      })),
    }, OLLAMA_JSON_CONTENT_TYPE);
  }
}

/** One request/response pair: owns the writing side, faults included. */
class Exchange {
  /** True once the connection closed; a plain flag because AbortController costs a DOMException per request. */
  gone = false;
  private goneListeners: Array<() => void> | undefined;
  readonly startedAt = process.hrtime.bigint();
  /** Set when the demo itself cut the connection, so it is not mistaken for a client abort. */
  destroyedByServer = false;
  interrupt: InterruptFault | null = null;
  wire: WireFault | null = null;
  /** The model's shared count of body bytes written. */
  written = { bytes: 0 };

  constructor(
    readonly req: http.IncomingMessage,
    readonly res: http.ServerResponse,
    readonly dialect: Dialect,
    private readonly chunkDelayMs: number,
  ) {}

  markGone(): void {
    if (this.gone) return;
    this.gone = true;
    const listeners = this.goneListeners;
    this.goneListeners = undefined;
    if (listeners) for (const listener of listeners) listener();
  }

  /** Runs `listener` when the connection closes; returns the unsubscribe. */
  private onGone(listener: () => void): () => void {
    (this.goneListeners ??= []).push(listener);
    return () => {
      const index = this.goneListeners?.indexOf(listener) ?? -1;
      if (index !== -1) this.goneListeners!.splice(index, 1);
    };
  }

  /** Resolves true after `ms`, or false as soon as the connection closes. */
  sleep(ms: number): Promise<boolean> {
    if (this.gone) return Promise.resolve(false);
    return new Promise((resolve) => {
      const unsubscribe = this.onGone(() => {
        clearTimeout(timer);
        resolve(false);
      });
      const timer = setTimeout(() => {
        unsubscribe();
        resolve(true);
      }, ms);
    });
  }

  /** One SSE frame; the `wire` fault may ask for CRLF line endings. */
  sse(data: string, event?: string): string {
    const eol = this.wire?.lineEnding ?? '\n';
    return event === undefined ? `data: ${data}${eol}${eol}` : `event: ${event}${eol}data: ${data}${eol}${eol}`;
  }

  /**
   * Cuts the connection, as a crashed model server does. A plain destroy rather than an RST:
   * an RST may make the client's kernel drop frames already sent, and tests count those.
   */
  reset(): void {
    this.destroyedByServer = true;
    this.req.socket.destroy();
  }

  /** Writes each piece separately (the `raw` fault), so tests control the exact bytes and their split. */
  async sendRaw(contentType: string, writes: readonly string[]): Promise<void> {
    this.res.writeHead(200, { 'content-type': contentType });
    this.res.flushHeaders();
    for (const piece of writes) {
      if (this.gone) return;
      this.res.write(piece);
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.res.end();
  }

  sendEmpty(status: number): void {
    this.res.writeHead(status, { 'content-length': 0 });
    this.res.end();
  }

  sendText(status: number, text: string): Promise<void> {
    return this.sendBody(status, 'text/plain; charset=utf-8', Buffer.from(text, 'utf8'));
  }

  sendJson(status: number, body: unknown, contentType = JSON_CONTENT_TYPE): Promise<void> {
    if (status === 204 || status === 304) {
      this.res.writeHead(status);
      this.res.end();
      return Promise.resolve();
    }
    return this.sendBody(status, contentType, Buffer.from(JSON.stringify(body), 'utf8'));
  }

  sendError(err: RequestError): Promise<void> {
    const body = this.dialect === 'ollama'
      ? { error: err.message }
      : { error: { message: err.message, type: err.type, param: err.param, code: err.code } };
    return this.sendJson(err.status, body, this.dialect === 'ollama' ? OLLAMA_JSON_CONTENT_TYPE : JSON_CONTENT_TYPE);
  }

  private async sendBody(status: number, contentType: string, bytes: Buffer): Promise<void> {
    if (this.gone) return;
    const { res } = this;
    res.writeHead(status, { 'content-type': contentType, 'content-length': bytes.length });
    if (this.interrupt) {
      if (await this.write(bytes.subarray(0, bytes.length >> 1), true)) this.interruptNow();
      return;
    }
    if (this.wire?.splitEveryBytes) {
      if (await this.write(bytes)) res.end();
      return;
    }
    res.end(bytes);
  }

  /** Writes frames as they are produced, honouring backpressure, delays and faults; stops when the client leaves. */
  async stream(contentType: string, frames: Iterable<string>): Promise<void> {
    if (this.gone) return;
    const { res } = this;
    res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-cache' });
    const stopAfter = this.interrupt?.afterChunks;
    const eol = this.wire?.lineEnding ?? '\n';
    const keepAlive = this.wire?.comments && contentType === SSE_CONTENT_TYPE ? `: keep-alive${eol}${eol}` : undefined;
    if (this.chunkDelayMs > 0 || stopAfter === 0) res.flushHeaders();

    let sent = 0;
    for (const frame of frames) {
      if (stopAfter !== undefined && sent >= stopAfter) return this.interruptNow();
      if (sent > 0 && this.chunkDelayMs > 0 && !(await this.sleep(this.chunkDelayMs))) return;
      if (keepAlive !== undefined && !(await this.write(keepAlive))) return;
      // Before an interrupt the frame must reach the socket, or the reset would swallow it.
      if (!(await this.write(frame, stopAfter !== undefined && sent + 1 >= stopAfter))) return;
      sent++;
    }
    if (stopAfter !== undefined) return this.interruptNow();
    if (keepAlive !== undefined && !(await this.write(keepAlive))) return;
    res.end();
  }

  private interruptNow(): void {
    if (this.interrupt?.kind === 'reset_mid_stream') this.reset();
    // stall_mid_stream: leave the connection open and silent until the client or close() ends it.
  }

  /** Resolves false once the client is gone. `flush` waits until the bytes left the process. */
  private async write(data: string | Buffer, flush = false): Promise<boolean> {
    const split = this.wire?.splitEveryBytes;
    if (split !== undefined && split > 0) {
      const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      for (let offset = 0; offset < bytes.length; offset += split) {
        if (!(await this.writeChunk(bytes.subarray(offset, offset + split), flush))) return false;
        // Let the socket uncork so each slice goes out as its own TCP write.
        await new Promise((resolve) => setImmediate(resolve));
      }
      return !this.gone;
    }
    return this.writeChunk(data, flush);
  }

  private writeChunk(data: string | Buffer, flush: boolean): boolean | Promise<boolean> {
    if (this.gone) return false;
    const { res } = this;
    this.written.bytes += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    if (!flush) return res.write(data) || this.drained();
    return new Promise<boolean>((resolve) => {
      const unsubscribe = this.onGone(() => resolve(false));
      res.write(data, (err) => {
        unsubscribe();
        resolve(!err && !this.gone);
      });
    });
  }

  private drained(): Promise<boolean> {
    if (this.gone) return Promise.resolve(false);
    return new Promise((resolve) => {
      const { res } = this;
      const onDrain = (): void => {
        unsubscribe();
        resolve(true);
      };
      const unsubscribe = this.onGone(() => {
        res.off('drain', onDrain);
        resolve(false);
      });
      res.once('drain', onDrain);
    });
  }
}

// ---------- request parsing ----------

/** Resolves null when the body is over the limit (the rest is drained so a 413 can still be sent). */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
    });
    req.on('end', () => resolve(size > limit ? null : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    req.on('error', reject);
    req.on('close', () => {
      if (!req.complete) reject(new Error('client closed the connection during the request body'));
    });
  });
}

function parseBody(raw: Buffer): ParsedBody {
  if (raw.length === 0) return { kind: 'empty' };
  const text = raw.toString('utf8');
  try {
    return { kind: 'json', value: JSON.parse(text) as unknown };
  } catch (err) {
    return { kind: 'invalid', text, reason: err instanceof Error ? err.message : String(err) };
  }
}

function requireObject(body: ParsedBody, dialect: Dialect): Json {
  if (body.kind === 'json' && isRecord(body.value)) return body.value;
  if (dialect === 'ollama') {
    throw new RequestError(400, body.kind === 'invalid' ? `invalid JSON body: ${body.reason}` : 'request body must be a JSON object');
  }
  if (body.kind === 'invalid') {
    throw new RequestError(400, `We could not parse the JSON body of your request (${body.reason}). The API expects a JSON payload.`, 'invalid_json');
  }
  throw new RequestError(400, 'The request body must be a JSON object.', 'invalid_body');
}

function hasBearer(req: http.IncomingMessage, apiKey: string): boolean {
  const header = req.headers.authorization;
  if (!header) return false;
  const space = header.indexOf(' ');
  return space !== -1 && header.slice(0, space).toLowerCase() === 'bearer' && header.slice(space + 1).trim() === apiKey;
}

function optionalPositiveInt(value: unknown, param: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new RequestError(400, `'${param}' must be an integer between 1 and ${max}.`, 'invalid_value', param);
  }
  return value;
}

function ollamaNumPredict(body: Json): number | undefined {
  const value = isRecord(body.options) ? body.options.num_predict : undefined;
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : undefined;
}

/** Prompts and embedding inputs: a string, strings, a token array, or token arrays. Token ids become space-separated text. */
function textInputs(value: unknown): string[] | undefined {
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value) || value.length === 0) return undefined;
  if (value.every(isString)) return value;
  if (value.every(isNumber)) return [value.join(' ')];
  if (value.every((item) => Array.isArray(item) && item.every(isNumber))) return value.map((item: number[]) => item.join(' '));
  return undefined;
}

/** The text of a message's content: a string or an array of parts with `text`. */
function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  const texts: string[] = [];
  for (const part of content) if (isRecord(part) && typeof part.text === 'string') texts.push(part.text);
  return texts.join(' ');
}

function lastUserText(messages: unknown[]): string | undefined {
  for (let index = messages.length - 1; index >= 0; index--) {
    const message = messages[index];
    if (isRecord(message) && message.role === 'user') return textOf(message.content);
  }
  return undefined;
}

// ---------- canned content ----------

interface Reply {
  /** What each streamed chunk carries: words, with the separating space in front. */
  pieces: string[];
  text: string;
  finishReason: 'stop' | 'length';
}

const EXCERPT_MAX_WORDS = 4;
const EXCERPT_MAX_CHARS = 40;
const GREETING = ['Hello', '👋', 'this', 'is', 'the', 'modelgate', 'demo', 'model.'];
const FILLER = 'This canned reply streams one word per chunk so you can watch tokens arrive through the gateway.'.split(' ');

function composeReply(userText: string | undefined, replyWords: number | undefined, maxTokens: number | undefined): Reply {
  const excerpt = excerptOf(userText ?? '');
  const words = excerpt === undefined
    ? [...GREETING, 'Send', 'me', 'a', 'message', 'and', 'I', 'will', 'echo', 'it.']
    : [...GREETING, 'You', 'said:', ...quoted(excerpt)];
  if (replyWords !== undefined) {
    for (let filler = 0; words.length < replyWords; filler++) words.push(FILLER[filler % FILLER.length]!);
    words.length = replyWords;
  }
  let finishReason: Reply['finishReason'] = 'stop';
  if (maxTokens !== undefined && words.length > maxTokens) {
    words.length = maxTokens;
    finishReason = 'length';
  }
  const pieces = words.map((word, index) => (index === 0 ? word : ` ${word}`));
  return { pieces, text: pieces.join(''), finishReason };
}

/** A short, code-point-safe excerpt, so non-ASCII input is echoed intact. */
function excerptOf(text: string): string[] | undefined {
  const words = text.split(/\s+/).filter((word) => word !== '');
  if (words.length === 0) return undefined;
  let excerpt = words.slice(0, EXCERPT_MAX_WORDS).join(' ');
  let truncated = words.length > EXCERPT_MAX_WORDS;
  const codePoints = Array.from(excerpt);
  if (codePoints.length > EXCERPT_MAX_CHARS) {
    excerpt = codePoints.slice(0, EXCERPT_MAX_CHARS).join('').trimEnd();
    truncated = true;
  }
  return (truncated ? `${excerpt}…` : excerpt).split(' ');
}

function quoted(words: string[]): string[] {
  return words.map((word, index) => `${index === 0 ? '"' : ''}${word}${index === words.length - 1 ? '"' : ''}`);
}

function estimateTokens(text: string): number {
  let count = 0;
  for (const word of text.split(/\s+/)) if (word !== '') count++;
  return Math.max(1, count);
}

interface ToolCallPlan {
  id: string;
  name: string;
  arguments: string;
  /** The arguments split the way a model streams them: several short fragments. */
  fragments: string[];
}

/** Calls a tool when tools are offered and the user asks about the weather (or the caller insists via tool_choice). */
function planToolCall(tools: unknown, toolChoice: unknown, userText: string | undefined): ToolCallPlan | undefined {
  if (!Array.isArray(tools) || tools.length === 0 || toolChoice === 'none') return undefined;
  const functions = tools
    .map((tool) => (isRecord(tool) && isRecord(tool.function) ? tool.function : isRecord(tool) && typeof tool.name === 'string' ? tool : undefined))
    .filter((fn): fn is Json => fn !== undefined && typeof fn.name === 'string');
  if (functions.length === 0) return undefined;
  const forcedName = isRecord(toolChoice) && isRecord(toolChoice.function) && typeof toolChoice.function.name === 'string' ? toolChoice.function.name : undefined;
  const asksWeather = /\bweather\b/i.test(userText ?? '');
  if (!asksWeather && forcedName === undefined && toolChoice !== 'required') return undefined;

  const chosen =
    functions.find((fn) => fn.name === forcedName) ??
    functions.find((fn) => /weather/i.test(String(fn.name))) ??
    functions[0]!;
  const args = JSON.stringify(sampleArguments(chosen.parameters, locationIn(userText ?? '')));
  const codePoints = Array.from(args);
  const fragments: string[] = [];
  const fragmentSize = Math.max(1, Math.min(4, Math.ceil(codePoints.length / 3)));
  for (let offset = 0; offset < codePoints.length; offset += fragmentSize) fragments.push(codePoints.slice(offset, offset + fragmentSize).join(''));
  return { id: `call_${randomId()}`, name: String(chosen.name), arguments: args, fragments };
}

function locationIn(text: string): string {
  const match = /\b(?:in|for|at)\s+(\p{Lu}[\p{L}\p{M}'’-]*(?:\s+\p{Lu}[\p{L}\p{M}'’-]*)*)/u.exec(text);
  return match?.[1] ?? 'Paris';
}

/** Fills the tool's JSON schema with plausible values; a location-like field gets the place the user named. */
function sampleArguments(parameters: unknown, location: string): Json {
  const properties = isRecord(parameters) && isRecord(parameters.properties) ? parameters.properties : undefined;
  if (!properties || Object.keys(properties).length === 0) return { location };
  const required = isRecord(parameters) && Array.isArray(parameters.required) ? parameters.required.filter(isString) : [];
  const keys = required.length > 0 ? required : Object.keys(properties);
  const args: Json = {};
  for (const key of keys) args[key] = sampleValue(key, properties[key], location);
  return args;
}

function sampleValue(key: string, schema: unknown, location: string): unknown {
  if (isRecord(schema) && Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  const type = isRecord(schema) ? (Array.isArray(schema.type) ? schema.type[0] : schema.type) : undefined;
  switch (type) {
    case 'number':
    case 'integer':
      return 1;
    case 'boolean':
      return true;
    case 'array':
      return [];
    case 'object':
      return {};
    default:
      return /location|city|place|where/i.test(key) ? location : 'demo';
  }
}

/** A unit-length vector derived from a hash of the text: same input, same vector. */
function embeddingOf(text: string, dimensions: number): Float32Array {
  const values = new Float32Array(dimensions);
  let digest = Buffer.alloc(0);
  let block = 0;
  let offset = digest.length;
  let sumOfSquares = 0;
  for (let index = 0; index < dimensions; index++) {
    if (offset + 2 > digest.length) {
      digest = createHash('sha256').update(`${block++}:${text}`).digest();
      offset = 0;
    }
    const value = digest.readUInt16LE(offset) / 32767.5 - 1;
    offset += 2;
    values[index] = value;
    sumOfSquares += value * value;
  }
  const norm = Math.sqrt(sumOfSquares) || 1;
  for (let index = 0; index < dimensions; index++) values[index] = values[index]! / norm;
  return values;
}

/** Little-endian float32, base64: what OpenAI sends for `encoding_format: 'base64'`. */
function float32Base64(values: Float32Array): string {
  const bytes = Buffer.alloc(values.length * 4);
  for (let index = 0; index < values.length; index++) bytes.writeFloatLE(values[index]!, index * 4);
  return bytes.toString('base64');
}

function ndjson(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}

/** Ollama's timing fields, in nanoseconds, from the real elapsed time (never zero, since clients divide by them). */
function ollamaTimings(ex: Exchange, promptEvalCount: number, evalCount: number) {
  const total = Math.max(3, Number(process.hrtime.bigint() - ex.startedAt));
  const loadDuration = Math.max(1, Math.round(total * 0.1));
  const promptEvalDuration = Math.max(1, Math.round(total * 0.2));
  return {
    total_duration: total,
    load_duration: loadDuration,
    prompt_eval_count: promptEvalCount,
    prompt_eval_duration: promptEvalDuration,
    eval_count: evalCount,
    eval_duration: Math.max(1, total - loadDuration - promptEvalDuration),
  };
}

/** Ollama's answer to an empty prompt: the model is loaded, nothing is generated. */
function ollamaLoaded(ex: Exchange, model: string, emptyOutput: Json, stream: boolean): Promise<void> {
  const line = { model, created_at: new Date().toISOString(), ...emptyOutput, done_reason: 'load', done: true };
  return stream ? ex.stream(NDJSON_CONTENT_TYPE, [ndjson(line)]) : ex.sendJson(200, line, OLLAMA_JSON_CONTENT_TYPE);
}

function injectedErrorBody(status: number): unknown {
  const type = status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error';
  return { error: { message: `Injected fault: the demo model answered HTTP ${status}.`, type, param: null, code: null } };
}

// ---------- small helpers ----------

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isString(value: unknown): value is string {
  return typeof value === 'string';
}

function isNumber(value: unknown): value is number {
  return typeof value === 'number';
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** 32 hex digits; randomUUID draws from a cached entropy pool, so it is cheap per request. */
function randomId(): string {
  return randomUUID().replaceAll('-', '');
}
