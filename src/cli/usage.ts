// `modelgate usage`: requests, tokens and cost per subject, group,
// connection and/or model over a period, straight from the session store
// named in the gateway's config (the same numbers GET /v1/usage serves).
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { usageQueryFrom } from '../usage/api.js';
import { usageSchema } from '../usage/config.js';
import { CostTable } from '../usage/costs.js';
import { usageReport, type UsageReport } from '../usage/report.js';
import { GatewayError } from '../http/errors.js';
import { UsageError, type Command, type OptionValues } from './command.js';
import { EXIT_CONFIG } from './gateway.js';
import { printTable } from './review-view.js';
import { auditConfigOption, openArchive } from './sessions.js';
import { printable } from './terminal-text.js';

export const usageCommand: Command = {
  name: 'usage',
  summary: 'Tokens, requests and cost per subject, group, connection or model over a period, from the session store.',
  usage: 'modelgate usage [--by subject,group,connection,model] [--since T] [--until T] [--subject S] [--group G] [--connection C] [--model M] [--json | --csv]',
  options: {
    config: auditConfigOption,
    by: { type: 'string', description: 'Group rows by these, comma-separated: subject, group, connection, model', valueName: 'dims', default: 'subject' },
    since: { type: 'string', description: 'From this time: ISO 8601, epoch ms, or ago (24h, 7d)', valueName: 'time', default: '30d' },
    until: { type: 'string', description: 'Before this time (default: now)', valueName: 'time' },
    subject: { type: 'string', description: 'Only this subject', valueName: 'sub' },
    group: { type: 'string', description: 'Only members of this group', valueName: 'group' },
    connection: { type: 'string', description: 'Only this connection', valueName: 'name' },
    model: { type: 'string', description: 'Only this model', valueName: 'name' },
    json: { type: 'boolean', description: 'The report as JSON (the shape GET /v1/usage returns)' },
    csv: { type: 'boolean', description: 'The rows as CSV' },
  },
  async run(values) {
    if (values.json && values.csv) throw new UsageError('use one of --json or --csv');
    const params = new URLSearchParams();
    for (const key of ['by', 'since', 'until', 'subject', 'group', 'connection', 'model']) {
      const value = values[key];
      if (typeof value === 'string') params.set(key, value);
    }
    let query;
    try {
      query = usageQueryFrom(params, Date.now());
    } catch (err) {
      if (err instanceof GatewayError) throw new UsageError(err.message.replaceAll('"', '--').replace(/^--(\w+)--/, '--$1'));
      throw err;
    }
    const costs = await costsFrom(values);
    if (!costs) return EXIT_CONFIG;
    const opened = await openArchive(values);
    if (!opened) return EXIT_CONFIG;
    try {
      const report = await usageReport(opened.archive.store, query, costs.table, costs.currency);
      if (values.json) console.log(JSON.stringify(report, null, 2));
      else if (values.csv) process.stdout.write(csv(report));
      else printReport(report);
    } finally {
      await opened.archive.store.close();
    }
  },
};

/** Prices from the config's `usage:` section (nothing else of the file is needed). */
async function costsFrom(values: OptionValues): Promise<{ table: CostTable; currency: string } | undefined> {
  const path = String(values.config);
  let root: Record<string, unknown> = {};
  try {
    root = (parseYaml(await readFile(path, 'utf8')) ?? {}) as Record<string, unknown>;
  } catch (err) {
    console.error(`modelgate: ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message.split('\n')[0]}`);
    return undefined;
  }
  const parsed = usageSchema.safeParse(root.usage ?? {});
  if (!parsed.success) {
    console.error(parsed.error.issues.map((i) => `modelgate: ${path}: usage.${i.path.join('.')}: ${i.message}`).join('\n'));
    return undefined;
  }
  return { table: new CostTable(parsed.data), currency: parsed.data.currency };
}

const NUMBER_COLUMNS = ['requests', 'limited', 'prompt_tokens', 'completion_tokens', 'total_tokens', 'estimated_requests', 'cost'] as const;

/** Marks token counts that include estimates (`~1234`), explained under the table. */
const ESTIMATED = '~';

function printReport(report: UsageReport): void {
  const header = [...report.by.map((d) => d.toUpperCase()), 'REQUESTS', 'LIMITED', 'PROMPT', 'COMPLETION', 'TOTAL', `COST (${report.currency})`];
  const cells = (row: UsageReport['total'], labels: string[]) => {
    const tokens = (n: number) => `${row.estimated_requests > 0 ? ESTIMATED : ''}${n}`;
    return [...labels, String(row.requests), String(row.limited), tokens(row.prompt_tokens), tokens(row.completion_tokens), tokens(row.total_tokens), row.cost.toFixed(6)];
  };
  const rows = report.rows.map((row) => cells(row, report.by.map((d) => printable(row[d] || '-'))));
  rows.push(cells(report.total, report.by.map((_, i) => (i === 0 ? 'total' : ''))));
  console.log(`Usage from ${report.since} to ${report.until}`);
  printTable(header, rows);
  const estimated = report.total.estimated_requests;
  if (estimated > 0) {
    console.log(`${ESTIMATED} includes tokens estimated from text: the model server reported no usage for ${estimated} request${estimated === 1 ? '' : 's'}.`);
  }
}

function csv(report: UsageReport): string {
  const quote = (v: string) => (/[",\n\r]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);
  const lines = [[...report.by, ...NUMBER_COLUMNS].join(',')];
  for (const row of report.rows) lines.push([...report.by.map((d) => quote(row[d] ?? '')), ...NUMBER_COLUMNS.map((c) => String(row[c]))].join(','));
  return `${lines.join('\n')}\n`;
}
