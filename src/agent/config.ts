// The `agents:` section: where the gateway accepts agent tunnels and how it
// watches them. Cleartext tunnels are allowed only on a loopback address.
import { z } from 'zod';
import { duration } from '../config/fields.js';
import { DEFAULT_HEARTBEAT } from './heartbeat.js';

export const LOOPBACK_HOSTS = ['127.0.0.1', '::1', 'localhost'];

const routingSchema = z
  .object({
    /** The internal listener other instances forward requests to; never expose it to clients. */
    listen: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8444),
      })
      .strict()
      .prefault({}),
    /** How other instances reach this one's internal listener (its own address on the private network). */
    advertise_url: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
    /** Shared by every instance: signs each forwarded request. Use `${ENV}`; at least 32 characters. */
    secret: z.string().min(32, 'must be at least 32 characters (e.g. `openssl rand -base64 48`)'),
    /** An instance's claim to its agents lapses this long after its last heartbeat (a killed instance is forgotten). */
    lease: duration.prefault('15s'),
    /** PEM files for the internal listener and the CA that signed the peers' certificates; required unless it listens on loopback. */
    tls: z
      .object({
        cert_file: z.string().min(1),
        key_file: z.string().min(1),
        ca_file: z.string().min(1).optional(),
        /** The name peers' certificates are checked against, when they advertise addresses a certificate cannot name (pod IPs): one certificate for every instance. */
        server_name: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((routing, ctx) => {
    if (!routing.tls && !LOOPBACK_HOSTS.includes(routing.listen.host)) {
      ctx.addIssue({ code: 'custom', path: ['tls'], message: `the routing listener on ${routing.listen.host} needs TLS (tls.cert_file and key_file): forwarded requests carry prompts` });
    }
    if (!routing.advertise_url && ['0.0.0.0', '::'].includes(routing.listen.host)) {
      ctx.addIssue({ code: 'custom', path: ['advertise_url'], message: `listening on ${routing.listen.host}, other instances need advertise_url to reach this one` });
    }
    if (routing.lease < 1000) ctx.addIssue({ code: 'custom', path: ['lease'], message: 'must be at least 1s' });
  });

export type RoutingConfig = z.output<typeof routingSchema>;

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
    heartbeat_interval: duration.prefault(`${DEFAULT_HEARTBEAT.intervalMs}ms`),
    /** Long: a gateway or agent busy with a burst is silent for seconds (DEFAULT_HEARTBEAT). */
    heartbeat_timeout: duration.prefault(`${DEFAULT_HEARTBEAT.timeoutMs}ms`),
    /** Many instances: a request reaches an agent held by another instance through that instance. */
    routing: routingSchema.optional(),
  })
  .strict()
  .superRefine((agents, ctx) => {
    if (!agents.tls && !LOOPBACK_HOSTS.includes(agents.listen.host)) {
      ctx.addIssue({ code: 'custom', path: ['tls'], message: `agent tunnels on ${agents.listen.host} need TLS (agents.tls.cert_file and key_file); cleartext is allowed only on loopback` });
    }
  });

export type AgentsConfig = z.output<typeof agentsSchema>;
