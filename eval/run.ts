// `npm run eval [-- DIR]`: precision and recall per entity type and the
// prompt-injection rates on a labelled corpus, default ../shared/eval/ next
// to the project. Prints a table, then one JSON object as the last line.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { corpusFile, evaluateDir, formatReport, summary } from './score.js';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const argument = process.argv.slice(2).find((a) => !a.startsWith('-'));
const dir = argument === undefined ? resolve(projectRoot, '..', 'shared', 'eval') : resolve(argument);

if (!existsSync(dir)) {
  console.log(`eval skipped: no corpus folder at ${dir} (pass another folder with: npm run eval -- DIR)`);
  process.exit(0);
}
if (corpusFile(dir, 'pii') === undefined && corpusFile(dir, 'injection') === undefined) {
  console.log(`eval skipped: ${dir} holds none of pii.jsonl, injection.jsonl, pii_dev.jsonl, injection_dev.jsonl`);
  process.exit(0);
}

const report = evaluateDir(dir);
console.log(formatReport(report));
console.log(JSON.stringify(summary(report)));
