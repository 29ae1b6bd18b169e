// The state that makes masking consistent: within one session (a request
// and its response, every choice and field) the same value always gets the
// same replacement, so a reader can still tell two different cards apart.
import { createHmac } from 'node:crypto';
import type { EntityType } from '../detect/types.js';
import type { MaskStrategy } from './types.js';

export interface MaskingSessionOptions {
  /** Secret for the `hash` strategy. Without one, `hash` is refused rather than silently unkeyed. */
  hashKey?: string;
}

/** Types whose written form varies (spaces, dashes, case) while the value stays the same. */
const SEPARATOR_INSENSITIVE: ReadonlySet<EntityType> = new Set(['CREDIT_CARD', 'IBAN', 'PHONE', 'US_SSN', 'NATIONAL_ID', 'PASSPORT']);

/** The value a replacement is keyed on, so `4111 1111…` and `4111-1111…` are one card. */
export function canonicalValue(type: EntityType, value: string): string {
  if (type === 'EMAIL') return value.toLowerCase();
  if (SEPARATOR_INSENSITIVE.has(type)) return value.replace(/[^\p{L}\p{N}]/gu, '').toUpperCase();
  return value;
}

export class MaskingSession {
  readonly #hashKey: string | undefined;
  /** `type \0 canonical value` → placeholder, for the `placeholder` strategy. */
  readonly #placeholders = new Map<string, string>();
  readonly #lastNumber = new Map<EntityType, number>();
  readonly #hashes = new Map<string, string>();

  constructor(options: MaskingSessionOptions = {}) {
    this.#hashKey = options.hashKey;
  }

  get hasHashKey(): boolean {
    return this.#hashKey !== undefined;
  }

  /** The text that replaces `value`, an entity of `type`. */
  replacement(type: EntityType, value: string, strategy: MaskStrategy): string {
    switch (strategy.kind) {
      case 'placeholder':
        return this.#placeholder(type, canonicalValue(type, value));
      case 'partial':
        return partialMask(value, strategy.keepLast);
      case 'hash':
        return `[${type}:${this.#hash(type, canonicalValue(type, value), strategy.length)}]`;
    }
  }

  #placeholder(type: EntityType, canonical: string): string {
    const key = `${type}\0${canonical}`;
    let placeholder = this.#placeholders.get(key);
    if (placeholder === undefined) {
      const number = (this.#lastNumber.get(type) ?? 0) + 1;
      this.#lastNumber.set(type, number);
      placeholder = `[${type}_${number}]`;
      this.#placeholders.set(key, placeholder);
    }
    return placeholder;
  }

  #hash(type: EntityType, canonical: string, length: number): string {
    if (this.#hashKey === undefined) throw new Error('the hash masking strategy needs a hash key; set guardrails.masking.hash_key');
    const key = `${type}\0${canonical}`;
    let digest = this.#hashes.get(key);
    if (digest === undefined) {
      digest = createHmac('sha256', this.#hashKey).update(key).digest('hex');
      this.#hashes.set(key, digest);
    }
    return digest.slice(0, length);
  }
}

/**
 * `****` and the last `keepLast` letters or digits. Short values show nothing:
 * revealing 4 of 6 characters would be no mask at all.
 */
export function partialMask(value: string, keepLast: number): string {
  const alphanumerics = value.match(/[\p{L}\p{N}]/gu) ?? [];
  const shown = alphanumerics.length >= 2 * keepLast ? alphanumerics.slice(alphanumerics.length - keepLast).join('') : '';
  return `****${shown}`;
}
