// `npm run eval [-- DIR]`: precision and recall per entity type and the
// prompt-injection rates on a labelled corpus, default ../shared/eval/ next
// to the project. Prints a table, then one JSON object as the last line.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { evaluateDir, formatReport, summary } from './score.js';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const argument = process.argv.slice(2).find((a) => !a.startsWith('-'));
const dir = argument === undefined ? resolve(projectRoot, '..', 'shared', 'eval') : resolve(argument);

if (!existsSync(dir)) {
  console.log(`eval skipped: no corpus folder at ${dir} (pass another folder with: npm run eval -- DIR)`);
  process.exit(0);
}
if (!existsSync(resolve(dir, 'pii.jsonl')) && !existsSync(resolve(dir, 'injection.jsonl'))) {
  console.log(`eval skipped: ${dir} holds neither pii.jsonl nor injection.jsonl`);
  process.exit(0);
}

const report = evaluateDir(dir);
console.log(formatReport(report));
console.log(JSON.stringify(summary(report)));
