// The one walk over everything a client receives. Given a protocol's shape
// (output-shapes.ts) it removes token ids, log probabilities and unreadable
// media, lets token-like metadata through, and hands every other string —
// including object keys that are not plain identifiers — to `mask`. No
// field name is hard-coded here: a new field or event type is text.
import { isJsonObject, type BodyPath } from '../protocol/body-path.js';
import { isMetadataValue, rememberedTest, type OutputShape } from './output-shapes.js';

export type TextKind = 'text' | 'json';

/** Where a string sits, for callers that write to it again later (a held tail appended). */
export interface StringSlot {
  holder: Record<string, unknown> | unknown[];
  key: string | number;
}

/** Masks one string found at `path`; returns its replacement. */
export type MaskString = (value: string, path: BodyPath, kind: TextKind, slot?: StringSlot) => string;

const PLAIN_KEY = /^[A-Za-z0-9_.-]{1,64}$/;
const isPlainKey = rememberedTest((key) => PLAIN_KEY.test(key), 64);

/**
 * Rewrites `root` in place; returns whether anything changed. Array items
 * are placed by their own `index` where they carry one (chat choices and
 * tool-call deltas), so a path names the same field in every frame.
 */
export function walkOutput(root: Record<string, unknown>, shape: OutputShape, mask: MaskString, at: BodyPath = []): boolean {
  return new OutputWalk(shape, mask).object(root, at, undefined);
}

class OutputWalk {
  constructor(
    readonly shape: OutputShape,
    readonly mask: MaskString,
  ) {}

  object(node: Record<string, unknown>, path: BodyPath, parentKey: string | undefined): boolean {
    let changed = false;
    for (const key of Object.keys(node)) {
      if (this.shape.removed.has(key)) {
        changed = removeTokenLevel(node, key) || changed;
        continue;
      }
      if (this.#isBinary(node, key, parentKey)) {
        delete node[key];
        changed = true;
        continue;
      }
      let name = key;
      if (!isPlainKey(key)) {
        // A key is text the client sees too.
        name = this.mask(key, childPath(path, key), 'text');
        if (name !== key) {
          node[name] = node[key];
          delete node[key];
          changed = true;
        }
      }
      const value = node[name];
      // Numbers, booleans and null hold no text: no path built for them.
      if (value === null || (typeof value !== 'string' && typeof value !== 'object')) continue;
      if (typeof value === 'string' && this.shape.metadata.has(name) && isMetadataValue(value)) continue;
      const here = childPath(path, name);
      if (typeof value === 'string') {
        const masked = this.mask(value, here, this.shape.jsonText.has(name) ? 'json' : 'text', { holder: node, key: name });
        if (masked !== value) {
          node[name] = masked;
          changed = true;
        }
      } else if (isJsonObject(value) && this.shape.freeJson.has(name)) {
        changed = this.#freeJson(node, name, value, here) || changed;
      } else {
        changed = this.value(value, here, name) || changed;
      }
    }
    return changed;
  }

  value(value: unknown, path: BodyPath, key: string): boolean {
    if (isJsonObject(value)) return this.object(value, path, key);
    if (!Array.isArray(value)) return false;
    let changed = false;
    for (let position = 0; position < value.length; position++) {
      const item: unknown = value[position];
      if (item === null || (typeof item !== 'string' && typeof item !== 'object')) continue;
      const segment = isJsonObject(item) && typeof item.index === 'number' ? item.index : position;
      if (typeof item === 'string') {
        const masked = this.mask(item, childPath(path, segment), 'text', { holder: value, key: position });
        if (masked !== item) {
          value[position] = masked;
          changed = true;
        }
      } else {
        changed = this.value(item, childPath(path, segment), key) || changed;
      }
    }
    return changed;
  }

  /** An object whose every key and string is text: masked as one JSON text, so key names give context. */
  #freeJson(holder: Record<string, unknown>, key: string, value: Record<string, unknown>, path: BodyPath): boolean {
    const json = JSON.stringify(value);
    const masked = this.mask(json, path, 'json');
    if (masked === json) return false;
    try {
      const parsed: unknown = JSON.parse(masked);
      if (isJsonObject(parsed)) {
        holder[key] = parsed;
        return true;
      }
    } catch {
      // A span cut through the structure; mask each string on its own instead.
    }
    holder[key] = maskLeaves(value, path, this.mask);
    return true;
  }

  #isBinary(node: Record<string, unknown>, key: string, parentKey: string | undefined): boolean {
    // Most keys are no binary field's key: one lookup, no string built.
    const parents = binaryParents(this.shape).get(key);
    if (parents === undefined) return false;
    return parents.has('*') || (parentKey !== undefined && parents.has(parentKey)) || (typeof node.type === 'string' && parents.has(node.type));
  }
}

/** A shape's `binary` entries (`parent.key`) by key: key -> its parents (`*` for any). */
const binaryByKey = new WeakMap<OutputShape, ReadonlyMap<string, ReadonlySet<string>>>();

function binaryParents(shape: OutputShape): ReadonlyMap<string, ReadonlySet<string>> {
  let byKey = binaryByKey.get(shape);
  if (byKey === undefined) {
    const built = new Map<string, Set<string>>();
    for (const entry of shape.binary) {
      const dot = entry.lastIndexOf('.');
      const key = entry.slice(dot + 1);
      if (!built.has(key)) built.set(key, new Set());
      built.get(key)!.add(entry.slice(0, dot));
    }
    byKey = built;
    binaryByKey.set(shape, byKey);
  }
  return byKey;
}

/**
 * `path` and one more step: an array of exactly that length (a spread builds
 * one with room to grow, and this runs for every string of every frame).
 */
function childPath(path: BodyPath, step: string | number): BodyPath {
  const child = new Array<string | number>(path.length + 1);
  for (let i = 0; i < path.length; i++) child[i] = path[i]!;
  child[path.length] = step;
  return child;
}

/** `logprobs` keeps its place (`null`, or `[]` for a list); token id arrays go. */
function removeTokenLevel(node: Record<string, unknown>, key: string): boolean {
  const value = node[key];
  if (value === undefined || value === null) return false;
  if (key === 'logprobs') {
    if (Array.isArray(value) && value.length === 0) return false;
    node[key] = Array.isArray(value) ? [] : null;
  } else {
    delete node[key];
  }
  return true;
}

function maskLeaves(value: unknown, path: BodyPath, mask: MaskString): unknown {
  if (typeof value === 'string') return mask(value, path, 'text');
  if (Array.isArray(value)) return value.map((item, i) => maskLeaves(item, [...path, i], mask));
  if (isJsonObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [mask(key, [...path, key], 'text'), maskLeaves(item, [...path, key], mask)]));
  }
  return value;
}
