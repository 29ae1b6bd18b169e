// Request parameters that ask the model server for the answer in a form
// output masking cannot reach: token ids (vLLM's `return_token_ids`) and
// log probabilities, which spell the raw text out token by token. When
// output rules apply they are stripped before forwarding (and the response
// fields they would produce are removed anyway, see output-shapes.ts).
// The one place that lists them.

/** Top-level parameters, any dialect: OpenAI, vLLM, Ollama. */
const BYPASS_PARAMS = ['logprobs', 'top_logprobs', 'prompt_logprobs', 'return_token_ids', 'return_tokens_as_token_ids'] as const;

/** Responses API `include` entries that add log probabilities (`message.output_text.logprobs`). */
const isBypassInclude = (entry: unknown): boolean => typeof entry === 'string' && entry.includes('logprobs');

/**
 * `body` without the bypass parameters, and their names; the same object
 * when there were none.
 */
export function stripOutputBypassParams(body: Record<string, unknown>): { body: Record<string, unknown>; stripped: string[] } {
  const stripped: string[] = [];
  const copy: Record<string, unknown> = { ...body };
  for (const name of BYPASS_PARAMS) {
    if (name in copy) {
      delete copy[name];
      stripped.push(name);
    }
  }
  if (Array.isArray(copy.include) && copy.include.some(isBypassInclude)) {
    copy.include = copy.include.filter((entry) => !isBypassInclude(entry));
    stripped.push('include[logprobs]');
  }
  return stripped.length === 0 ? { body, stripped } : { body: copy, stripped };
}
