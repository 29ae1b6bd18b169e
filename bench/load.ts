// Load generation: autocannon for fixed-duration runs, and a small undici
// client for sequential streamed requests, where time to first frame is the
// number that matters.
import autocannon from 'autocannon';
import { createHistogram } from 'node:perf_hooks';
import { Client } from 'undici';
import type { Target } from './targets.js';

export const CHAT_PATH = '/v1/chat/completions';
export const MODEL = 'demo-chat';

export function chatBody(stream: boolean): string {
  return JSON.stringify({ model: MODEL, stream, messages: [{ role: 'user', content: 'Say hello to the benchmark.' }] });
}

export interface LoadRun {
  /** 2xx responses per second of wall time. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  ok: number;
  /** Non-2xx responses, socket errors and timeouts. */
  failed: number;
  durationS: number;
}

export interface LoadOptions {
  connections: number;
  stream: boolean;
  /** Run for this many seconds... */
  durationS?: number;
  /** ...or until this many requests have been answered. */
  amount?: number;
}

/**
 * One autocannon run. Latency comes from autocannon's per-response timer
 * (process.hrtime) recorded here in nanoseconds: autocannon's own histogram
 * keeps whole milliseconds, too coarse for sub-millisecond overheads.
 */
export async function runLoad(target: Target, options: LoadOptions): Promise<LoadRun> {
  const latency = createHistogram();
  let ok = 0;
  const instance = autocannon({
    url: target.url + CHAT_PATH,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...target.headers },
    body: chatBody(options.stream),
    connections: options.connections,
    ...(options.amount !== undefined ? { amount: options.amount } : { duration: options.durationS ?? 10 }),
    timeout: 10,
    // A timed run stops only on a sample tick: 100 ms ticks keep a 3.3 s run near 3.3 s, not 4 s.
    sampleInt: 100,
  });
  instance.on('response', (_client, status, _bytes, responseTimeMs) => {
    if (status < 200 || status >= 300) return;
    ok++;
    latency.record(Math.max(1, Math.round(responseTimeMs * 1e6)));
  });
  const result = await instance;
  const ms = (ns: number) => ns / 1e6;
  return {
    rps: ok / result.duration,
    p50Ms: ok ? ms(latency.percentile(50)) : NaN,
    p99Ms: ok ? ms(latency.percentile(99)) : NaN,
    meanMs: ok ? ms(latency.mean) : NaN,
    ok,
    failed: result.non2xx + result.errors + result.timeouts,
    durationS: result.duration,
  };
}

export interface StreamSample {
  /** Request sent → first SSE data frame received. */
  ttftMs: number;
  /** Request sent → stream ended. */
  totalMs: number;
}

/** One streamed chat completion; throws unless it is a 200 that ends with `data: [DONE]`. */
export async function streamOnce(client: Client, target: Target): Promise<StreamSample> {
  const started = performance.now();
  const res = await client.request({
    path: CHAT_PATH,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...target.headers },
    body: chatBody(true),
  });
  let ttftMs = NaN;
  let tail = '';
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    const text = chunk.toString('utf8');
    if (Number.isNaN(ttftMs) && text.includes('data:')) ttftMs = performance.now() - started;
    tail = (tail + text).slice(-256);
  }
  const totalMs = performance.now() - started;
  if (res.statusCode !== 200 || !tail.includes('data: [DONE]')) {
    throw new Error(`${target.name}: streamed request answered ${res.statusCode}: ${tail.slice(-200)}`);
  }
  return { ttftMs, totalMs };
}

/**
 * `perTarget` sequential streamed requests to every target, in blocks of
 * `block` requests per target with the target order rotated every round, so
 * background noise lands on all targets alike while each target is measured
 * warm (a target that just sat idle while another was measured wakes up
 * slower; that shows in p99, not p50). Each target keeps one keep-alive connection.
 */
export async function streamInterleaved(
  targets: Target[],
  perTarget: number,
  block = 20,
  onProgress?: (done: number) => void,
): Promise<Map<string, StreamSample[]>> {
  const clients = new Map(targets.map((t) => [t.name, new Client(t.url, { keepAliveTimeout: 30_000 })]));
  const samples = new Map<string, StreamSample[]>(targets.map((t) => [t.name, []]));
  try {
    for (let done = 0, round = 0; done < perTarget; done += block, round++) {
      const count = Math.min(block, perTarget - done);
      for (const target of rotate(targets, round)) {
        for (let i = 0; i < count; i++) samples.get(target.name)!.push(await streamOnce(clients.get(target.name)!, target));
      }
      onProgress?.(done + count);
    }
  } finally {
    await Promise.all([...clients.values()].map((c) => c.close()));
  }
  return samples;
}

export function rotate<T>(items: readonly T[], by: number): T[] {
  const k = items.length === 0 ? 0 : by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** Nearest-rank percentile of unsorted values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function median(values: readonly number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
