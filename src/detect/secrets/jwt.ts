// JSON Web Tokens: three base64url parts whose first two decode to JSON
// objects, the header naming an algorithm. Unsigned tokens (alg "none",
// empty signature) are reported too: they still carry claims.
import { forEachMatch, NON_WHITESPACE, type Detector, type ReportSpan } from '../detector.js';

/** Documented bound: tokens longer than this are not reported (cookies cap at 4 KiB; 8 KiB leaves room). */
export const MAX_JWT_LENGTH = 8192;

const JWT = /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*(?![A-Za-z0-9_-])/g;

function decodeJsonObject(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export function jwtValid(token: string): boolean {
  const [header, payload, signature] = token.split('.');
  if (header === undefined || payload === undefined || signature === undefined) return false;
  const decodedHeader = decodeJsonObject(header);
  if (decodedHeader === undefined || typeof decodedHeader['alg'] !== 'string') return false;
  if (signature.length === 0 && decodedHeader['alg'] !== 'none') return false;
  return decodeJsonObject(payload) !== undefined;
}

export function createJwtDetector(): Detector {
  return {
    id: 'secret.jwt',
    types: ['JWT'],
    keywords: ['eyj'],
    spanChars: NON_WHITESPACE,
    maxLength: MAX_JWT_LENGTH,
    lookbehind: 1,
    lookahead: 1,
    detect(text: string, report: ReportSpan): void {
      forEachMatch(JWT, text, (m) => {
        if (m[0].length > MAX_JWT_LENGTH || !jwtValid(m[0])) return;
        report({ type: 'JWT', start: m.index, end: m.index + m[0].length, confidence: 0.95, rule: 'secret.jwt', validator: 'jose-header' });
      });
    },
  };
}
