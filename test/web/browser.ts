// A minimal browser for the gateway's sign-in routes: manual redirects and
// a cookie jar keyed by name, enough to see exactly which cookies and
// headers each step sends.
export class TestBrowser {
  readonly cookies = new Map<string, string>();
  /** Raw Set-Cookie headers seen, for attribute checks. */
  readonly setCookies: string[] = [];

  async get(url: string | URL, headers: Record<string, string> = {}): Promise<Response> {
    return this.send(url, { method: 'GET', headers });
  }

  async post(url: string | URL, body: URLSearchParams | undefined, headers: Record<string, string> = {}): Promise<Response> {
    return this.send(url, { method: 'POST', headers, ...(body ? { body } : {}) });
  }

  private async send(url: string | URL, init: { method: string; headers: Record<string, string>; body?: URLSearchParams }): Promise<Response> {
    const cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    const response = await fetch(url, {
      method: init.method,
      headers: { ...(cookie ? { cookie } : {}), ...init.headers },
      ...(init.body ? { body: init.body } : {}),
      redirect: 'manual',
    });
    for (const header of response.headers.getSetCookie()) {
      this.setCookies.push(header);
      const [pair = ''] = header.split(';');
      const separator = pair.indexOf('=');
      const name = pair.slice(0, separator);
      const value = pair.slice(separator + 1);
      if (/Max-Age=0/i.test(header)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return response;
  }
}
