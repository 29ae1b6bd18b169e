// One-dimensional PostgreSQL arrays in the binary wire format, for a batch's
// columns as `unnest($1::bigint[], $2::text[], ...)` parameters. node-postgres
// sends a Buffer parameter in binary format, so the server takes each element
// by its type's receive function (a copy, no parsing), and the client builds
// one Buffer per column instead of escaping every element into an array
// literal or a JSON document (which the server then parsed back: about half
// of its CPU per recorded session went to json_to_recordset).

export type ElementType = 'bigint' | 'integer' | 'smallint' | 'text' | 'bytea';

/** pg_type OIDs of the element types: array_recv refuses an array whose element type is not the parameter's. */
const ELEMENT_OID: Record<ElementType, number> = { bigint: 20, integer: 23, smallint: 21, text: 25, bytea: 17 };
const FIXED_WIDTH: Partial<Record<ElementType, number>> = { bigint: 8, integer: 4, smallint: 2 };
const TWO_32 = 2 ** 32;

/**
 * `values` as a binary array of `type`. null elements are SQL NULLs; numbers of the integer types must be integers
 * in range (as their text form would have to be); text is stored as its UTF-8 (a lone surrogate becomes U+FFFD, as
 * in a text parameter).
 */
export function binaryArray(type: ElementType, values: ReadonlyArray<unknown>): Buffer {
  const width = FIXED_WIDTH[type];
  // Text is measured first and written straight into the array (no Buffer per element).
  const lengths: number[] | undefined = width === undefined ? new Array<number>(values.length) : undefined;
  let size = 20;
  let hasNull = 0;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    size += 4;
    if (value === null || value === undefined) {
      hasNull = 1;
      continue;
    }
    if (width !== undefined) {
      size += width;
      continue;
    }
    const length = type === 'text' ? Buffer.byteLength(String(value), 'utf8') : (value as Uint8Array).byteLength;
    lengths![i] = length;
    size += length;
  }
  const out = Buffer.allocUnsafe(size);
  // Header: one dimension, has-null flag, element type, then the dimension's length and lower bound.
  out.writeInt32BE(1, 0);
  out.writeInt32BE(hasNull, 4);
  out.writeUInt32BE(ELEMENT_OID[type], 8);
  out.writeInt32BE(values.length, 12);
  out.writeInt32BE(1, 16);
  let at = 20;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (value === null || value === undefined) {
      at = out.writeInt32BE(-1, at);
      continue;
    }
    if (width === undefined) {
      const length = lengths![i]!;
      at = out.writeInt32BE(length, at);
      if (type === 'text') out.write(String(value), at, length, 'utf8');
      else out.set(value as Uint8Array, at);
      at += length;
      continue;
    }
    at = out.writeInt32BE(width, at);
    const n = Number(value);
    if (!Number.isSafeInteger(n)) throw new TypeError(`not an integer for a ${type} column: ${String(value)}`);
    if (type === 'bigint') {
      const high = Math.floor(n / TWO_32);
      at = out.writeInt32BE(high, at);
      at = out.writeUInt32BE(n - high * TWO_32, at);
    } else if (type === 'integer') at = out.writeInt32BE(n, at);
    else at = out.writeInt16BE(n, at);
  }
  return out;
}
