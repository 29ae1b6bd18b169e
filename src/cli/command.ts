// A tiny command framework over node:util parseArgs: every command declares
// its options once, and gets --help and clear errors for unknown flags.
import { parseArgs, type ParseArgsConfig } from 'node:util';

type OptionSpec = NonNullable<ParseArgsConfig['options']>[string] & { description: string; valueName?: string };

export interface Command<Options extends Record<string, OptionSpec> = Record<string, OptionSpec>> {
  name: string;
  summary: string;
  usage: string;
  options: Options;
  run(values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<number | void>;
}

export class UsageError extends Error {}

export function helpText(command: Command): string {
  const lines = [`${command.summary}`, '', `Usage: ${command.usage}`, '', 'Options:'];
  const entries = Object.entries({ ...command.options, help: { type: 'boolean', description: 'Show this help' } as OptionSpec });
  const labels = entries.map(([name, spec]) => `  ${spec.short ? `-${spec.short}, ` : '    '}--${name}${spec.type === 'string' ? ` <${spec.valueName ?? 'value'}>` : ''}`);
  const width = Math.max(...labels.map((l) => l.length)) + 2;
  entries.forEach(([, spec], i) => {
    const fallback = spec.default !== undefined ? ` (default: ${String(spec.default)})` : '';
    lines.push(`${labels[i]!.padEnd(width)}${spec.description}${fallback}`);
  });
  return lines.join('\n');
}

export async function runCommand(command: Command, argv: string[]): Promise<number> {
  let parsed;
  try {
    const options = Object.fromEntries(
      Object.entries(command.options).map(([name, { description: _d, valueName: _v, ...spec }]) => [name, spec]),
    );
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\nRun "modelgate ${command.name} --help" for usage.`);
  }
  if (parsed.values.help) {
    console.log(helpText(command));
    return 0;
  }
  return (await command.run(parsed.values as Record<string, string | boolean | undefined>, parsed.positionals)) ?? 0;
}
