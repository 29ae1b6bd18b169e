// Email addresses, found from each '@' outwards (a regex that starts at every
// letter of prose is ten times slower), with the domain checked against the
// public-suffix list so `@property` or `user@host.internal` do not count.
import { parse } from 'tldts';
import { NON_WHITESPACE, type Detector, type ReportSpan } from '../detector.js';

const MAX_LOCAL = 64;
const MAX_DOMAIN = 253;
/** RFC 5321 path limit; the longest span this detector reports. */
export const MAX_EMAIL_LENGTH = 254;

// RFC 5322 atext without '/' and '=' (those mostly mean URLs and base64, not
// mailboxes), plus the letters RFC 6531 allows in internationalised addresses.
const LOCAL_CHAR = new Uint8Array(128);
const UNICODE_LOCAL_CHAR = /[\p{L}\p{M}\p{N}]/u;
for (const ch of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+?^_`{|}~.-") LOCAL_CHAR[ch.charCodeAt(0)] = 1;

// Unicode word boundaries (UAX #29) fall between Latin letters and CJK
// ideographs, kana or Hangul: an ASCII address written straight into Chinese,
// Japanese or Korean text ends, and starts, where the script changes.
const CJK = /[\p{sc=Han}\p{sc=Hiragana}\p{sc=Katakana}\p{sc=Hangul}\u3000-\u303f\u30fc\uff00-\uffef]/u;
const isAsciiAlnum = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
/** Whether a word boundary separates the characters at `i - 1` and `i` (an ASCII letter or digit on one side, CJK on the other). */
function scriptBoundary(text: string, i: number): boolean {
  if (i <= 0 || i >= text.length) return false;
  if (isAsciiAlnum(text.charCodeAt(i - 1))) return CJK.test(text[i]!);
  if (isAsciiAlnum(text.charCodeAt(i))) return CJK.test(text[i - 1]!);
  return false;
}

const DOMAIN = /(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?\.)+[\p{L}][\p{L}\p{N}-]{0,61}[\p{L}\p{N}]/uy;
const DOMAIN_CONTINUES = /[\p{L}\p{N}_@-]/u;

function localPartStart(text: string, at: number): number {
  let i = at;
  while (i > 0 && at - i < MAX_LOCAL) {
    const c = text.charCodeAt(i - 1);
    if (c < 128 ? LOCAL_CHAR[c] !== 1 : !UNICODE_LOCAL_CHAR.test(text[i - 1]!)) break;
    if (i < at && scriptBoundary(text, i)) break;
    i--;
  }
  // Longer than 64 characters of mailbox-like text: not an address.
  if (i > 0 && at - i === MAX_LOCAL) {
    const c = text.charCodeAt(i - 1);
    if (c < 128 ? LOCAL_CHAR[c] === 1 : UNICODE_LOCAL_CHAR.test(text[i - 1]!)) return -1;
  }
  // Leading dots, and quotes that delimit a string literal ('user@example.com').
  while (i < at && (text[i] === '.' || text[i] === "'" || text[i] === '`')) i++;
  return i;
}

export function createEmailDetector(): Detector {
  return {
    id: 'pii.email',
    types: ['EMAIL'],
    keywords: ['@'],
    spanChars: NON_WHITESPACE,
    spanAnchor: /@/,
    maxLength: MAX_EMAIL_LENGTH,
    lookbehind: 8,
    lookahead: 2,
    detect(text: string, report: ReportSpan): void {
      for (let at = text.indexOf('@'); at !== -1; at = text.indexOf('@', at + 1)) {
        const start = localPartStart(text, at);
        if (start < 0 || start === at) continue;
        const local = text.slice(start, at);
        if (local.endsWith('.') || local.includes('..')) continue;
        // `scheme://user@host` and `scheme://user:password@host` are URL credentials, not mailboxes.
        const before = text.charCodeAt(start - 1);
        if (before === 47 /* / */) continue;
        if (before === 58 /* : */ && urlAuthority(text, start - 1)) continue;
        DOMAIN.lastIndex = at + 1;
        const match = DOMAIN.exec(text);
        if (match === null) continue;
        const domain = domainBeforeScriptChange(text, at + 1, match[0]);
        const end = at + 1 + domain.length;
        if (domain.length > MAX_DOMAIN || end - start > MAX_EMAIL_LENGTH) continue;
        const next = text[end];
        if (next !== undefined && DOMAIN_CONTINUES.test(next) && !scriptBoundary(text, end)) continue;
        const parsed = parse(domain, { allowPrivateDomains: true });
        if (parsed.domain === null || parsed.isIp === true || !(parsed.isIcann === true || parsed.isPrivate === true)) continue;
        report({ type: 'EMAIL', start, end, confidence: 0.95, rule: 'pii.email', validator: 'public-suffix' });
        at = end - 1;
      }
    },
  };
}

/** Whether the ':' at `colon` separates a user from a password in a URL (`scheme://user:pw@host`). */
function urlAuthority(text: string, colon: number): boolean {
  for (let i = colon - 1; i >= 0 && colon - i <= MAX_LOCAL + 2; i--) {
    const c = text.charCodeAt(i);
    if (c === 47 /* / */) return text.charCodeAt(i - 1) === 47;
    if (c <= 32 || c === 64 /* @ */) return false;
  }
  return false;
}

/** The domain up to where the script changes (an ASCII domain written straight into CJK text), without a trailing dot or hyphen. */
function domainBeforeScriptChange(text: string, from: number, domain: string): string {
  for (let k = 1; k < domain.length; k++) {
    if (scriptBoundary(text, from + k)) return domain.slice(0, k).replace(/[.-]+$/, '');
  }
  return domain;
}
