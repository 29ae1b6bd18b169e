// The README's "Usage and limits" section stays true: its limits block is
// the example config's `limits` section, and its `modelgate usage`
// transcript has the columns the command prints today.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse, stringify } from 'yaml';
import { usageCommand } from '../../src/cli/usage.js';
import { runCli } from '../helpers/cli.js';

const root = new URL('../../', import.meta.url);
const readme = await readFile(new URL('README.md', root), 'utf8');
const section = readme.slice(readme.indexOf('## Usage and limits'), readme.indexOf('\n## ', readme.indexOf('## Usage and limits') + 3));

test('the README shows the limits section of the example config', async () => {
  const example = parse(await readFile(new URL('examples/modelgate.yaml', root), 'utf8')) as { limits: unknown };
  const block = /```yaml\n(limits:\n[\s\S]*?)```/.exec(section)?.[1];
  assert.ok(block, 'a yaml block starting with limits:');
  assert.deepEqual(parse(block), { limits: example.limits });
});

test('the README shows modelgate usage output with the columns it prints today', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'modelgate-readme-'));
  try {
    const config = join(dir, 'modelgate.yaml');
    await writeFile(config, stringify({ storage: { driver: 'sqlite', sqlite: { path: join(dir, 'audit.db') } }, usage: { currency: 'EUR' } }));
    const table = (await runCli(usageCommand, ['--config', config, '--by', 'subject,model'])).out.split('\n')[1]!;
    const csv = (await runCli(usageCommand, ['--config', config, '--by', 'group', '--csv'])).out.split('\n')[0]!;
    const words = (line: string) => line.trim().split(/\s{2,}/);
    const shownTable = section.split('\n').find((l) => l.startsWith('SUBJECT '));
    assert.deepEqual(words(shownTable ?? ''), words(table));
    assert.ok(section.split('\n').includes(csv), `the CSV transcript starts with ${csv}`);
    assert.match(section, /^\$ modelgate usage --config modelgate\.yaml --by subject,model$/m);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
