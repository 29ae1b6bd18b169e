// A scripted browser for the development IdP: plain fetch with manual
// redirects and a small cookie jar. It follows the IdP's redirects, signs in
// on the login form, submits the IdP's own hidden-field forms (form_post
// pages, device confirmation) and stops when the IdP hands the browser back
// to a client, or shows a page with nothing left to submit.

export interface SignInCredentials {
  username: string;
  password: string;
}

export type BrowseOutcome =
  /** The IdP redirected away from itself, usually to a client's redirect_uri. */
  | { kind: 'redirected'; location: URL }
  /** The IdP showed a final page (e.g. "device connected"). */
  | { kind: 'page'; url: URL; html: string };

const MAX_STEPS = 25;

export class ScriptedBrowser {
  private readonly cookies = new CookieJar();

  constructor(
    private readonly issuerOrigin: string,
    private readonly credentials: SignInCredentials,
  ) {}

  async browse(start: URL): Promise<BrowseOutcome> {
    let url = start;
    let response = await this.send(url);
    let signedIn = false;
    for (let step = 0; step < MAX_STEPS; step++) {
      if (response.status >= 300 && response.status < 400) {
        const location = response.headers.get('location');
        if (!location) throw new Error(`dev IdP answered ${response.status} without a Location at ${url.pathname}`);
        url = new URL(location, url);
        if (url.origin !== this.issuerOrigin) return { kind: 'redirected', location: url };
        response = await this.send(url);
        continue;
      }
      const html = await response.text();
      if (!response.ok) {
        throw new Error(`dev IdP sign-in failed (HTTP ${response.status}): ${errorMessageIn(html)}`);
      }
      const form = firstForm(html, url);
      if (!form) return { kind: 'page', url, html };
      if (form.inputNames.has('password')) {
        // A second login form after signing in means the IdP rejected us without an error status.
        if (signedIn) throw new Error(`dev IdP asked to sign in twice: ${errorMessageIn(html)}`);
        signedIn = true;
        form.fields.set('username', this.credentials.username);
        form.fields.set('password', this.credentials.password);
      } else if (!form.onlyHiddenInputs) {
        return { kind: 'page', url, html };
      }
      if (form.action.origin !== this.issuerOrigin) {
        throw new Error(`dev IdP page posts a form to ${form.action.origin}; the scripted browser only follows the IdP's own forms (use response_mode=query)`);
      }
      url = form.action;
      response = await this.send(url, new URLSearchParams([...form.fields]));
    }
    throw new Error(`dev IdP sign-in did not finish within ${MAX_STEPS} steps (last at ${url.pathname})`);
  }

  private async send(url: URL, form?: URLSearchParams): Promise<Response> {
    const headers: Record<string, string> = { accept: 'text/html' };
    const cookie = this.cookies.headerFor(url);
    if (cookie) headers.cookie = cookie;
    const response = await fetch(url, {
      method: form ? 'POST' : 'GET',
      headers,
      body: form,
      redirect: 'manual',
    });
    this.cookies.store(url, response.headers.getSetCookie());
    return response;
  }
}

interface StoredCookie {
  name: string;
  value: string;
  path: string;
}

/** Host-only cookies for a single origin, honouring Path, Max-Age and Expires (RFC 6265). */
class CookieJar {
  private readonly cookies = new Map<string, StoredCookie>();

  store(url: URL, setCookieHeaders: string[]): void {
    for (const header of setCookieHeaders) {
      const [pair = '', ...attributes] = header.split(';');
      const separator = pair.indexOf('=');
      if (separator <= 0) continue;
      const name = pair.slice(0, separator).trim();
      const value = pair.slice(separator + 1).trim();
      let path = defaultCookiePath(url);
      let expired = false;
      for (const attribute of attributes) {
        const [rawKey = '', ...rest] = attribute.split('=');
        const key = rawKey.trim().toLowerCase();
        const attributeValue = rest.join('=').trim();
        if (key === 'path' && attributeValue.startsWith('/')) path = attributeValue;
        if (key === 'max-age' && Number(attributeValue) <= 0) expired = true;
        if (key === 'expires' && Date.parse(attributeValue) <= Date.now()) expired = true;
      }
      const id = `${path}\n${name}`;
      if (expired) this.cookies.delete(id);
      else this.cookies.set(id, { name, value, path });
    }
  }

  headerFor(url: URL): string {
    return [...this.cookies.values()]
      .filter((cookie) => pathMatches(url.pathname, cookie.path))
      .map((cookie) => `${cookie.name}=${cookie.value}`)
      .join('; ');
  }
}

function defaultCookiePath(url: URL): string {
  const lastSlash = url.pathname.lastIndexOf('/');
  return lastSlash <= 0 ? '/' : url.pathname.slice(0, lastSlash);
}

function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}

interface ParsedForm {
  action: URL;
  /** Submitted fields: hidden inputs with their values, other inputs empty. */
  fields: Map<string, string>;
  inputNames: Set<string>;
  onlyHiddenInputs: boolean;
}

/** Reads the first <form> of a page; enough for the IdP's own, known markup. */
function firstForm(html: string, pageUrl: URL): ParsedForm | undefined {
  const match = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  if (!match) return undefined;
  const formAttributes = parseAttributes(match[1] ?? '');
  const action = new URL(formAttributes.get('action') ?? pageUrl.href, pageUrl);
  const fields = new Map<string, string>();
  const inputNames = new Set<string>();
  let onlyHiddenInputs = true;
  for (const input of (match[2] ?? '').matchAll(/<input\b([^>]*)>/gi)) {
    const attributes = parseAttributes(input[1] ?? '');
    const name = attributes.get('name');
    if (!name) continue;
    inputNames.add(name);
    const hidden = attributes.get('type')?.toLowerCase() === 'hidden';
    if (!hidden) onlyHiddenInputs = false;
    fields.set(name, hidden ? (attributes.get('value') ?? '') : '');
  }
  return { action, fields, inputNames, onlyHiddenInputs };
}

function parseAttributes(source: string): Map<string, string> {
  const attributes = new Map<string, string>();
  for (const match of source.matchAll(/([\w:-]+)(?:\s*=\s*"([^"]*)")?/g)) {
    const name = match[1];
    if (name) attributes.set(name.toLowerCase(), decodeEntities(match[2] ?? ''));
  }
  return attributes;
}

function decodeEntities(value: string): string {
  return value
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** The page's error text: our pages mark it with class="error"; otherwise the title. */
function errorMessageIn(html: string): string {
  const marked = /<p class="error"[^>]*>([\s\S]*?)<\/p>/i.exec(html)?.[1];
  if (marked) return decodeEntities(marked.replace(/<[^>]+>/g, '').trim());
  const title = /<title>([\s\S]*?)<\/title>/i.exec(html)?.[1];
  return title ? decodeEntities(title.trim()) : html.slice(0, 200);
}
