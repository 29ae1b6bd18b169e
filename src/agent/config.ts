// The `agents:` section: where the gateway accepts agent tunnels and how it
// watches them. Cleartext tunnels are allowed only on a loopback address.
import { z } from 'zod';
import { duration } from '../config/fields.js';

export const LOOPBACK_HOSTS = ['127.0.0.1', '::1', 'localhost'];

export const agentsSchema = z
  .object({
    /** The tunnel listener, separate from the client API so it can be exposed (or firewalled) on its own. */
    listen: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8443),
      })
      .strict()
      .prefault({}),
    /** PEM files for the tunnel listener; required unless it listens on loopback. */
    tls: z.object({ cert_file: z.string().min(1), key_file: z.string().min(1) }).strict().optional(),
    /** How often connected agents' keys are re-read, so a revocation or a rotated key's expiry cuts them. */
    key_check_interval: duration.prefault('1s'),
    /** HTTP/2 PING to each agent this often; no answer within `heartbeat_timeout` closes the tunnel. */
    heartbeat_interval: duration.prefault('10s'),
    heartbeat_timeout: duration.prefault('5s'),
  })
  .strict()
  .superRefine((agents, ctx) => {
    if (!agents.tls && !LOOPBACK_HOSTS.includes(agents.listen.host)) {
      ctx.addIssue({ code: 'custom', path: ['tls'], message: `agent tunnels on ${agents.listen.host} need TLS (agents.tls.cert_file and key_file); cleartext is allowed only on loopback` });
    }
  });

export type AgentsConfig = z.output<typeof agentsSchema>;
