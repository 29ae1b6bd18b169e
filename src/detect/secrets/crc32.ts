// CRC-32 (IEEE), for the checksum GitHub embeds in its token formats.
const TABLE = new Int32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  TABLE[n] = c;
}

export function crc32(ascii: string): number {
  let crc = -1;
  for (let i = 0; i < ascii.length; i++) crc = TABLE[(crc ^ ascii.charCodeAt(i)) & 0xff]! ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

export function base62(value: number, alphabet: string, width: number): string {
  let out = '';
  let rest = value;
  do {
    out = alphabet[rest % 62]! + out;
    rest = Math.floor(rest / 62);
  } while (rest > 0);
  return out.padStart(width, alphabet[0]);
}
