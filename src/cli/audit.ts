// `modelgate audit verify`: checks the audit trail's hash chain and names
// every record edited, inserted, deleted or moved outside the gateway.
import { verify } from '../audit/verify.js';
import { UsageError, type Command } from './command.js';
import { EXIT_CONFIG } from './gateway.js';
import { paint } from './paint.js';
import { auditConfigOption, openArchive } from './sessions.js';

export const auditCommand: Command = {
  name: 'audit',
  summary: 'Verify the tamper-evident audit trail.',
  usage: 'modelgate audit verify [--config modelgate.yaml] [--expect-head SEQ:HASH] [--json]',
  options: {
    config: auditConfigOption,
    'expect-head': { type: 'string', description: 'A head printed by an earlier verify, kept elsewhere: proves nothing before it was rewritten', valueName: 'seq:hash' },
    json: { type: 'boolean', description: 'Machine-readable output' },
  },
  async run(values, positionals) {
    if (positionals.length !== 1 || positionals[0] !== 'verify') throw new UsageError('the only subcommand is "verify"');
    let expectHead: { seq: number; hash: string } | undefined;
    if (typeof values['expect-head'] === 'string') {
      const match = /^(\d+):([0-9a-f]{64})$/.exec(values['expect-head']);
      if (!match) throw new UsageError('--expect-head must look like 1234:<64 hex digits>');
      expectHead = { seq: Number(match[1]), hash: match[2]! };
    }
    const opened = await openArchive(values);
    if (!opened) return EXIT_CONFIG;
    const store = opened.archive.store;
    try {
      const result = await verify(store, { expectHead });
      if (values.json) {
        console.log(JSON.stringify(result, null, 2));
      } else if (result.ok) {
        console.log(`${paint.green('audit trail verified')}: ${result.checked} event(s), ${result.sessions} session(s); head ${result.head.seq}:${result.head.hash}`);
      } else {
        console.log(`${paint.red('audit trail FAILED verification')}: ${result.problems.length}${result.truncated ? '+' : ''} problem(s) in ${result.checked} event(s)`);
        for (const p of result.problems) {
          console.log(`  ${paint.bold(p.kind.padEnd(9))} ${p.seq === null ? '' : `event ${p.seq} `}${p.sessionId ? `session ${p.sessionId} ` : ''}- ${p.detail}`);
        }
      }
      return result.ok ? 0 : 1;
    } finally {
      await store.close();
    }
  },
};
