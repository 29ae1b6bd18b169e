// Reading recorded content as text: the prompt of a request body, the words
// of a streamed chunk, every string of a body (for search), and rewriting
// those strings (for redaction by pattern) without breaking the JSON or the
// SSE/NDJSON framing around them.

/**
 * A batch of chunk texts as stored: each framed as `<length>\n<text>`
 * (length in UTF-16 units). No escaping to pay for, unlike JSON, and still
 * self-describing after a redaction rewrites the texts.
 */
export function frameChunks(texts: readonly string[]): string {
  let out = '';
  for (const text of texts) out += `${text.length}\n${text}`;
  return out;
}

export function unframeChunks(content: string): string[] {
  const texts: string[] = [];
  for (let at = 0; at < content.length; ) {
    const newline = content.indexOf('\n', at);
    const length = Number(content.slice(at, newline));
    if (newline < 0 || !Number.isInteger(length) || length < 0) throw new SyntaxError('malformed chunk framing');
    texts.push(content.slice(newline + 1, newline + 1 + length));
    at = newline + 1 + length;
  }
  return texts;
}

export interface PromptTurn {
  role: string;
  text: string;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function partsText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((p) => (typeof p === 'string' ? p : typeof (p as { text?: unknown })?.text === 'string' ? (p as { text: string }).text : ''))
      .filter(Boolean)
      .join('\n');
  }
  return '';
}

/** The conversation a request body sends: chat messages, a prompt, or a Responses `input`. */
export function promptOf(body: unknown): PromptTurn[] {
  if (typeof body !== 'object' || body === null) return typeof body === 'string' && body ? [{ role: 'user', text: body }] : [];
  const b = body as Record<string, unknown>;
  const turns: PromptTurn[] = [];
  if (typeof b.instructions === 'string') turns.push({ role: 'system', text: b.instructions });
  if (typeof b.system === 'string') turns.push({ role: 'system', text: b.system });
  if (Array.isArray(b.messages)) {
    for (const m of b.messages as Array<Record<string, unknown>>) turns.push({ role: String(m?.role ?? 'user'), text: partsText(m?.content) });
  }
  if (typeof b.prompt === 'string') turns.push({ role: 'user', text: b.prompt });
  else if (Array.isArray(b.prompt)) turns.push({ role: 'user', text: b.prompt.filter((p) => typeof p === 'string').join('\n') });
  if (typeof b.input === 'string') turns.push({ role: 'user', text: b.input });
  else if (Array.isArray(b.input)) {
    for (const item of b.input as unknown[]) {
      if (typeof item === 'string') turns.push({ role: 'user', text: item });
      else if (item && typeof item === 'object') turns.push({ role: String((item as { role?: unknown }).role ?? 'user'), text: partsText((item as { content?: unknown }).content) });
    }
  }
  return turns;
}

/**
 * Generated text in one parsed response object (a stream chunk or a whole
 * body), in any supported dialect. `chunkText` of a delivered frame is this
 * of its parsed payload, so a caller that parsed the frame already passes
 * that (`SessionWriter.chunk`'s `answer`) instead of parsing it again.
 */
export function generatedText(o: unknown): string {
  if (typeof o !== 'object' || o === null) return '';
  const r = o as Record<string, unknown>;
  if (Array.isArray(r.choices)) {
    // A loop, not map and join: this runs for every streamed frame recorded.
    let text = '';
    for (const c of r.choices as Array<Record<string, unknown>>) {
      const delta = c?.delta as Record<string, unknown> | undefined;
      const message = c?.message as Record<string, unknown> | undefined;
      const words = delta?.content ?? message?.content ?? c?.text;
      if (typeof words === 'string') text += words;
    }
    return text;
  }
  if (r.type === 'response.output_text.delta' && typeof r.delta === 'string') return r.delta;
  if (r.object === 'response' && Array.isArray(r.output)) {
    return (r.output as Array<{ content?: Array<{ type?: string; text?: string }> }>)
      .flatMap((item) => item?.content ?? [])
      .map((c) => (c?.type === 'output_text' && typeof c.text === 'string' ? c.text : ''))
      .join('');
  }
  const message = r.message as { content?: unknown } | undefined;
  if (typeof message?.content === 'string') return message.content;
  if (typeof r.response === 'string') return r.response;
  return '';
}

