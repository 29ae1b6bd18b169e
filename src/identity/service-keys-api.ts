// The service-key HTTP API, for administrators (members of
// identity.service_keys.admin_groups). `modelgate keys` is built on it.
// A key is in the answer to create and rotate only; nothing else ever shows
// more than its id.
//
//   GET  /v1/service-keys                       every key, newest first (no hashes)
//   POST /v1/service-keys                       {"name", "groups": [..], "expires": "90d", "owner"?}
//   POST /v1/service-keys/:name/rotate          {"overlap"?: "24h", "expires"?: "90d"}
//   POST /v1/service-keys/:name/revoke          {"key_id"?}: one key, else all of the identity's
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ServiceKeysConfig } from '../config/identity-schema.js';
import { parseDuration } from '../config/units.js';
import { badRequest, GatewayError, methodNotAllowed } from '../http/errors.js';
import { jsonObjectBody, optionalString } from '../http/read-json-body.js';
import { sendJson } from '../http/send.js';
import type { Logger } from '../ops/logger.js';
import { personIssuer, type Principal } from './principal.js';
import { describeServiceKey, type ServiceKeys } from './service-keys.js';

export interface ServiceKeysApiContext {
  keys: ServiceKeys;
  config: ServiceKeysConfig;
  principal: Principal;
  maxBodyBytes: number;
  log: Logger;
}

export function isServiceKeysApiPath(path: string): boolean {
  return path === '/v1/service-keys' || path.startsWith('/v1/service-keys/');
}

export async function handleServiceKeysApi(req: IncomingMessage, res: ServerResponse, path: string, ctx: ServiceKeysApiContext): Promise<void> {
  requireAdmin(ctx);
  const method = req.method ?? 'GET';
  const now = Date.now();
  if (path === '/v1/service-keys') {
    if (method === 'GET') return sendJson(res, 200, { object: 'list', data: (await ctx.keys.list()).map((r) => describeServiceKey(r, now)) });
    if (method !== 'POST') throw methodNotAllowed('GET, POST');
    const body = await jsonObjectBody(req, ctx.maxBodyBytes);
    const name = optionalString(body, 'name');
    if (!name) throw badRequest('invalid_body', '"name" is required: the service identity\'s name.', 'name');
    const ownerSubject = optionalString(body, 'owner')?.trim();
    // A named owner is a person at the administrator's own IdP, never at the gateway (a browser or `modelgate login` token).
    const owner = ownerSubject ? { issuer: personIssuer(ctx.principal), subject: ownerSubject } : ownerOf(ctx.principal);
    const { record, key } = await ctx.keys.create({ name, groups: stringList(body, 'groups'), owner, ...lifetime(body, 'expires') }, ctx.config);
    ctx.log.info({ service: name, key_id: record.id, groups: record.groups, owner: owner.subject, by: ctx.principal.subject }, 'service key created');
    return sendJson(res, 201, { ...describeServiceKey(record, now), key }, { 'cache-control': 'no-store' });
  }
  const match = /^\/v1\/service-keys\/([^/]+)\/(rotate|revoke)$/.exec(path);
  if (!match) throw new GatewayError(`No such service-key API: ${path}.`, { status: 404, type: 'not_found_error', code: 'not_found' });
  if (method !== 'POST') throw methodNotAllowed('POST');
  const name = decodeURIComponent(match[1]!);
  const body = await jsonObjectBody(req, ctx.maxBodyBytes);
  if (match[2] === 'rotate') {
    const overlap = lifetime(body, 'overlap', true).lifetimeMs;
    const { record, key, oldKeysEndAt } = await ctx.keys.rotate(name, { ...(overlap !== undefined && { overlapMs: overlap }), ...lifetime(body, 'expires') }, ctx.config);
    ctx.log.info({ service: name, key_id: record.id, old_keys_end_at: oldKeysEndAt, by: ctx.principal.subject }, 'service key rotated');
    return sendJson(res, 201, { ...describeServiceKey(record, now), key, old_keys_end_at: oldKeysEndAt }, { 'cache-control': 'no-store' });
  }
  const keyId = optionalString(body, 'key_id');
  const revoked = await ctx.keys.revoke(name, keyId);
  ctx.log.info({ service: name, key_id: keyId, revoked, by: ctx.principal.subject }, 'service key revoked');
  return sendJson(res, 200, { name, revoked });
}

function requireAdmin(ctx: ServiceKeysApiContext): void {
  const admins = ctx.config.admin_groups;
  if (admins.length === 0) {
    throw new GatewayError('Service keys are managed by members of identity.service_keys.admin_groups, and this gateway names none.', {
      status: 403,
      type: 'permission_error',
      code: 'service_keys_admin_required',
    });
  }
  if (!ctx.principal.groups.some((g) => admins.includes(g))) {
    throw new GatewayError(`Only members of ${admins.join(' or ')} may manage service keys.`, { status: 403, type: 'permission_error', code: 'service_keys_admin_required' });
  }
}

function ownerOf(principal: Principal): Principal['owner'] & object {
  return { issuer: personIssuer(principal), subject: principal.subject, ...(principal.email && { email: principal.email }) };
}

function stringList(body: Record<string, unknown>, key: string): string[] {
  const value = body[key];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw badRequest('invalid_body', `"${key}" must be a list of strings.`, key);
  return value as string[];
}

function lifetime(body: Record<string, unknown>, key: string, zeroAllowed = false): { lifetimeMs?: number } {
  const value = optionalString(body, key);
  if (value === undefined) return {};
  const ms = parseDuration(value);
  if (ms === undefined || (ms === 0 && !zeroAllowed)) throw badRequest('invalid_body', `"${key}" must be a duration such as 90d, 12h or 30m.`, key);
  return { lifetimeMs: ms };
}
