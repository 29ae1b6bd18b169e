// What a call cost, from the per-model prices in `usage.costs`: tokens per
// thousand, and GPU time (the request's duration) for self-hosted models
// whose real cost is the hardware they hold.
import type { UsageConfig } from './config.js';

export interface Price {
  per1kPrompt: number;
  per1kCompletion: number;
  perGpuSecond: number;
}

export class CostTable {
  readonly #byModel = new Map<string, Price>();
  readonly #fallback: Price | undefined;

  constructor(config: UsageConfig) {
    let fallback: Price | undefined;
    for (const entry of config.costs) {
      const price = { per1kPrompt: entry.per_1k_prompt_tokens, per1kCompletion: entry.per_1k_completion_tokens, perGpuSecond: entry.per_gpu_second };
      for (const model of entry.models) {
        if (model === '*') fallback ??= price;
        else if (!this.#byModel.has(model)) this.#byModel.set(model, price);
      }
    }
    this.#fallback = fallback;
  }

  get empty(): boolean {
    return this.#byModel.size === 0 && this.#fallback === undefined;
  }

  priceOf(model: string): Price | undefined {
    return this.#byModel.get(model) ?? this.#fallback;
  }

  /** Cost in currency units; 0 for a model without a price. */
  cost(model: string, promptTokens: number, completionTokens: number, seconds: number): number {
    const p = this.priceOf(model);
    if (!p) return 0;
    return (promptTokens / 1000) * p.per1kPrompt + (completionTokens / 1000) * p.per1kCompletion + seconds * p.perGpuSecond;
  }
}

/** Budgets are counted in millionths of the currency, so Redis can add them as integers. */
export const MICROS = 1_000_000;