/**
 * The words a delivered chunk adds: from a whole JSON body, or SSE events
 * (their `data:` lines), or NDJSON lines; a chunk may hold several events or
 * lines (all the frames one upstream read completed).
 */
export function chunkText(raw: string): string {
  const trimmed = raw.trim();
  if (trimmed.startsWith('{')) {
    const whole = parseJson(trimmed);
    if (whole !== undefined) return generatedText(whole);
  }
  const lines = raw.split(/\r?\n/);
  let text = '';
  if (lines.some(isSseField)) {
    for (const line of lines) {
      if (!line.startsWith('data:')) continue;
      const payload = line.slice(5).trim();
      if (payload && payload !== '[DONE]') text += generatedText(parseJson(payload));
    }
    return text;
  }
  for (const line of lines) {
    const json = line.trim();
    if (json.startsWith('{')) text += generatedText(parseJson(json));
  }
  return text;
}

/** An SSE field line (or comment); never the start of an NDJSON line. */
function isSseField(line: string): boolean {
  return line.startsWith('data:') || line.startsWith(':') || line.startsWith('event:') || line.startsWith('id:') || line.startsWith('retry:');
}

/** Every string value of a JSON document (or the text itself), for search. */
export function stringsOf(text: string): string {
  const parsed = parseJson(text);
  return parsed === undefined ? text : stringsOfValue(parsed);
}

/** Every string value of a parsed JSON value, in document order. */
export function stringsOfValue(parsed: unknown): string {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(parsed);
  return out.join('\n');
}

export interface Pattern {
  /** A global pattern; RE2 when installed, so a user's pattern cannot backtrack forever. */
  replace(text: string, replacement: string): string;
}

export const REDACTED = '[redacted]';

function rewriteJson(value: unknown, pattern: Pattern): unknown {
  if (typeof value === 'string') return pattern.replace(value, REDACTED);
  if (Array.isArray(value)) return value.map((v) => rewriteJson(v, pattern));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rewriteJson(v, pattern)]));
  return value;
}

/** Redacts inside a JSON document's strings (keeping it valid JSON), or in plain text. */
export function redactDocument(text: string, pattern: Pattern): string {
  const parsed = parseJson(text);
  if (parsed === undefined) return pattern.replace(text, REDACTED);
  return JSON.stringify(rewriteJson(parsed, pattern));
}

/** Redacts inside a delivered chunk, keeping its SSE or NDJSON framing intact. */
export function redactChunk(raw: string, pattern: Pattern): string {
  if (raw.trim().startsWith('{')) {
    const trailing = /\s*$/.exec(raw)![0];
    const body = raw.trimEnd();
    if (!body.includes('\n') || parseJson(body) !== undefined) return redactDocument(body, pattern) + trailing;
    // NDJSON: a recorded chunk holds every line one upstream read completed, each a document of its own.
    return raw
      .split(/(\r?\n)/)
      .map((line) => (line.trim() === '' ? line : redactDocument(line, pattern)))
      .join('');
  }
  return raw
    .split(/(\r?\n)/)
    .map((line) => {
      if (!line.startsWith('data:')) return line;
      const payload = line.slice(5).trim();
      const parsed = payload.startsWith('{') || payload.startsWith('[') ? parseJson(payload) : undefined;
      return parsed === undefined ? pattern.replace(line, REDACTED) : `data: ${JSON.stringify(rewriteJson(parsed, pattern))}`;
    })
    .join('');
}

/** Compiles a user-supplied pattern with RE2 when available (linear time), else RegExp. */
export async function compilePattern(source: string, flags = 'i'): Promise<Pattern> {
  const global = flags.includes('g') ? flags : `${flags}g`;
  let re: RegExp;
  try {
    const { default: RE2 } = await import('re2');
    re = new RE2(source, `${global}u`) as unknown as RegExp;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw new SyntaxError(`invalid pattern: ${(err as Error).message}`);
    re = new RegExp(source, `${global}u`);
  }
  return { replace: (text, replacement) => text.replace(re, replacement) };
}
