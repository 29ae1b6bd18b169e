// A renderer for the part of Helm's Go-template language the chart in
// deploy/helm uses (helm itself is not in this machine's package sources, so
// CI cannot run `helm template`): actions with `{{-`/`-}}` trimming,
// comments, `define`/`include`, `if`/`else`/`end`, `range` over a list or
// `$i := until n`, pipelines, and the functions the chart calls. Strict where
// helm is lenient: a `.Values` path missing from the values is an error, so
// a template cannot refer to a setting values.yaml does not have, and an
// unknown function or action is an error rather than a guess.
import { createHash, randomBytes } from 'node:crypto';
import { stringify } from 'yaml';

type Node = { text: string } | { action: string };
type Scope = { dot: unknown; root: Record<string, unknown>; vars: Map<string, unknown> };

/** Splits a template into text and actions, applying `{{-` and `-}}` whitespace trimming. */
function tokenize(source: string): Node[] {
  const nodes: Node[] = [];
  const pattern = /\{\{(-?)\s*([\s\S]*?)\s*(-?)\}\}/g;
  let last = 0;
  let trimNext = false;
  for (let m = pattern.exec(source); m; m = pattern.exec(source)) {
    let text = source.slice(last, m.index);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (m[1]) text = text.replace(/\s+$/, '');
    if (text) nodes.push({ text });
    nodes.push({ action: m[2]! });
    trimNext = m[3] === '-';
    last = pattern.lastIndex;
  }
  let tail = source.slice(last);
  if (trimNext) tail = tail.replace(/^\s+/, '');
  if (tail) nodes.push({ text: tail });
  return nodes;
}

/** Splits an expression into terms, keeping strings and parenthesised groups whole. */
function terms(expr: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < expr.length) {
    if (/\s/.test(expr[i]!)) {
      i++;
      continue;
    }
    let j = i;
    if (expr[i] === '"') {
      j = expr.indexOf('"', i + 1) + 1;
      if (j === 0) throw new Error(`unterminated string in: ${expr}`);
    } else if (expr[i] === '(') {
      let depth = 0;
      do {
        if (expr[j] === '(') depth++;
        if (expr[j] === ')') depth--;
        j++;
      } while (depth > 0 && j < expr.length);
    } else {
      while (j < expr.length && !/\s/.test(expr[j]!)) j++;
    }
    out.push(expr.slice(i, j));
    i = j;
  }
  return out;
}

export class HelmChart {
  private readonly defines = new Map<string, Node[]>();

