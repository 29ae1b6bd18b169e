// docs/configuration.md is the configuration reference: every key the schema
// accepts must be documented there, so a key added to the schema without a
// line in the reference fails here rather than reaching users unexplained.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { configSchema } from '../../src/config/schema.js';

/** Every key path the schema accepts that holds no keys of its own, an array's elements as `name[]`. */
function leafKeyPaths(schema: z.ZodType): string[] {
  const paths = new Set<string>();
  const seen = new Set<unknown>();
  const walk = (s: z.ZodType | undefined, path: string): void => {
    const def = (s as { _zod?: { def: Record<string, any> } } | undefined)?._zod?.def;
    if (!def) return;
    switch (def.type) {
      case 'object':
        for (const [key, value] of Object.entries(def.shape as Record<string, z.ZodType>)) {
          const child = path ? `${path}.${key}` : key;
          paths.add(child);
          walk(value, child);
        }
        return;
      case 'optional': case 'nullable': case 'default': case 'prefault': case 'readonly': case 'catch': case 'nonoptional':
        return walk(def.innerType, path);
      case 'pipe':
        walk(def.in, path);
        return walk(def.out, path);
      case 'array':
        return walk(def.element, `${path}[]`);
      case 'union':
        for (const option of def.options) walk(option, path);
        return;
      case 'intersection':
        walk(def.left, path);
        return walk(def.right, path);
      case 'lazy':
        if (seen.has(s)) return;
        seen.add(s);
        return walk(def.getter(), path);
    }
  };
  walk(schema, '');
  return [...paths].filter((path) => ![...paths].some((other) => other.startsWith(`${path}.`) || other.startsWith(`${path}[]`)));
}

/** The reference's sections: a heading naming a key path (`## \`limits\``, `### \`identity.issuers[]\`: …`) and its text up to the next heading. */
function sections(markdown: string): { path: string; text: string }[] {
  const found: { path: string; text: string }[] = [];
  for (const line of markdown.split('\n')) {
    const heading = /^#{2,4} `([^`]+)`/.exec(line);
    if (heading) found.push({ path: heading[1]!, text: '' });
    else if (/^#{1,4} /.test(line)) found.push({ path: '', text: '' });
    else if (found.length) found[found.length - 1]!.text += `${line}\n`;
  }
  return found.filter((s) => s.path);
}

/**
 * The keys a table row documents, from the code spans of its first cell: `limits.rules[].tokens_per_minute`,
 * `tokens_per_day` names two siblings, as do `saml.attributes.email`, `.name` and `postgres.connect_timeout`,
 * `postgres.statement_timeout`.
 */
function rowKeys(row: string): string[] {
  const spans = [...(row.split('|')[1] ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
  const parent = spans[0]?.replace(/(^|\.|\[\])[^.[\]]+$/, '$1') ?? '';
  return spans.map((span, i) => (i === 0 || /^[^.].*(\.|\[\])/.test(span) ? span : parent + span.replace(/^\./, '')));
}

/**
 * Whether `rest` (a key path relative to a section) is documented in its text: in a row of its own, or among the
 * fields a row gives its parent (`| \`patterns[]\` | … | \`{name, regex, flags}\` …`).
 */
function documents(text: string, rest: string): boolean {
  const rows = text.split('\n').filter((line) => line.startsWith('|'));
  return rows.some((row) => {
    const keys = rowKeys(row);
    if (keys.includes(rest)) return true;
    return keys.some((key) => {
      if (!rest.startsWith(key) || !/^(\.|\[\])/.test(rest.slice(key.length))) return false;
      const fields = rest.slice(key.length).split(/\.|\[\]/).filter(Boolean);
      return fields.every((name) => new RegExp(`[{,\\s]${name}[?:,}\\s]`).test(row));
    });
  });
}

const reference = sections(readFileSync(fileURLToPath(new URL('../../docs/configuration.md', import.meta.url)), 'utf8'));

test('docs/configuration.md documents every key of the configuration schema', () => {
  const missing: string[] = [];
  for (const path of leafKeyPaths(configSchema)) {
    const owner = reference
      .filter((s) => path === s.path || path.startsWith(`${s.path}.`) || path.startsWith(`${s.path}[]`))
      .sort((a, b) => b.path.length - a.path.length)[0];
    if (owner?.path === path) continue;
    const rest = owner && path.slice(owner.path.length).replace(/^\.|^\[\]\.?/, '');
    if (!owner || !rest || !documents(owner.text, rest)) missing.push(owner ? `${path} (under \`${owner.path}\` as \`${rest}\`)` : `${path} (no section)`);
  }
  assert.deepEqual(missing, [], `keys the schema accepts that docs/configuration.md does not document:\n${missing.join('\n')}`);
});

test('docs/configuration.md documents no key the schema does not accept', () => {
  const accepted = new Set(leafKeyPaths(configSchema).flatMap((path) => path.split(/(?=\.|\[\])/).map((_, i, parts) => parts.slice(0, i + 1).join(''))));
  const unknown: string[] = [];
  for (const section of reference) {
    for (const row of section.text.split('\n').filter((line) => line.startsWith('|') && !/^\|\s*(key|-)/.test(line))) {
      for (const key of rowKeys(row)) {
        const path = `${section.path}.${key}`;
        if (!accepted.has(path)) unknown.push(`${path} (section \`${section.path}\`)`);
      }
    }
  }
  assert.deepEqual(unknown, [], `docs/configuration.md documents keys the schema does not accept:\n${unknown.join('\n')}`);
});
