// The one walker that finds every text a request carries to the model.
// Default deny: every string is text unless its protocol's shape (see
// request-shapes.ts) declares its position as a known non-text value (an
// enum, an opaque id, base64 media) AND the value looks like one. Field
// names are not declared, so a new field in a new server release is
// inspected without code.
import { isJsonObject, type BodyPath } from './body-path.js';
import type { TextField } from './types.js';

/** How a string at a declared position is recognised as not being text. */
export type NonText =
  | readonly string[] // one of these enum values; any other value is text
  | 'id' // an opaque reference: one token without spaces, at most 256 characters
  | 'binary' // base64 media or encrypted state: never text
  | 'url'; // media by reference: a data: URL is binary, any other URL is text

/** What a shape says about one position (a dotted path, `*` for any index or key). */
export interface PositionSpec {
  /** Strings here are not text when they fit. */
  string?: NonText;
  /** An object or array here is free-form: its keys reach the model too, so its JSON is one field. */
  freeform?: boolean;
  /** Integers here are token IDs (`'ids'`), or any value is an opaque prompt (`'any'`, prompt embeddings). */
  tokens?: 'ids' | 'any';
  /** Fields at and below take this kind (the nearest declaration wins). */
  kind?: TextField['kind'];
  /** Fields at and below belong to this role. */
  role?: string;
  /** Each element here is a message: its role comes from `roleOf`. */
  message?: boolean;
}

export interface RequestShape {
  /** Position specs by dotted path. */
  positions: Readonly<Record<string, PositionSpec>>;
  /** Top-level keys documented without a spec (numbers, flags, plain text parameters). */
  known: readonly string[];
  /** The role of a message element (the shape's `message` positions). */
  roleOf?(message: Record<string, unknown>): string | undefined;
}

interface Node {
  spec: PositionSpec;
  children: Map<string, Node>;
  any?: Node;
}

export interface CompiledShape {
  root: Node;
  known: ReadonlySet<string>;
  roleOf: (message: Record<string, unknown>) => string | undefined;
}

const newNode = (): Node => ({ spec: {}, children: new Map() });

export function compileShape(shape: RequestShape): CompiledShape {
  const root = newNode();
  const known = new Set(shape.known);
  for (const [path, spec] of Object.entries(shape.positions)) {
    let node = root;
    const keys = path.split('.');
    known.add(keys[0]!);
    for (const key of keys) {
      if (key === '*') node = node.any ??= newNode();
      else {
        let child = node.children.get(key);
        if (child === undefined) node.children.set(key, (child = newNode()));
        node = child;
      }
    }
    node.spec = { ...node.spec, ...spec };
  }
  return { root, known, roleOf: shape.roleOf ?? ((m) => (typeof m.role === 'string' ? m.role : undefined)) };
}

export interface RequestTexts {
  fields: TextField[];
  uninspectable: BodyPath[];
  unknownParams: string[];
}

const ID = /^[^\s]{1,256}$/;

function isNonText(rule: NonText, value: string): boolean {
  if (Array.isArray(rule)) return rule.includes(value);
  switch (rule) {
    case 'id':
      return ID.test(value);
    case 'binary':
      return true;
    case 'url':
      return value.startsWith('data:');
  }
  return false;
}

const containsNumber = (value: unknown): boolean =>
  typeof value === 'number' || (Array.isArray(value) && value.some(containsNumber));

interface Scope {
  kind: TextField['kind'];
  role: string | undefined;
}

/**
 * Every text in `body`, in body order, with its path. Top-level keys the
 * shape does not know are walked like free-form values and listed in
 * `unknownParams`, so the connection can have them dropped instead.
 */
export function collectRequestTexts(shape: CompiledShape, body: Record<string, unknown>): RequestTexts {
  const out: RequestTexts = { fields: [], uninspectable: [], unknownParams: [] };
  const add = (path: BodyPath, text: string, scope: Scope, encoding?: 'json'): void => {
    out.fields.push({ path, kind: scope.kind, ...(scope.role !== undefined && { role: scope.role }), ...(encoding && { encoding }), text });
  };

  const walk = (value: unknown, path: BodyPath, nodes: readonly Node[], scope: Scope): void => {
    if (value === null || value === undefined || typeof value === 'boolean') return;
    let freeform = false;
    let tokens: PositionSpec['tokens'];
    const rules: NonText[] = [];
    for (const { spec } of nodes) {
      if (spec.kind !== undefined) scope = { ...scope, kind: spec.kind };
      if (spec.role !== undefined) scope = { ...scope, role: spec.role };
      if (spec.message && isJsonObject(value)) scope = { ...scope, role: shape.roleOf(value) };
      if (spec.freeform) freeform = true;
      if (spec.tokens) tokens = spec.tokens;
      if (spec.string) rules.push(spec.string);
    }
    if (tokens === 'any' || (tokens === 'ids' && containsNumber(value))) {
      out.uninspectable.push(path);
      return;
    }
    if (typeof value === 'number') return;
    if (typeof value === 'string') {
      if (!rules.some((rule) => isNonText(rule, value))) add(path, value, scope);
      return;
    }
    if (freeform && (isJsonObject(value) || Array.isArray(value))) {
      add(path, JSON.stringify(value), scope, 'json');
      return;
    }
    if (Array.isArray(value)) {
      const next = nodes.flatMap((n) => (n.any ? [n.any] : []));
      value.forEach((item, i) => walk(item, [...path, i], next, scope));
      return;
    }
    if (isJsonObject(value)) {
      for (const [key, item] of Object.entries(value)) {
        const next: Node[] = [];
        for (const n of nodes) {
          const child = n.children.get(key);
          if (child) next.push(child);
          if (n.any) next.push(n.any);
        }
        walk(item, [...path, key], next, scope);
      }
    }
  };

  for (const [key, value] of Object.entries(body)) {
    const scope: Scope = { kind: 'parameter', role: undefined };
    if (!shape.known.has(key)) {
      // Undocumented: its keys may be rendered too, so it is read whole, like a free-form value.
      out.unknownParams.push(key);
      walk(value, [key], [FREEFORM], scope);
      continue;
    }
    const child = shape.root.children.get(key);
    walk(value, [key], child ? [child] : [], scope);
  }
  return out;
}

const FREEFORM: Node = { spec: { freeform: true }, children: new Map() };
