// Paths into a parsed JSON body, as recorded in TextField.path, so a rewrite
// (e.g. masking) lands exactly where the text was found.

export type BodyPath = ReadonlyArray<string | number>;

/** A JSON object: not null, not an array. */
export const isJsonObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The value at `path`, or undefined. Only own properties are followed, never the prototype chain. */
export function getAtPath(body: unknown, path: BodyPath): unknown {
  let node = body;
  for (const key of path) {
    if (typeof key === 'number') {
      if (!Array.isArray(node) || !Number.isInteger(key) || key < 0 || key >= node.length) return undefined;
      node = node[key];
    } else {
      if (!isJsonObject(node) || !Object.hasOwn(node, key)) return undefined;
      node = node[key];
    }
  }
  return node;
}

/**
 * Replaces the value at `path` in place. The location must already exist:
 * a rewrite replaces text the parser found, it never adds keys.
 */
export function setAtPath(body: unknown, path: BodyPath, value: unknown): void {
  const key = path.at(-1);
  const parent = getAtPath(body, path.slice(0, -1));
  if (key === undefined || getAtPath(parent, [key]) === undefined) {
    throw new Error(`setAtPath: nothing to replace at ${formatPath(path) || '(root)'}`);
  }
  (parent as Record<string | number, unknown>)[key] = value;
}

/** `['messages', 2, 'content']` → `messages[2].content`, the form OpenAI uses in `error.param`. */
export const formatPath = (path: BodyPath): string =>
  path.map((key, i) => (typeof key === 'number' ? `[${key}]` : i === 0 ? key : `.${key}`)).join('');
