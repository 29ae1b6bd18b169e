// `modelgate` commands as real processes from the compiled bin (run
// `npx tsc -p tsconfig.build.json` first), with their JSON log lines to
// wait on. MODELGATE_TEST_LOG=1 echoes every line to stderr.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** How long a wait for a log line may take: generous for a loaded machine, short of the test file's own timeout. */
const LOG_LINE_DEADLINE_MS = 90_000;

export const BIN = fileURLToPath(new URL('../../bin/modelgate.js', import.meta.url));

export interface Running {
  child: ChildProcess;
  /** Every JSON log line so far. */
  lines: Array<Record<string, unknown>>;
  /** Resolves with the first log line whose `msg` is `msg` (and that `where` accepts); rejects if the process exits first. */
  logLine(msg: string, where?: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  /** Resolves with `count` such lines. */
  logLines(msg: string, count: number): Promise<Array<Record<string, unknown>>>;
  exited: Promise<number | null>;
}

export function startModelgate(args: string[], env: NodeJS.ProcessEnv = {}): Running {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (process.env.MODELGATE_TEST_LOG) console.error(`[${args[0]} ${child.pid}] ${line.slice(0, 400)}`);
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      return;
    }
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const logLines = async (msg: string, count: number, where: (line: Record<string, unknown>) => boolean = () => true) => {
    // A line that never comes is a failure of its own, not the test file's timeout (and its processes left running).
    const deadline = Date.now() + LOG_LINE_DEADLINE_MS;
    for (;;) {
      const found = lines.filter((l) => l.msg === msg && where(l));
      if (found.length >= count) return found;
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`modelgate ${args[0]} exited (${child.exitCode ?? child.signalCode}) before logging "${msg}" ${count} time(s)`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`modelgate ${args[0]} did not log "${msg}" ${count} time(s) within ${LOG_LINE_DEADLINE_MS / 1000} s (${found.length} so far)`);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([new Promise<void>((r) => waiters.push(r)), exited, new Promise<void>((r) => (timer = setTimeout(r, left)))]);
      clearTimeout(timer);
    }
  };
  return {
    child,
    lines,
    logLine: async (msg, where) => (await logLines(msg, 1, where))[0]!,
    logLines: (msg, count) => logLines(msg, count),
    exited,
  };
}
