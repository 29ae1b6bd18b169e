// The one internal shape every inbound dialect is parsed into, so that later
// stages (access, guardrails, approvals, recording) see messages, tool calls
// and parameters instead of bytes.

/** Which wire protocol the client spoke. */
export type Dialect = 'openai' | 'ollama';

/** The API operation, independent of URL spelling. */
export type Operation =
  | 'chat' // POST /v1/chat/completions
  | 'completion' // POST /v1/completions
  | 'embedding' // POST /v1/embeddings
  | 'response' // POST /v1/responses
  | 'ollama_chat' // POST /api/chat
  | 'ollama_generate' // POST /api/generate
  | 'ollama_embed'; // POST /api/embed, and the older /api/embeddings

/** How a streamed response is framed on the wire. */
export type StreamFraming = 'sse' | 'ndjson';

/**
 * A piece of caller-supplied text that guardrails inspect and may rewrite.
 * `path` locates it inside the original JSON body, so a rewrite can be
 * applied back without re-deriving the body.
 */
export interface TextField {
  path: ReadonlyArray<string | number>;
  /** Where the text sits: a message, a prompt, or any other request parameter (tools, schemas, extras). */
  kind: 'content' | 'tool_arguments' | 'prompt' | 'input' | 'instructions' | 'system' | 'parameter';
  /**
   * The role of the message the text belongs to; `system` for system text
   * outside messages (instructions, Ollama's system and template). Absent for
   * other parameters, which every input rule inspects whatever its `roles`.
   */
  role?: string;
  /**
   * `json`: the value at `path` is an object or array whose keys reach the
   * model as well (a JSON schema, metadata, Ollama tool arguments); `text` is
   * its JSON, and a rewrite parses the masked JSON back.
   */
  encoding?: 'json';
  text: string;
}

export interface ToolCall {
  id?: string;
  name: string;
  /** JSON-encoded arguments exactly as sent. */
  arguments: string;
}

export interface Message {
  role: string;
  /** Text parts in order; non-text parts (images, audio) are counted, not copied. */
  text: string[];
  nonTextParts: number;
  toolCalls: ToolCall[];
  name?: string;
  toolCallId?: string;
}

export interface ModelRequest {
  dialect: Dialect;
  operation: Operation;
  /** The model name as the client sent it (may be an alias). */
  model: string;
  stream: boolean;
  /** How the response stream will be framed when `stream` is true. */
  framing: StreamFraming;
  /** Conversation turns (chat, responses, ollama chat). Empty for other operations. */
  messages: Message[];
  /** Every inspectable text in body order: message contents, tool arguments, prompts, inputs. */
  fields: TextField[];
  /** Tool (function) definitions offered to the model, as sent. */
  tools: unknown[];
  /**
   * Values that reach the model but cannot be read as text: token IDs
   * (`prompt: [1, 2]`, Ollama `context`) and prompt embeddings. Refused when
   * any input rule applies, since nothing could inspect them.
   */
  uninspectable: ReadonlyArray<ReadonlyArray<string | number>>;
  /** Top-level keys the operation does not document: inspected as text, or dropped by the connection's `unknown_fields`. */
  unknownParams: readonly string[];
  /** All remaining top-level parameters (temperature, max_tokens, options, ...). */
  params: Record<string, unknown>;
  /** The parsed body, untouched. Forwarding serialises a copy of it. */
  body: Record<string, unknown>;
}
