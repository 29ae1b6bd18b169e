// `modelgate access ...`: ask for temporary access to a connection (a review
// approvers decide), optionally wait for the decision, and list the grants
// that are running.
import { setTimeout as sleep } from 'node:timers/promises';
import { parseDuration } from '../config/units.js';
import { UsageError, type Command, type OptionValues as Values } from './command.js';
import { gatewayApiOptions, withGatewayApi, type GatewayApi } from './gateway-api.js';
import { paint } from './paint.js';
import { isoTime, printTable, rejection, reviewPath, span, stateLabel, who, type ReviewList, type ReviewView } from './review-view.js';
import { printable } from './terminal-text.js';

const SUBCOMMANDS = ['request', 'grants'] as const;
const POLL_MS = 1_000;
const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export const accessCommand: Command = {
  name: 'access',
  summary: 'Request temporary access to a connection, and list your running grants.',
  usage: [
    'modelgate access request --connection NAME --for 1h --reason TEXT [--wait[=10m]] [--json]',
    '       modelgate access grants [--json]',
  ].join('\n'),
  options: {
    ...gatewayApiOptions,
    connection: { type: 'string', description: 'request: the connection you need', valueName: 'name' },
    for: { type: 'string', description: 'request: how long the grant should last once approved (30m, 1h, 1d)', valueName: 'duration' },
    reason: { type: 'string', description: 'request: why; approvers decide on it', valueName: 'text' },
    wait: { type: 'string', description: 'request: wait this long for the decision; exit 0 only if approved', valueName: 'duration', bareValue: '10m' },
  },
  async run(values, positionals) {
    const [sub, ...args] = positionals;
    if (!sub || !(SUBCOMMANDS as readonly string[]).includes(sub)) throw new UsageError(`choose one of: ${SUBCOMMANDS.join(', ')}`);
    if (args.length > 0) throw new UsageError(`${sub} takes no arguments (got "${args.join(' ')}")${values.wait !== undefined ? '; give --wait a value as --wait=5m' : ''}`);
    if (sub === 'grants') {
      for (const option of ['connection', 'for', 'reason', 'wait'] as const) {
        if (values[option] !== undefined) throw new UsageError(`--${option} goes with "access request"`);
      }
      return withGatewayApi('access', values, (api) => grants(api, values));
    }
    const request = accessRequest(values);
    return withGatewayApi('access', values, (api) => requestAccess(api, request, values));
  },
};

interface AccessRequest {
  body: { connection: string; duration: string; reason: string };
  waitMs?: number;
}

function accessRequest(values: Values): AccessRequest {
  const connection = values.connection;
  const duration = values.for;
  const reason = typeof values.reason === 'string' ? values.reason.trim() : undefined;
  if (typeof connection !== 'string' || connection === '') throw new UsageError('request needs --connection NAME: the connection you need access to');
  if (typeof duration !== 'string') throw new UsageError('request needs --for DURATION: how long you need access, e.g. 1h');
  const ms = parseDuration(duration);
  if (ms === undefined || ms < 1_000) throw new UsageError(`--for "${duration}" is not a duration of at least 1s: use e.g. 30m, 1h or 1d`);
  if (!reason) throw new UsageError('request needs --reason TEXT: approvers decide on it');
  let waitMs: number | undefined;
  if (typeof values.wait === 'string') {
    waitMs = parseDuration(values.wait);
    if (waitMs === undefined || waitMs <= 0) throw new UsageError(`--wait "${values.wait}" is not a duration: use e.g. --wait=5m`);
  }
  return { body: { connection, duration, reason }, ...(waitMs !== undefined && { waitMs }) };
}

async function requestAccess(api: GatewayApi, request: AccessRequest, values: Values): Promise<number> {
  const created = await api.post<ReviewView>('/v1/access/requests', request.body);
  if (request.waitMs === undefined) {
    if (values.json) console.log(JSON.stringify(created, null, 2));
    else printRequested(created);
    return 0;
  }
  if (!values.json) printRequested(created);
  const decided = await waitForDecision(api, created, request.waitMs);
  if (values.json) console.log(JSON.stringify(decided, null, 2));
  else console.log(outcome(decided));
  return decided.state === 'approved' ? 0 : 1;
}

function printRequested(r: ReviewView): void {
  const needed = r.approvers.required === 1 ? 'one approver' : `${r.approvers.required} approvers`;
  console.log(
    [
      `${paint.bold('requested')} ${r.grant ? span(r.grant.duration_ms) : ''} of access to ${r.connection}: review ${r.id}`,
      `  ${r.url}`,
      `  asked ${needed} from ${r.approvers.groups.join(' or ')}; the review expires at ${isoTime(r.expires_at)} if no one decides`,
    ].join('\n'),
  );
}

/** Polls the review until it is decided or `waitMs` has passed; a spinner on a terminal only. */
async function waitForDecision(api: GatewayApi, created: ReviewView, waitMs: number): Promise<ReviewView> {
  const started = Date.now();
  const deadline = started + waitMs;
  const tty = Boolean(process.stderr.isTTY) && process.env.TERM !== 'dumb';
  let review = created;
  let frame = 0;
  const spin = tty ? setInterval(() => process.stderr.write(`\r${SPINNER[frame++ % SPINNER.length]} waiting for an approver (${span(Date.now() - started)})  `), 100) : undefined;
  try {
    while (review.state === 'pending' && review.expires_at > Date.now() && Date.now() < deadline) {
      await sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())));
      review = await api.get<ReviewView>(reviewPath(created.id));
    }
  } finally {
    if (spin) {
      clearInterval(spin);
      process.stderr.write('\r\x1b[2K');
    }
  }
  return review;
}

function outcome(r: ReviewView): string {
  const approvers = r.votes.filter((v) => v.decision === 'approve').map((v) => `${who(v.by)}${v.comment ? ` (${printable(JSON.stringify(v.comment))})` : ''}`);
  switch (r.state) {
    case 'approved':
      return `${stateLabel('approved')} by ${approvers.join(', ')}: access to ${r.connection} until ${r.grant?.expires_at ? isoTime(r.grant.expires_at) : '?'}`;
    case 'rejected':
      return paint.red(rejection(r));
    case 'pending':
      return r.expires_at > Date.now()
        ? `still pending (${r.approvals} of ${r.approvers.required} approvals); see: modelgate reviews show ${r.id}`
        : `${stateLabel('expired')}: no one decided review ${r.id} in time`;
    default:
      return `review ${r.id} is ${stateLabel(r.state)}`;
  }
}

async function grants(api: GatewayApi, values: Values): Promise<number> {
  const page = await api.get<ReviewList>('/v1/access/grants');
  if (values.json) {
    console.log(JSON.stringify(page.data, null, 2));
    return 0;
  }
  if (page.data.length === 0) {
    console.log('no running grants');
    return 0;
  }
  const now = Date.now();
  printTable(
    ['ID', 'CONNECTION', 'UNTIL', 'LEFT', 'APPROVED BY'],
    page.data.map((r) => {
      const until = r.grant?.expires_at ?? now;
      return [r.id, r.connection, isoTime(until), span(until - now), r.votes.filter((v) => v.decision === 'approve').map((v) => who(v.by)).join(', ')];
    }),
  );
  return 0;
}
