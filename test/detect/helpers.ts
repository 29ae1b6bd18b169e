import { createScanner, type Scanner } from '../../src/detect/scanner.js';
import type { EntityType, Span } from '../../src/detect/types.js';

export const defaultScanner: Scanner = createScanner();

/** `[type, text]` for each span, the shape most assertions want. */
export function entities(text: string, scanner: Scanner = defaultScanner): Array<[EntityType, string]> {
  return scanner.scan(text).map((s) => [s.type, text.slice(s.start, s.end)]);
}

export function valuesOf(text: string, type: EntityType, scanner: Scanner = defaultScanner): string[] {
  return scanner.scan(text).filter((s) => s.type === type).map((s) => text.slice(s.start, s.end));
}

export function spansOf(text: string, type: EntityType, scanner: Scanner = defaultScanner): Span[] {
  return scanner.scan(text).filter((s) => s.type === type);
}

/** Deterministic pseudo-random characters from an alphabet, for token bodies. */
export function randomChars(alphabet: string, length: number, seed: number): string {
  let state = seed >>> 0;
  let out = '';
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out += alphabet[(state >>> 8) % alphabet.length];
  }
  return out;
}

export const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export const BASE64 = `${BASE62}+/`;
