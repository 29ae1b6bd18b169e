// A streamed response body written as HTTP/1.1 chunks by the gateway itself,
// one socket write per chunk. Node's `res.write` frames a chunk as four
// writes to the socket (size, CRLF, data, CRLF), each queued on the corked
// socket with a callback, then gathered into one writev with a write request
// per batch; a stream relays tens of frames, so that machinery (and what it
// allocates) ran for every frame. Here the size line, the data and its CRLF
// are one Buffer handed over in one `res.write`, and `end` adds the
// last-chunk marker itself.
//
// A chunk of text is encoded once, straight into its place in a shared slab
// (as Node's 8 KiB Buffer pool does for short strings): the encoding gives the size
// line its number, where `Buffer.byteLength` walked the text once more, and
// the socket then writes bytes instead of encoding the text again. The caller
// reads that number too (`lastDataBytes`: recording stores each chunk's size).
import type { ServerResponse } from 'node:http';

const CRLF = '\r\n';
const LAST_CHUNK = '0\r\n\r\n';
const CR = 0x0d;
const LF = 0x0a;

/**
 * Slabs chunks are encoded into. A chunk's slice keeps its whole slab alive until the socket has written it, and a
 * client that stops reading keeps what it has queued: small slabs, as Node's pool, bound what each slow client holds.
 */
const SLAB_BYTES = 8 * 1024;
/** A chunk that could take more than this is not encoded into a slab (see `#textChunk`). */
const MAX_SLAB_CHUNK_BYTES = SLAB_BYTES / 2;
let slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
let slabUsed = 0;

export class ChunkedBody {
  readonly #res: ServerResponse;
  /** Whether this writer frames the chunks: Node chose chunked encoding (not for an HTTP/1.0 client, nor a body of known length). */
  readonly #framed: boolean;
  /** UTF-8 bytes of the data the last `write` was given (its size line's number when framed). */
  lastDataBytes = 0;
  /**
   * Until the first chunk: Node sends the status line and headers with the first write, in the same
   * piece only when that write is a string (bytes would follow as a second piece of a writev).
   */
  #first = true;

  /** Call after `res.writeHead` (where Node decides how the body is delimited) and before any write. */
  constructor(res: ServerResponse) {
    this.#res = res;
    this.#framed = res.chunkedEncoding;
    // Node would frame every write again; keep-alive was decided with the headers and is unaffected.
    if (this.#framed) res.chunkedEncoding = false;
  }

  /** `res.write` of one chunk: true while the client keeps up (false: wait for `drain`). Sets `lastDataBytes`. */
  write(data: string | Buffer): boolean {
    if (!this.#framed) {
      this.lastDataBytes = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
      return this.#res.write(data);
    }
    if (data.length === 0) {
      this.lastDataBytes = 0;
      return true; // an empty chunk would end the body
    }
    // A string when the client has not taken what was written before: the socket keeps a queued string
    // as an exact copy, where a queued slice would keep its whole slab (a slow stream's 16 KiB of queued
    // chunks could hold as many slabs, each shared with other streams' chunks). So a client that falls
    // behind holds at most one slab, the one its first unwritten chunk is in.
    if (typeof data === 'string' && (this.#first || this.#res.writableLength > 0)) {
      this.#first = false;
      this.lastDataBytes = Buffer.byteLength(data);
      return this.#res.write(`${this.lastDataBytes.toString(16)}${CRLF}${data}${CRLF}`);
    }
    this.#first = false;
    return this.#res.write(typeof data === 'string' ? this.#textChunk(data) : this.#bytesChunk(data));
  }

  /** Ends the body, after `data` when given: its last chunk and the end travel in one write. */
  end(data?: string): void {
    if (!this.#framed) {
      this.#res.end(data);
      return;
    }
    if (this.#res.writableEnded) return;
    this.#res.end(data ? `${Buffer.byteLength(data).toString(16)}${CRLF}${data}${CRLF}${LAST_CHUNK}` : LAST_CHUNK);
  }

  /** The text framed as one chunk: encoded after room for its size line, which is then written right before it. */
  #textChunk(text: string): Buffer {
    // UTF-8 takes at most three bytes per UTF-16 unit (a surrogate pair: four for two; a lone one: three, as U+FFFD).
    const most = text.length * 3;
    const sizeRoom = most.toString(16).length + CRLF.length;
    const room = sizeRoom + most + CRLF.length;
    // A large chunk is measured first and gets a buffer of exactly its size, not three times it.
    if (room > MAX_SLAB_CHUNK_BYTES) return this.#bytesChunk(Buffer.from(text, 'utf8'));
    if (room > SLAB_BYTES - slabUsed) {
      slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      slabUsed = 0;
    }
    const dataAt = slabUsed + sizeRoom;
    const size = slab.write(text, dataAt);
    const sizeLine = `${size.toString(16)}${CRLF}`;
    const start = dataAt - sizeLine.length;
    slab.write(sizeLine, start, 'latin1');
    const end = dataAt + size;
    slab[end] = CR;
    slab[end + 1] = LF;
    slabUsed = end + 2;
    this.lastDataBytes = size;
    return slab.subarray(start, end + 2);
  }

  #bytesChunk(data: Buffer): Buffer {
    const sizeLine = `${data.length.toString(16)}${CRLF}`;
    const chunk = Buffer.allocUnsafe(sizeLine.length + data.length + 2);
    chunk.write(sizeLine, 0, 'latin1');
    data.copy(chunk, sizeLine.length);
    chunk[chunk.length - 2] = CR;
    chunk[chunk.length - 1] = LF;
    this.lastDataBytes = data.length;
    return chunk;
  }
}
