// The console shell: sign-in state, navigation, and the page for the URL.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, currentSession, signOut, type Identity } from './api';
import { Link } from './link';
import { PolicyPage } from './pages/policy';
import { ReviewPage, ReviewsPage } from './pages/reviews';
import { SessionPage } from './pages/session';
import { SessionsPage } from './pages/sessions';
import { UsagePage } from './pages/usage';
import { BASE, useLocation } from './router';
import { person } from './text';

const PAGES = [
  { path: '/reviews', label: 'Reviews' },
  { path: '/sessions', label: 'Sessions' },
  { path: '/usage', label: 'Usage' },
  { path: '/policy', label: 'Policy' },
] as const;

export function App() {
  const [me, setMe] = useState<Identity | null | undefined>(undefined);
  const [failure, setFailure] = useState<string>();
  const { path } = useLocation();
  const main = useRef<HTMLElement>(null);

  useEffect(() => {
    currentSession().then(
      (identity) => setMe(identity ?? null),
      (err: unknown) => setFailure(err instanceof ApiError ? err.message : String(err)),
    );
  }, []);

  // Move focus to the new page's heading, so keyboard and screen-reader users know the page changed.
  useEffect(() => {
    main.current?.querySelector<HTMLElement>('h1')?.focus();
  }, [path, me]);

  if (failure) return <Shell><p role="alert">The gateway did not answer: {failure}</p></Shell>;
  if (me === undefined) return <Shell><p aria-busy="true">Loading…</p></Shell>;
  if (me === null) return <SignIn />;

  const section = `/${path.split('/')[1] ?? ''}`;
  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <span class="brand">modelgate</span>
        <nav aria-label="Console">
          <ul>
            {PAGES.map((p) => (
              <li key={p.path}>
                <Link to={p.path} current={section === p.path || (section === '/' && p.path === '/reviews')}>
                  {p.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span title={me.groups.join(', ')}>{person(me)}</span>
          <button type="button" class="quiet" onClick={() => void signOut().then(() => location.assign(`${BASE}/`))}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" ref={main}>
        <Page path={path} me={me} />
      </main>
    </>
  );
}

function Page({ path, me }: { path: string; me: Identity }) {
  const [, section, id] = path.split('/');
  switch (section) {
    case '':
    case 'reviews':
      return id ? <ReviewPage id={decodeURIComponent(id)} me={me} /> : <ReviewsPage me={me} />;
    case 'sessions':
      return id ? <SessionPage id={decodeURIComponent(id)} /> : <SessionsPage />;
    case 'usage':
      return <UsagePage />;
    case 'policy':
      return <PolicyPage />;
    default:
      return (
        <section>
          <h1 tabIndex={-1}>Not found</h1>
          <p>
            There is no console page here. <Link to="/reviews">Open the reviews inbox.</Link>
          </p>
        </section>
      );
  }
}

function Shell({ children }: { children: preact.ComponentChildren }) {
  return (
    <main id="main" class="narrow">
      <h1 tabIndex={-1}>modelgate console</h1>
      {children}
    </main>
  );
}

/** The sign-in methods this gateway offers, from its discovery document. */
function SignIn() {
  const back = encodeURIComponent(location.pathname + location.search);
  const [logins, setLogins] = useState<{ oidc?: string; saml?: string }>();
  useEffect(() => {
    fetch('/.well-known/modelgate')
      .then((r) => r.json() as Promise<{ web_login?: { oidc?: string; saml?: string } }>)
      .then((d) => setLogins(d.web_login ?? {}), () => setLogins({}));
  }, []);
  const path = (url: string) => new URL(url, location.href).pathname;
  return (
    <Shell>
      <p>Sign in with your organisation's identity provider to review requests, replay sessions and test policies.</p>
      {logins === undefined ? (
        <p aria-busy="true">Loading…</p>
      ) : !logins.oidc && !logins.saml ? (
        <p role="alert">This gateway has no browser sign-in configured (identity.web.oidc or identity.web.saml).</p>
      ) : (
        <p class="actions">
          {logins.oidc && (
            <a class="button" href={`${path(logins.oidc)}?return_to=${back}`}>
              Sign in with OpenID Connect
            </a>
          )}
          {logins.saml && (
            <a class="button" href={`${path(logins.saml)}?return_to=${back}`}>
              Sign in with SAML
            </a>
          )}
        </p>
      )}
    </Shell>
  );
}
