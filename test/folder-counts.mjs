// A node:test reporter that counts leaf tests by the folder under test/ that
// holds their file, and writes the counts as JSON for test/run.mjs to print.
// A file that fails as a whole (a timeout, a crash) counts as one failure.
import { relative, resolve, sep } from 'node:path';

const root = resolve('test');

export default async function* folderCounts(source) {
  const folders = {};
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { data } = event;
    if (data.details?.type === 'suite') continue;
    const file = data.file ? relative(root, data.file) : '(unknown)';
    const folder = file.includes(sep) ? file.split(sep)[0] : '.';
    const counts = (folders[folder] ??= { passed: 0, failed: 0, skipped: 0 });
    if (event.type === 'test:fail') counts.failed++;
    else if (data.skip || data.todo) counts.skipped++;
    else counts.passed++;
  }
  yield JSON.stringify(folders);
}
