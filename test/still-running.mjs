// A node:test reporter for test/run.mjs: when a test file is stopped as a
// whole (its timeout, a crash), names the tests inside it that had started
// and not finished, so a hang says where it is. node:test itself reports only
// the file. Prints nothing otherwise.
// A test has started at its `test:dequeue` event and finished at its
// `test:complete` one; a file's child-process events may reach the runner
// only once the file is over, but always before the file's own `test:fail`.
import { relative } from 'node:path';

export default async function* stillRunning(source) {
  /** Per file, the tests started and not finished, in start order. */
  const running = new Map();
  const key = (data) => `${data.nesting}\0${data.name}\0${data.line}:${data.column}`;
  for await (const { type, data } of source) {
    if (!data?.file) continue;
    const isFile = data.nesting === 0 && data.name === data.file;
    if (type === 'test:dequeue' && !isFile) {
      if (!running.has(data.file)) running.set(data.file, new Map());
      running.get(data.file).set(key(data), data);
    } else if (type === 'test:complete' && !isFile) {
      running.get(data.file)?.delete(key(data));
    } else if (type === 'test:fail' && isFile) {
      const unfinished = [...(running.get(data.file)?.values() ?? [])];
      if (unfinished.length === 0) continue;
      const why = data.details?.error?.failureType === 'testTimeoutFailure' ? 'stopped at its timeout' : 'stopped as a whole';
      yield `\n${relative(process.cwd(), data.file)} was ${why} while these tests were still running:\n`;
      for (const test of unfinished) yield `${'  '.repeat(test.nesting + 1)}${test.name} (line ${test.line})\n`;
    }
  }
}
