// Preloaded into the Portkey process only. @portkey-ai/gateway 1.15.2 with
// @hono/node-server > 1.14.2 (1.19 is what npm installs) fails every streamed
// chat completion with "TypeError: immutable": it appends x-portkey-* headers
// to a Response built over the upstream fetch() Response's immutable Headers
// (Portkey-AI/gateway#1389, #1550). Giving streamed upstream responses
// mutable headers is the smallest change that lets Portkey stream at all;
// non-streamed responses are left untouched, so that path runs unmodified.
const nativeFetch = globalThis.fetch;

globalThis.fetch = async function fetchWithMutableStreamHeaders(...args) {
  const response = await nativeFetch(...args);
  if (!response.headers.get('content-type')?.startsWith('text/event-stream')) return response;
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers: new Headers(response.headers) });
};
