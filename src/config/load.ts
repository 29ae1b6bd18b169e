// Loads modelgate.yaml: parse YAML keeping node positions, substitute
// ${ENV} references in string values, validate with the schema, and report
// every problem as `file:line:col: key.path: message`.
import { readFile } from 'node:fs/promises';
import { parseDocument, visit, isScalar, LineCounter, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.js';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

export async function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  return parseConfig(await readConfigText(path), path, env);
}

export async function readConfigText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`${path}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? String(err)})`]);
  }
}

export function parseConfig(text: string, filename: string, env: NodeJS.ProcessEnv = process.env): Config {
  return parseYamlWith(configSchema, text, filename, env);
}

/** Parses and validates any YAML document (a config, a standalone policy file) with the same error reporting. */
export function parseYamlWith<Schema extends z.ZodType>(
  schema: Schema,
  text: string,
  filename: string,
  env: NodeJS.ProcessEnv = process.env,
): z.output<Schema> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const where = (offset: number | undefined): string => {
    if (offset === undefined) return filename;
    const { line, col } = lineCounter.linePos(offset);
    return `${filename}:${line}:${col}`;
  };

  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => `${where(e.pos[0])}: YAML syntax: ${e.message.split('\n')[0]}`));
  }

  const problems = substituteEnv(doc, env, where);
  if (problems.length > 0) throw new ConfigError(problems);

  const result = schema.safeParse(doc.toJS() ?? {});
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((issue) => describeIssue(issue, doc, where)));
  }
  return result.data;
}

/**
 * Replaces `${NAME}` and `${NAME:-default}` inside string scalars. `$${` is a
 * literal `${`. Substitution happens on parsed values, never on raw text, so a
 * secret containing YAML syntax cannot change the document's structure.
 */
function substituteEnv(doc: Document, env: NodeJS.ProcessEnv, where: (offset?: number) => string): string[] {
  const problems: string[] = [];
  visit(doc, {
    Scalar(_key, node, path) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return;
      node.value = node.value.replace(/\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (whole, escaped, name, fallback) => {
        if (escaped) return whole.slice(1);
        const value = env[name];
        if (value !== undefined && value !== '') return value;
        if (fallback !== undefined) return fallback;
        problems.push(`${where(node.range?.[0])}: ${keyPath([...path, node])}: environment variable ${name} is not set`);
        return '';
      });
    },
  });
  return problems;
}

function keyPath(ancestors: readonly unknown[]): string {
  const parts: Array<string | number> = [];
  for (let i = 0; i < ancestors.length; i++) {
    const node = ancestors[i] as { key?: unknown; items?: unknown[] };
    const child = ancestors[i + 1];
    if (node && 'key' in node && isScalar(node.key)) parts.push(String(node.key.value));
    else if (node && Array.isArray(node.items) && child !== undefined && !('key' in (child as object))) {
      parts.push(node.items.indexOf(child));
    }
  }
  return formatPath(parts) || '(root)';
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('');
}

function describeIssue(issue: z.core.$ZodIssue, doc: Document, where: (offset?: number) => string): string {
  let path = issue.path as PropertyKey[];
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    path = [...path, issue.keys[0]!];
  }
  // Point at the deepest node that exists: a missing key is reported at its parent.
  let node: Node | undefined;
  for (let depth = path.length; depth >= 0 && !node; depth--) {
    const found = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth) as Array<string | number>, true);
    if (found && typeof found === 'object' && 'range' in found) node = found as Node;
  }
  return `${where(node?.range?.[0])}: ${formatPath(path) || '(root)'}: ${message}`;
}
