// Finding and decoding base64 and hex blobs, so instructions smuggled in an
// encoding are scanned like plain text. Blobs are found with one pass over
// the characters (a regex that starts at every letter of prose is several
// times slower).

export interface EncodedBlob {
  encoding: 'base64' | 'hex';
  start: number;
  end: number;
  decoded: string;
}

const MIN_BLOB = 16;
// Bounds so a megabyte of base64 cannot make scoring expensive.
const MAX_BLOBS = 32;
const MAX_DECODED_CHARS = 64 * 1024;

const BASE64_CHAR = new Uint8Array(128);
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-') BASE64_CHAR[ch.charCodeAt(0)] = 1;

/** Decoded bytes count as text when they are valid UTF-8, mostly printable, and contain words. */
function asText(bytes: Buffer): string | undefined {
  if (bytes.length < 8) return undefined;
  const text = bytes.toString('utf8');
  if (text.includes('\uFFFD')) return undefined;
  let printable = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c >= 32 && c !== 127) || c === 9 || c === 10 || c === 13) printable++;
  }
  if (printable / text.length < 0.95 || !/\p{L}{2,}\s+\p{L}{2,}/u.test(text)) return undefined;
  return text;
}

function decodeToken(token: string): { encoding: EncodedBlob['encoding']; bytes: Buffer } | undefined {
  const body = token.replace(/=+$/, '');
  if (/^(?:0x)?[0-9A-Fa-f]+$/.test(body)) {
    const digits = body.replace(/^0x/, '');
    return digits.length % 2 === 0 ? { encoding: 'hex', bytes: Buffer.from(digits, 'hex') } : undefined;
  }
  // Plain long words and identifiers are not payloads: base64 of text mixes cases.
  if (!/[A-Z]/.test(body) || !/[a-z]/.test(body)) return undefined;
  const url = /[-_]/.test(body);
  if (url && /[+/]/.test(body)) return undefined;
  return { encoding: 'base64', bytes: Buffer.from(body, url ? 'base64url' : 'base64') };
}

export function findEncodedBlobs(text: string): EncodedBlob[] {
  const blobs: EncodedBlob[] = [];
  let budget = MAX_DECODED_CHARS;
  const consider = (start: number, end: number, found: { encoding: EncodedBlob['encoding']; bytes: Buffer } | undefined): void => {
    if (found === undefined || blobs.length >= MAX_BLOBS || budget <= 0) return;
    const decoded = asText(found.bytes);
    if (decoded === undefined) return;
    budget -= decoded.length;
    blobs.push({ encoding: found.encoding, start, end, decoded });
  };

  let runStart = -1;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 32;
    if (c < 128 && BASE64_CHAR[c] === 1) {
      if (runStart < 0) runStart = i;
      continue;
    }
    if (runStart >= 0 && i - runStart >= MIN_BLOB) {
      // '=' only pads the end; elsewhere it separates ("payload=...").
      let end = i;
      while (end < text.length && end - i < 2 && text[end] === '=') end++;
      consider(runStart, end, decodeToken(text.slice(runStart, end)));
    }
    runStart = -1;
    if (blobs.length >= MAX_BLOBS) break;
  }

  // "\x49\x67..." escapes.
  for (const m of text.matchAll(/(?:\\x[0-9A-Fa-f]{2}){8,}/g)) {
    consider(m.index, m.index + m[0].length, { encoding: 'hex', bytes: Buffer.from(m[0].replace(/\\x/g, ''), 'hex') });
  }
  return blobs;
}
