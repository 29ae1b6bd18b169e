// Secrets without a vendor prefix, recognised by what names them:
//  - assignments to a secret-like key (`password=`, `"client_secret": "..."`,
//    `API_KEY: ...`), kept only when the value looks random (entropy, mixed
//    character classes) and is not a placeholder or a reference to one;
//  - `Authorization:` header credentials;
//  - passwords in URLs (`scheme://user:password@host`).
// Low-entropy values such as `password=changeme` are not reported: the
// detector flags leaked credentials, not the word "password".
//
// The search starts from each ':' or '=' and looks back for a key name,
// because a pattern that starts with the key name tries every letter of prose.
import { clampConfidence, forEachMatch, NON_WHITESPACE, type Detector, type ReportSpan } from '../detector.js';
import { characterClassCount, shannonEntropy } from '../text.js';
import { looksLikePlaceholder } from './token-rule.js';

export const MAX_GENERIC_SECRET_LENGTH = 200;
export const MIN_GENERIC_ENTROPY = 3;

const MAX_KEY_NAME = 56;
// Names that describe a secret rather than hold one (`token_endpoint`, `password_hash`, `maxTokens`).
const METADATA_KEY = /(?:passw(?:or)?d|pwd|secret|key|token|credential)s?[_.-]?(?:url|uri|endpoint|type|method|count|length|len|limit|max|min|expiry|expires|expiration|ttl|path|file|name|id|header|format|field|param|policy|prefix|hash|hint|rotation|version|size|timeout|usage|store|provider|manager|reset|strength|rule)/;
// Run at the start of a key name: the name contains one of these words.
const SECRET_KEY_NAME = /[A-Za-z0-9_.-]*?(?:passw(?:or)?d|passwd|pwd|passphrase|secret|api[_-]?key|apikey|access[_-]?key|auth[_-]?token|access[_-]?token|refresh[_-]?token|bearer[_-]?token|private[_-]?key|signing[_-]?key|encryption[_-]?key|token|credentials?)/iy;
// Quoted values run to their quote; bare values stop at brackets too (`?token=abc)](https://...`).
const VALUE_AFTER_OPERATOR = /\s*(?:(?<quote>["'`])(?<quoted>[^\s"'`]{8,200})\k<quote>|(?<bare>[^\s"'`,;()[\]{}<>]{8,200}))/dy;
const AUTHORIZATION_NAME = /authorization/gi;
const AUTHORIZATION = /(?<![A-Za-z0-9])authorization["']?\s*[:=]\s*["']?(?:Bearer|Basic|Token|Bot)\s+(?<secret>[A-Za-z0-9._~+/=-]{16,200})(?![A-Za-z0-9._~+/=-])/dyi;
const URL_USERINFO = /\/\/[^\s:@/]{1,64}:(?<secret>[^\s:@/]{3,128})@[A-Za-z0-9.-]/dy;

// References and stand-ins, not values.
const NOT_A_VALUE = /^(?:\$\{?[\w.:-]+\}?|\*+|\.{3,}|null|none|nil|true|false|undefined|todo|tbd|required|optional|string|str|bytes|number|int)$|^(?:process\.env|os\.environ|os\.getenv|env\(|getenv|secrets?\.|vault:|ssm:|arn:|enc\[|file:|\$\(|\$\{|\{\{|<|%)/i;
// Stand-in passwords in documentation URLs (`postgres://user:secret@host`).
const STAND_IN_PASSWORD = /^(?:some|my|your|the|db|user|auth|admin)?[_-]?(?:secret|password|passwd|pass|pwd|changeme)\d*$/i;

function plausibleSecret(value: string, quoted: boolean): boolean {
  if (NOT_A_VALUE.test(value) || looksLikePlaceholder(value)) return false;
  // Unquoted words are variable names and types in code (`password = new_password`); quoted snake_case words are enum values.
  if (!quoted && /^[A-Za-z_][A-Za-z_.]*$/.test(value)) return false;
  if (quoted && /^[a-z]+(?:_[a-z]+)+$/.test(value)) return false;
  return shannonEntropy(value) >= MIN_GENERIC_ENTROPY && characterClassCount(value) >= 2;
}

function isKeyNameChar(code: number): boolean {
  return (code >= 97 && code <= 122) || (code >= 65 && code <= 90) || (code >= 48 && code <= 57) || code === 95 || code === 46 || code === 45;
}

/** Whether the identifier right before an operator (`API_KEY =`, `"password":`) names a secret. */
function secretKeyBefore(text: string, at: number): boolean {
  let end = at;
  while (end > 0 && (text[end - 1] === ' ' || text[end - 1] === '\t')) end--;
  if (text[end - 1] === '"' || text[end - 1] === "'") end--;
  // Every secret-like key name ends in a letter; this skips clock times and numbers cheaply.
  const last = text.charCodeAt(end - 1) | 0x20;
  if (last < 97 || last > 122) return false;
  let start = end;
  while (start > 0 && end - start <= MAX_KEY_NAME && isKeyNameChar(text.charCodeAt(start - 1))) start--;
  // Shorter than "pwd" (clock times, list markers) or too long to be a key name.
  if (end - start < 3 || end - start > MAX_KEY_NAME) return false;
  SECRET_KEY_NAME.lastIndex = start;
  return SECRET_KEY_NAME.test(text) && !METADATA_KEY.test(text.slice(start, end).toLowerCase());
}

/** Length of the assignment operator at `at` (':', '=', ':=', '=>'), or 0 when it is a comparison or part of one. */
function operatorLength(text: string, at: number): number {
  const c = text[at];
  const next = text[at + 1];
  const prev = text[at - 1];
  if (c === ':') return next === '=' ? 2 : next === '/' ? 0 : 1;
  if (c !== '=') return 0;
  if (prev === ':' || prev === '=' || prev === '!' || prev === '<' || prev === '>' || next === '=') return 0;
  return next === '>' ? 2 : 1;
}

/** Three detectors, so the prefilter runs each only when its own words occur. */
export function createGenericSecretDetectors(): Detector[] {
  const report = (emit: ReportSpan, start: number, end: number, confidence: number, rule: string, validator: string): void => {
    if (end - start < 3 || end - start > MAX_GENERIC_SECRET_LENGTH) return;
    emit({ type: 'GENERIC_SECRET', start, end, confidence: clampConfidence(confidence), rule, validator });
  };
  const common = { types: ['GENERIC_SECRET'] as const, maxLength: MAX_GENERIC_SECRET_LENGTH, lookahead: 2, spanChars: NON_WHITESPACE };

  const assignments: Detector = {
    ...common,
    id: 'secret.generic.assignment',
    keywords: ['pass', 'pwd', 'secret', 'token', 'key', 'credential'],
    lookbehind: MAX_KEY_NAME + 16,
    detect(text: string, emit: ReportSpan): void {
      const visit = (at: number): void => {
        const length = operatorLength(text, at);
        if (length === 0 || !secretKeyBefore(text, at)) return;
        VALUE_AFTER_OPERATOR.lastIndex = at + length;
        const m = VALUE_AFTER_OPERATOR.exec(text);
        if (m === null) return;
        const quoted = m.groups?.['quoted'] !== undefined;
        const [start, found] = (quoted ? m.indices?.groups?.['quoted'] : m.indices?.groups?.['bare']) ?? [0, 0];
        // A call such as `token = getToken()` assigns no literal.
        if (!quoted && text[found] === '(') return;
        let end = found;
        // Sentence punctuation after a bare value.
        while (!quoted && end > start && '.,'.includes(text[end - 1]!)) end--;
        const value = text.slice(start, end);
        if (value.length >= 8 && plausibleSecret(value, quoted)) report(emit, start, end, 0.7, 'secret.generic.assignment', 'entropy');
      };
      for (let at = text.indexOf('='); at !== -1; at = text.indexOf('=', at + 1)) visit(at);
      for (let at = text.indexOf(':'); at !== -1; at = text.indexOf(':', at + 1)) visit(at);
    },
  };

  const authorizationHeaders: Detector = {
    ...common,
    id: 'secret.generic.authorization_header',
    keywords: ['authorization'],
    lookbehind: 24,
    detect(text: string, emit: ReportSpan): void {
      forEachMatch(AUTHORIZATION_NAME, text, (name) => {
        AUTHORIZATION.lastIndex = name.index;
        const m = AUTHORIZATION.exec(text);
        const [start, end] = m?.indices?.groups?.['secret'] ?? [0, 0];
        if (end > 0 && plausibleSecret(text.slice(start, end), true)) report(emit, start, end, 0.8, 'secret.generic.authorization_header', 'entropy');
      });
    },
  };

  const urlPasswords: Detector = {
    ...common,
    id: 'secret.generic.url_password',
    keywords: ['://'],
    lookbehind: 72,
    detect(text: string, emit: ReportSpan): void {
      // The URL layout itself says "password", so no entropy floor; only stand-ins are skipped.
      for (let at = text.indexOf('://'); at !== -1; at = text.indexOf('://', at + 3)) {
        if (!/[A-Za-z0-9+.-]/.test(text[at - 1] ?? '')) continue;
        URL_USERINFO.lastIndex = at + 1;
        const m = URL_USERINFO.exec(text);
        const [start, end] = m?.indices?.groups?.['secret'] ?? [0, 0];
        if (m === null || end === 0) continue;
        const value = text.slice(start, end);
        if (!NOT_A_VALUE.test(value) && !looksLikePlaceholder(value) && !STAND_IN_PASSWORD.test(value)) report(emit, start, end, 0.8, 'secret.generic.url_password', 'url-userinfo');
      }
    },
  };

  return [assignments, authorizationHeaders, urlPasswords];
}
