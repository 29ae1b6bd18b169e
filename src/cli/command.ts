// A tiny command framework over node:util parseArgs: every command declares
// its options once, and gets --help and clear errors for unknown flags.
import { parseArgs, type ParseArgsConfig } from 'node:util';

type OptionSpec = NonNullable<ParseArgsConfig['options']>[string] & {
  description: string;
  valueName?: string;
  /** A string option that may also be given bare (`--wait`), meaning this value; a value then needs `--wait=5m`. */
  bareValue?: string;
};

/** Parsed option values, by option name. */
export type OptionValues = Record<string, string | boolean | undefined>;

export interface Command<Options extends Record<string, OptionSpec> = Record<string, OptionSpec>> {
  name: string;
  summary: string;
  usage: string;
  options: Options;
  run(values: OptionValues, positionals: string[]): Promise<number | void>;
}

export class UsageError extends Error {}

/**
 * `--config`/`-c`, the gateway's configuration file, for every command that
 * reads it; `description` says what of it the command uses.
 */
export function configOption(description: string) {
  return { type: 'string', short: 'c', description, valueName: 'file', default: process.env.MODELGATE_CONFIG ?? 'modelgate.yaml' } as const;
}

export function helpText(command: Command): string {
  const lines = [`${command.summary}`, '', `Usage: ${command.usage}`, '', 'Options:'];
  const entries = Object.entries({ ...command.options, help: { type: 'boolean', description: 'Show this help' } as OptionSpec });
  const valueLabel = (spec: OptionSpec) => (spec.bareValue !== undefined ? `[=<${spec.valueName ?? 'value'}>]` : ` <${spec.valueName ?? 'value'}>`);
  const labels = entries.map(([name, spec]) => `  ${spec.short ? `-${spec.short}, ` : '    '}--${name}${spec.type === 'string' ? valueLabel(spec) : ''}`);
  const width = Math.max(...labels.map((l) => l.length)) + 2;
  entries.forEach(([, spec], i) => {
    const fallback = spec.default !== undefined ? ` (default: ${String(spec.default)})` : spec.bareValue !== undefined ? ` (alone: ${spec.bareValue})` : '';
    lines.push(`${labels[i]!.padEnd(width)}${spec.description}${fallback}`);
  });
  return lines.join('\n');
}

/** `--wait` alone becomes `--wait=<bareValue>`; arguments after `--` are left alone. */
function expandBareValues(command: Command, argv: string[]): string[] {
  const end = argv.indexOf('--');
  return argv.map((arg, i) => {
    const spec = arg.startsWith('--') && (end === -1 || i < end) ? command.options[arg.slice(2)] : undefined;
    return spec?.bareValue !== undefined ? `${arg}=${spec.bareValue}` : arg;
  });
}

export async function runCommand(command: Command, argv: string[]): Promise<number> {
  let parsed;
  try {
    const options = Object.fromEntries(
      Object.entries(command.options).map(([name, { description: _d, valueName: _v, bareValue: _b, ...spec }]) => [name, spec]),
    );
    parsed = parseArgs({ args: expandBareValues(command, argv), options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\nRun "modelgate ${command.name} --help" for usage.`);
  }
  if (parsed.values.help) {
    console.log(helpText(command));
    return 0;
  }
  return (await command.run(parsed.values as OptionValues, parsed.positionals)) ?? 0;
}
