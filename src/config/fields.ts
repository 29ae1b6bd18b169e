// Field types shared by every configuration section, so a duration or a
// size is spelled, validated and explained the same way everywhere.
import { z } from 'zod';
import { parseByteSize, parseDuration } from './units.js';

/** "500ms", "30s", "5m", "1h", "90d", or a number of milliseconds → milliseconds. */
export const duration = z
  .union([z.string(), z.number().nonnegative()])
  .transform((value, ctx) => {
    const ms = parseDuration(value);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration; use e.g. 500ms, 30s, 5m, 1h, 90d` });
      return z.NEVER;
    }
    return ms;
  });

/** "512kb", "4mb", or a number of bytes → bytes. */
export const byteSize = z
  .union([z.string(), z.number().int().positive()])
  .transform((value, ctx) => {
    const bytes = parseByteSize(value);
    if (bytes === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${value}" is not a size; use e.g. 512kb, 4mb` });
      return z.NEVER;
    }
    return bytes;
  });

export const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });

/** Names of connections, models and rules: safe in logs, metrics labels and URLs. */
export const name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/, 'use letters, digits and . _ : / - (at most 128 characters)');
