// Runs a CLI command in this process and captures what it prints, as a
// person at a terminal would see it. A usage error rejects (main.ts turns it into exit 2).
import { runCommand, type Command } from '../../src/cli/command.js';

export async function runCli(command: Command, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const write = process.stdout.write;
  const error = console.error;
  // The CLI writes strings; the test runner's own messages to its parent are binary and must pass through.
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) =>
    typeof chunk === 'string' ? (out.push(chunk), true) : write.call(process.stdout, chunk, ...rest)) as typeof process.stdout.write;
  console.error = (...parts: unknown[]) => void err.push(parts.join(' '));
  try {
    const code = await runCommand(command, args);
    return { code, out: out.join(''), err: err.join('\n') };
  } finally {
    process.stdout.write = write;
    console.error = error;
  }
}