  constructor(private readonly files: Record<string, string>) {
    for (const source of Object.values(files)) {
      const nodes = tokenize(source);
      for (let i = 0; i < nodes.length; i++) {
        const node = nodes[i]!;
        if (!('action' in node)) continue;
        const define = /^define "([^"]+)"$/.exec(node.action);
        if (!define) continue;
        const end = this.matchingEnd(nodes, i);
        this.defines.set(define[1]!, nodes.slice(i + 1, end));
        nodes.splice(i, end - i + 1);
        i--;
      }
    }
  }

  /** Renders one template file with `root` (Values, Release, Chart). */
  render(file: string, root: Record<string, unknown>): string {
    const nodes = tokenize(this.files[file]!).filter((n) => !('action' in n && /^define /.test(n.action)));
    return this.run(this.withoutDefines(nodes), { dot: root, root, vars: new Map() });
  }

  private withoutDefines(nodes: Node[]): Node[] {
    const out: Node[] = [];
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i]!;
      if ('action' in node && /^define /.test(node.action)) i = this.matchingEnd(nodes, i);
      else out.push(node);
    }
    return out;
  }

  private matchingEnd(nodes: Node[], start: number): number {
    let depth = 0;
    for (let i = start; i < nodes.length; i++) {
      const node = nodes[i]!;
      if (!('action' in node)) continue;
      if (/^(if|range|define|with) /.test(node.action)) depth++;
      if (node.action === 'end' && --depth === 0) return i;
    }
    throw new Error(`no {{ end }} for {{ ${(nodes[start] as { action: string }).action} }}`);
  }

  private run(nodes: Node[], scope: Scope): string {
    let out = '';
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i]!;
      if ('text' in node) {
        out += node.text;
        continue;
      }
      const action = node.action;
      if (action.startsWith('/*')) continue;
      const block = /^(if|range) (.*)$/.exec(action);
      if (block) {
        const end = this.matchingEnd(nodes, i);
        const body = nodes.slice(i + 1, end);
        i = end;
        if (block[1] === 'if') {
          const elseAt = body.findIndex((n, k) => 'action' in n && n.action === 'else' && this.depthAt(body, k) === 0);
          const [then, otherwise] = elseAt === -1 ? [body, []] : [body.slice(0, elseAt), body.slice(elseAt + 1)];
          out += this.run(this.truthy(this.pipeline(block[2]!, scope)) ? then : otherwise, scope);
        } else {
          const binding = /^\$(\w+) := (.*)$/.exec(block[2]!);
          const list = this.pipeline(binding ? binding[2]! : block[2]!, scope);
          if (!Array.isArray(list)) throw new Error(`range over a non-list: ${block[2]}`);
          for (const item of list) {
            const vars = new Map(scope.vars);
            if (binding) vars.set(binding[1]!, item);
            out += this.run(body, { ...scope, dot: binding ? scope.dot : item, vars });
          }
        }
        continue;
      }
      if (action === 'end' || action === 'else') throw new Error(`unexpected {{ ${action} }}`);
      out += String(this.pipeline(action, scope));
    }
    return out;
  }

  private depthAt(nodes: Node[], index: number): number {
    let depth = 0;
    for (let k = 0; k < index; k++) {
      const n = nodes[k]!;
      if (!('action' in n)) continue;
      if (/^(if|range|with) /.test(n.action)) depth++;
      if (n.action === 'end') depth--;
    }
    return depth;
  }

  private truthy(value: unknown): boolean {
    return !(value === undefined || value === null || value === false || value === 0 || value === '' || (Array.isArray(value) && value.length === 0));
  }

  private pipeline(expr: string, scope: Scope): unknown {
    const stages = expr.split(/\s\|\s/);
    let value = this.command(terms(stages[0]!), scope);
    for (const stage of stages.slice(1)) value = this.command(terms(stage), scope, [value]);
    return value;
  }

  private command(parts: string[], scope: Scope, piped: unknown[] = []): unknown {
    const [head, ...rest] = parts;
    if (!head) throw new Error('empty command');
    if (rest.length === 0 && piped.length === 0 && !/^[a-z]/i.test(head)) return this.term(head, scope);
    const args = [...rest.map((t) => this.term(t, scope)), ...piped];
    const fn = FUNCTIONS[head];
    if (head === 'include') return this.run(this.defines.get(String(args[0])) ?? fail(`include of undefined template ${String(args[0])}`), { ...scope, dot: args[1] });
    if (!fn) throw new Error(`unknown function "${head}"`);
    return fn(...args);
  }

  private term(t: string, scope: Scope): unknown {
    if (t.startsWith('"')) return JSON.parse(t);
    if (/^-?\d+$/.test(t)) return Number(t);
    if (t.startsWith('(')) return this.pipeline(t.slice(1, -1), scope);
    if (t === '.') return scope.dot;
    if (t.startsWith('$.')) return this.path(scope.root, t.slice(2).split('.'), t);
    if (t.startsWith('$')) {
      if (!scope.vars.has(t.slice(1))) throw new Error(`undefined variable ${t}`);
      return scope.vars.get(t.slice(1));
    }
    if (t.startsWith('.')) return this.path(scope.dot, t.slice(1).split('.'), t);
    throw new Error(`cannot read term "${t}"`);
  }

  private path(from: unknown, keys: string[], written: string): unknown {
    let value = from;
    for (const key of keys) {
      if (value === null || typeof value !== 'object' || !(key in value)) throw new Error(`${written}: no "${key}" in the values`);
      value = (value as Record<string, unknown>)[key];
    }
    return value;
  }
}

function fail(message: string): never {
  throw new Error(message);
}

const toYaml = (v: unknown): string => (v === undefined || v === null ? '' : stringify(v).replace(/\n$/, ''));

const FUNCTIONS: Record<string, (...args: unknown[]) => unknown> = {
  quote: (v) => JSON.stringify(String(v ?? '')),
  nindent: (n, v) => `\n${String(v)
    .split('\n')
    .map((l) => ' '.repeat(Number(n)) + l)
    .join('\n')}`,
  toYaml,
  sha256sum: (v) => createHash('sha256').update(String(v)).digest('hex'),
  not: (v) => v === undefined || v === null || v === false || v === 0 || v === '',
  int: (v) => Math.trunc(Number(v)),
  until: (n) => Array.from({ length: Number(n) }, (_, i) => i),
  add: (...v) => v.reduce<number>((a, b) => a + Number(b), 0),
  randAlphaNum: (n) => randomBytes(Number(n)).toString('base64url').replace(/[^a-zA-Z0-9]/g, 'x').slice(0, Number(n)),
};
