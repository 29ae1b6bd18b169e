// HTML pages of the development IdP. Self-contained (no external fonts or
// scripts), so they work offline. Every failure message sits in an element
// with class "error", which the scripted browser reads back.

export function escapeHtml(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const STYLE = `
  body { font-family: system-ui, sans-serif; background: #f4f5f7; color: #1f2328; margin: 0; padding: 48px 16px; }
  main { max-width: 380px; margin: 0 auto; background: #fff; border-radius: 8px; padding: 28px 32px; box-shadow: 0 1px 3px rgba(0,0,0,.15); }
  h1 { font-size: 1.35rem; margin: 0 0 4px; }
  .badge { display: inline-block; font-size: .75rem; background: #fff3cd; color: #6b4e00; border-radius: 4px; padding: 2px 6px; margin-bottom: 16px; }
  label { display: block; font-size: .85rem; margin: 12px 0 4px; }
  input[type=text], input[type=password] { width: 100%; box-sizing: border-box; padding: 8px 10px; font-size: 1rem; border: 1px solid #c9ced6; border-radius: 4px; }
  button { margin-top: 18px; width: 100%; padding: 9px; font-size: 1rem; border: 0; border-radius: 4px; background: #2f6feb; color: #fff; cursor: pointer; }
  button.secondary { background: none; color: #57606a; margin-top: 8px; }
  .error { color: #b42318; background: #fef3f2; border-radius: 4px; padding: 8px 10px; }
  table { width: 100%; border-collapse: collapse; font-size: .85rem; margin-top: 8px; }
  td, th { text-align: left; padding: 4px 6px; border-top: 1px solid #eaecef; }
  code { font-size: 1.6rem; letter-spacing: .1em; }
  .hint { font-size: .8rem; color: #57606a; }
`;

export function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${escapeHtml(title)} · modelgate dev IdP</title>
  <style>${STYLE}</style>
</head>
<body>
  <main>
    <h1>${escapeHtml(title)}</h1>
    <span class="badge">Development identity provider: never use in production</span>
    ${body}
  </main>
</body>
</html>`;
}

function errorBlock(message: string | undefined): string {
  return message ? `<p class="error" role="alert">${escapeHtml(message)}</p>` : '';
}

export interface LoginPageUser {
  id: string;
  groups: readonly string[];
}

export function loginPage(options: {
  action: string;
  clientLabel: string;
  users: readonly LoginPageUser[];
  username?: string;
  error?: string;
}): string {
  const rows = options.users
    .map((user) => `<tr><td>${escapeHtml(user.id)}</td><td>${escapeHtml(user.id)}-password</td><td>${escapeHtml(user.groups.join(', ') || '(none)')}</td></tr>`)
    .join('');
  return page(
    'Sign in',
    `<p>to continue to <strong>${escapeHtml(options.clientLabel)}</strong></p>
    ${errorBlock(options.error)}
    <form method="post" action="${escapeHtml(options.action)}" autocomplete="off">
      <label for="username">Username</label>
      <input id="username" type="text" name="username" value="${escapeHtml(options.username ?? '')}" required autofocus>
      <label for="password">Password</label>
      <input id="password" type="password" name="password" required>
      <button type="submit">Sign in</button>
    </form>
    <p class="hint">Demo accounts (password is <em>&lt;user&gt;-password</em>):</p>
    <table><tr><th>User</th><th>Password</th><th>Groups</th></tr>${rows}</table>`,
  );
}

export function errorPage(message: string, detail?: string): string {
  return page('Sign-in problem', `${errorBlock(message)}${detail ? `<p class="hint">${escapeHtml(detail)}</p>` : ''}`);
}

/** `form` is oidc-provider's own form markup (it carries the CSRF token). */
export function deviceCodeInputPage(form: string, error?: string): string {
  return page(
    'Connect a device',
    `${errorBlock(error)}<p>Enter the code shown on your device.</p>
    ${form}
    <button type="submit" form="op.deviceInputForm">Continue</button>`,
  );
}

export function deviceConfirmPage(form: string, clientLabel: string, userCode: string): string {
  return page(
    'Confirm device',
    `<p><strong>${escapeHtml(clientLabel)}</strong> asks to sign in. Check that your device shows this code:</p>
    <p><code>${escapeHtml(userCode)}</code></p>
    ${form}
    <button type="submit" form="op.deviceConfirmForm">Continue</button>
    <button type="submit" form="op.deviceConfirmForm" name="abort" value="yes" class="secondary">Cancel</button>`,
  );
}

export function deviceSuccessPage(clientLabel: string): string {
  return page('Device connected', `<p>You are signed in to <strong>${escapeHtml(clientLabel)}</strong>. You can close this page.</p>`);
}

export function logoutPage(form: string, host: string): string {
  return page(
    'Sign out',
    `<p>Sign out of ${escapeHtml(host)}?</p>
    ${form}
    <button type="submit" form="op.logoutForm" name="logout" value="yes">Sign out</button>
    <button type="submit" form="op.logoutForm" class="secondary">Stay signed in</button>`,
  );
}

export function logoutSuccessPage(): string {
  return page('Signed out', '<p>You have been signed out.</p>');
}
