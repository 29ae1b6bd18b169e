// Helpers for chunk-splitting tests of the stream decoders.

/** Deterministic PRNG (mulberry32) so a failing random split can be replayed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Splits `bytes` into chunks of 1..maxChunk bytes. */
export function randomChunks(bytes: Uint8Array, random: () => number, maxChunk: number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let start = 0; start < bytes.length; ) {
    const size = 1 + Math.floor(random() * maxChunk);
    chunks.push(bytes.subarray(start, start + size));
    start += size;
  }
  return chunks;
}

/** Feeds `chunks` through a decoder and returns everything it produced, end() included. */
export function decodeChunks<T>(decoder: { push(chunk: Uint8Array | string): T[]; end(): T[] }, chunks: Array<Uint8Array | string>): T[] {
  const out: T[] = [];
  for (const chunk of chunks) out.push(...decoder.push(chunk));
  out.push(...decoder.end());
  return out;
}
