// The benches run the gateway from dist/: staleBuild names a source file
// whose build is missing or older, so a bench refuses to measure old code.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { staleBuild } from '../../bench/targets.js';

test('a source file newer than its build, or without one, is named; a current build passes', () => {
  const root = mkdtempSync(join(tmpdir(), 'modelgate-stale-build-'));
  try {
    const at = (path: string, seconds: number): void => {
      mkdirSync(join(root, path, '..'), { recursive: true });
      writeFileSync(join(root, path), '');
      utimesSync(join(root, path), seconds, seconds);
    };
    at('src/a.ts', 1_000);
    at('src/types.d.ts', 5_000);
    at('src/pipeline/relay.ts', 1_000);
    at('dist/a.js', 2_000);
    at('dist/pipeline/relay.js', 2_000);
    assert.equal(staleBuild(root), undefined);

    utimesSync(join(root, 'src/pipeline/relay.ts'), 3_000, 3_000);
    assert.equal(staleBuild(root), join('src', 'pipeline', 'relay.ts'));

    utimesSync(join(root, 'src/pipeline/relay.ts'), 1_000, 1_000);
    rmSync(join(root, 'dist/a.js'));
    assert.equal(staleBuild(root), join('src', 'a.ts'));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
