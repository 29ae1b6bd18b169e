// A streamed response body written as HTTP/1.1 chunks by the gateway itself,
// one socket write per chunk. Node's `res.write` frames a chunk as four
// writes to the socket (size, CRLF, data, CRLF), each queued on the corked
// socket with a callback, then gathered into one writev with a write request
// per batch; a stream relays tens of frames, so that machinery (and what it
// allocates) ran for every frame. Here the size line, the data and its CRLF
// are one string (one Buffer when the data is bytes) handed over in one
// `res.write`, and `end` adds the last-chunk marker itself.
import type { ServerResponse } from 'node:http';

const CRLF = '\r\n';
const LAST_CHUNK = '0\r\n\r\n';

export class ChunkedBody {
  readonly #res: ServerResponse;
  /** Whether this writer frames the chunks: Node chose chunked encoding (not for an HTTP/1.0 client, nor a body of known length). */
  readonly #framed: boolean;

  /** Call after `res.writeHead` (where Node decides how the body is delimited) and before any write. */
  constructor(res: ServerResponse) {
    this.#res = res;
    this.#framed = res.chunkedEncoding;
    // Node would frame every write again; keep-alive was decided with the headers and is unaffected.
    if (this.#framed) res.chunkedEncoding = false;
  }

  /** `res.write` of one chunk: true while the client keeps up (false: wait for `drain`). */
  write(data: string | Buffer): boolean {
    if (!this.#framed) return this.#res.write(data);
    if (typeof data === 'string') {
      if (data === '') return true; // an empty chunk would end the body
      return this.#res.write(`${Buffer.byteLength(data).toString(16)}${CRLF}${data}${CRLF}`);
    }
    if (data.length === 0) return true;
    const size = `${data.length.toString(16)}${CRLF}`;
    const chunk = Buffer.allocUnsafe(size.length + data.length + 2);
    chunk.write(size, 0, 'latin1');
    data.copy(chunk, size.length);
    chunk.write(CRLF, size.length + data.length, 'latin1');
    return this.#res.write(chunk);
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
}
