// PEM private keys (PKCS#1, PKCS#8, SEC1, OpenSSH, encrypted PKCS#8, PGP),
// from the BEGIN line to the matching END line. Keys quoted in JSON or code
// keep their "\n" escapes inside the span. A block with no END within the
// bound is reported up to the end of its base64 body: a truncated key is
// still a leaked key.
import type { Detector, ReportSpan } from '../detector.js';

/** Documented bound: an RSA-8192 key in PEM is about 6.5 KiB; 16 KiB covers every common key. */
export const MAX_PRIVATE_KEY_LENGTH = 16 * 1024;

const BEGIN = /-----BEGIN ((?:[A-Z0-9]+ ){0,3})PRIVATE KEY( BLOCK)?-----/g;
const PARTIAL_BEGIN = /-{1,5}(?:[A-Z][A-Z0-9 ]*-{0,5})?$/;
// Less than this much base64 is a placeholder ("...") rather than a key.
const MIN_BODY_BASE64 = 40;
// One line of a PEM body: base64, or an RFC 1421 header ("Proc-Type: 4,ENCRYPTED").
const BODY_LINE = /^(?:[A-Za-z0-9+/=]+|[A-Za-z][A-Za-z-]*: [^\n]*)$/;
const LINE_BREAK = /\r?\n|\\r?\\n/y;

/** Where a block without an END line stops: after its last line of base64 (real or escaped newlines). */
function truncatedBodyEnd(text: string, bodyStart: number, limit: number): number {
  let end = bodyStart;
  let at = bodyStart;
  let blankAllowed = false;
  while (at < limit) {
    LINE_BREAK.lastIndex = at;
    const br = LINE_BREAK.exec(text);
    if (br !== null) {
      at += br[0].length;
      continue;
    }
    let lineEnd = at;
    while (lineEnd < limit && text[lineEnd] !== '\n' && text[lineEnd] !== '\r' && !(text[lineEnd] === '\\' && text[lineEnd + 1] === 'n')) lineEnd++;
    const line = text.slice(at, lineEnd);
    if (!BODY_LINE.test(line)) break;
    // Encrypted keys put a blank line after their headers; otherwise a blank line ends the block.
    if (line.includes(': ')) blankAllowed = true;
    end = lineEnd;
    at = lineEnd;
    if (!blankAllowed && /^(?:\r?\n|\\r?\\n){2}/.test(text.slice(at, at + 8))) break;
  }
  return end;
}

export function createPrivateKeyDetector(): Detector {
  return {
    id: 'secret.private_key',
    types: ['PRIVATE_KEY'],
    keywords: ['-----begin'],
    maxLength: MAX_PRIVATE_KEY_LENGTH,
    lookbehind: 0,
    lookahead: 0,
    openFrom(text: string, settled: number): number {
      // A block whose END line has not arrived (or lies past `settled`) may still grow.
      let open = settled;
      const reach = Math.max(0, text.length - MAX_PRIVATE_KEY_LENGTH);
      BEGIN.lastIndex = reach;
      for (let begin = BEGIN.exec(text); begin !== null; begin = BEGIN.exec(text)) {
        const endMarker = `-----END ${begin[1] ?? ''}PRIVATE KEY${begin[2] ?? ''}-----`;
        const endAt = text.indexOf(endMarker, begin.index + begin[0].length);
        if (endAt === -1 || endAt + endMarker.length > settled) {
          open = Math.min(open, begin.index);
          break;
        }
      }
      // A BEGIN line still arriving: dashes, then capitals and spaces.
      const partial = PARTIAL_BEGIN.exec(text.slice(Math.max(0, text.length - 64)));
      if (partial !== null) open = Math.min(open, text.length - partial[0].length);
      return open;
    },
    detect(text: string, report: ReportSpan): void {
      BEGIN.lastIndex = 0;
      for (let begin = BEGIN.exec(text); begin !== null; begin = BEGIN.exec(text)) {
        const start = begin.index;
        const bodyStart = start + begin[0].length;
        const endMarker = `-----END ${begin[1] ?? ''}PRIVATE KEY${begin[2] ?? ''}-----`;
        const limit = Math.min(text.length, start + MAX_PRIVATE_KEY_LENGTH);
        const endAt = text.indexOf(endMarker, bodyStart);
        let end: number;
        let body: string;
        let confidence: number;
        if (endAt !== -1 && endAt + endMarker.length <= limit) {
          end = endAt + endMarker.length;
          body = text.slice(bodyStart, endAt);
          confidence = 0.99;
        } else {
          end = truncatedBodyEnd(text, bodyStart, limit);
          body = text.slice(bodyStart, end);
          confidence = 0.85;
        }
        // Headers of encrypted keys ("Proc-Type: ...") and escaped newlines are not key material.
        const base64 = body.replace(/^[A-Za-z-]+:.*$/gm, '').replace(/\\n|\\r/g, '').replace(/[^A-Za-z0-9+/=]/g, '');
        if (base64.length < MIN_BODY_BASE64) continue;
        report({ type: 'PRIVATE_KEY', start, end, confidence, rule: 'secret.private_key', validator: confidence > 0.9 ? 'pem-armour' : 'pem-begin' });
        BEGIN.lastIndex = end;
      }
    },
  };
}
