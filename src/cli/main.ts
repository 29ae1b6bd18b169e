// modelgate's command-line entry point.
import { readFileSync } from 'node:fs';
import { runCommand, UsageError, type Command } from './command.js';
import { devCommand } from './dev.js';
import { connectCommand } from './connect.js';
import { gatewayCommand } from './gateway.js';
import { loginCommand, logoutCommand } from './login.js';
import { auditCommand } from './audit.js';
import { policyCommand } from './policy.js';
import { sessionsCommand } from './sessions.js';
import { usageCommand } from './usage.js';
import { revokeTokensCommand } from './revoke-tokens.js';
import { tokenCommand } from './token.js';
import { whoamiCommand } from './whoami.js';
import { reviewsCommand } from './reviews.js';
import { accessCommand } from './access.js';
import { agentCommand } from './agent.js';
import { agentsCommand } from './agents.js';
import { keysCommand } from './keys.js';

const COMMANDS: readonly Command[] = [devCommand, gatewayCommand, loginCommand, logoutCommand, whoamiCommand, tokenCommand, connectCommand, revokeTokensCommand, policyCommand, sessionsCommand, usageCommand, auditCommand, reviewsCommand, accessCommand, agentCommand, agentsCommand, keysCommand];

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    'modelgate: an identity-aware gateway for self-hosted LLMs',
    '',
    'Usage: modelgate <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    'Run "modelgate <command> --help" for a command\'s options.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === 'version') {
    console.log(VERSION);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    console.error(`modelgate: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  try {
    return await runCommand(command, rest);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`modelgate ${name}: ${err.message}`);
      return 2;
    }
    throw err;
  }
}
