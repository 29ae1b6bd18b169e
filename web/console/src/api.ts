// The console's only way to the gateway: its public, documented HTTP APIs.
// The browser session (an HttpOnly cookie) proves who is here; the console
// trades it, with the session's CSRF token, for a short-lived bearer token
// (POST /auth/token) that it keeps in memory and sends on every API call.
// A page on another site has neither, so it cannot act through the console.

export interface Identity {
  subject: string;
  email?: string;
  name?: string;
  groups: string[];
  origin: string;
  method: 'oidc' | 'saml';
}

export interface ApiErrorBody {
  message: string;
  code: string;
  type?: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface Token {
  value: string;
  /** Epoch ms. */
  expiresAt: number;
}

/** Renew a minute before the token runs out. */
const RENEW_MS = 60_000;

let csrfToken: string | undefined;
let token: Token | undefined;
let pending: Promise<Token> | undefined;

async function errorOf(response: Response): Promise<ApiError> {
  let body: { error?: ApiErrorBody } | undefined;
  try {
    body = (await response.json()) as { error?: ApiErrorBody };
  } catch {
    body = undefined;
  }
  return new ApiError(response.status, body?.error?.code ?? `http_${response.status}`, body?.error?.message ?? `${response.status} ${response.statusText}`);
}

/** The signed-in browser session, or undefined when nobody is signed in. */
export async function currentSession(): Promise<Identity | undefined> {
  const response = await fetch('/auth/session', { credentials: 'same-origin', cache: 'no-store' });
  if (response.status === 401) return undefined;
  if (!response.ok) throw await errorOf(response);
  const body = (await response.json()) as { identity: Identity; csrf_token: string };
  csrfToken = body.csrf_token;
  return body.identity;
}

async function mintToken(): Promise<Token> {
  if (!csrfToken) await currentSession();
  const response = await fetch('/auth/token', { method: 'POST', credentials: 'same-origin', headers: { 'x-csrf-token': csrfToken ?? '' } });
  if (!response.ok) throw await errorOf(response);
  const body = (await response.json()) as { access_token: string; expires_in: number };
  return { value: body.access_token, expiresAt: Date.now() + body.expires_in * 1000 };
}

export async function bearer(): Promise<string> {
  if (token && token.expiresAt - Date.now() > RENEW_MS) return token.value;
  pending ??= mintToken().finally(() => (pending = undefined));
  token = await pending;
  return token.value;
}

export async function api<T>(path: string, init: { method?: 'GET' | 'POST'; body?: unknown; signal?: AbortSignal } = {}): Promise<T> {
  const headers: Record<string, string> = { authorization: `Bearer ${await bearer()}` };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, {
    method: init.method ?? 'GET',
    headers,
    cache: 'no-store',
    ...(init.body !== undefined && { body: JSON.stringify(init.body) }),
    ...(init.signal && { signal: init.signal }),
  });
  if (!response.ok) throw await errorOf(response);
  return (await response.json()) as T;
}

export async function signOut(): Promise<void> {
  if (!csrfToken) await currentSession();
  await fetch('/auth/logout', { method: 'POST', credentials: 'same-origin', headers: { 'x-csrf-token': csrfToken ?? '' } });
  token = undefined;
  csrfToken = undefined;
}

/**
 * Follows a server-sent event stream with the bearer token (EventSource
 * cannot send one), reconnecting with backoff. Calls `onEvent` with each
 * event's name and parsed data; returns a function that stops it.
 */
export function follow(path: string, onEvent: (event: string, data: unknown) => void, onState?: (live: boolean) => void): () => void {
  const stop = new AbortController();
  void (async () => {
    let delay = 1_000;
    while (!stop.signal.aborted) {
      try {
        const response = await fetch(path, { headers: { authorization: `Bearer ${await bearer()}`, accept: 'text/event-stream' }, signal: stop.signal, cache: 'no-store' });
        if (!response.ok || !response.body) throw await errorOf(response);
        onState?.(true);
        delay = 1_000;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffered = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffered += value;
          let end: number;
          while ((end = buffered.indexOf('\n\n')) >= 0) {
            const block = buffered.slice(0, end);
            buffered = buffered.slice(end + 2);
            let name = 'message';
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) name = line.slice(6).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
            }
            if (data.length > 0) {
              try {
                onEvent(name, JSON.parse(data.join('\n')));
              } catch {
                // A malformed event is skipped; the next list refresh shows the truth anyway.
              }
            }
          }
        }
      } catch {
        if (stop.signal.aborted) return;
      }
      onState?.(false);
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 30_000);
    }
  })();
  return () => stop.abort();
}
