// Time to the first *visible* text, not the first frame, on a model stream
// paced like a real one (one frame every 20 ms). Masking holds back text
// that could still become an entity, so the first frame a client receives
// may carry no text yet; what a user waits for is the first character on
// screen. Measured directly against the paced upstream, through modelgate,
// and through modelgate with output masking on. Part of `npm run bench`;
// on its own: `node --import tsx bench/visible-text.ts`.
//
// Env: BENCH_PACED_STREAMS (streams per target, default 40),
// BENCH_PACE_MS (milliseconds between frames, default 20).
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from 'undici';
import { startDevIdp } from '../src/dev/idp.js';
import { SseDecoder } from '../src/protocol/sse.js';
import { CHAT_PATH, percentile, rotate } from './load.js';
import { BENCH_GUARDRAILS, directTarget, startModelgate, startUpstream, stopAllChildren, type Target } from './targets.js';

const UPSTREAM_KEY = 'bench-upstream-key';
const AUDIENCE = 'modelgate';

export interface VisibleTextSample {
  /** Request sent → first SSE data frame. */
  firstFrameMs: number;
  /** Request sent → first frame carrying non-empty text (content or reasoning). */
  firstVisibleMs: number;
}

export interface VisibleTextResult {
  paceMs: number;
  streams: number;
  targets: Record<string, { firstFrameP50Ms: number; firstVisibleP50Ms: number; firstFrameP90Ms: number; firstVisibleP90Ms: number }>;
}

/** One streamed chat completion, timing its first frame and its first visible text. */
async function streamOnce(client: Client, target: Target, prompt: string): Promise<VisibleTextSample> {
  const started = performance.now();
  const res = await client.request({
    path: CHAT_PATH,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...target.headers },
    body: JSON.stringify({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: prompt }] }),
  });
  if (res.statusCode !== 200) throw new Error(`${target.name}: answered ${res.statusCode}: ${await res.body.text()}`);
  const decoder = new SseDecoder();
  let firstFrameMs = NaN;
  let firstVisibleMs = NaN;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    for (const frame of decoder.push(chunk)) {
      if (!frame.hasData) continue;
      if (Number.isNaN(firstFrameMs)) firstFrameMs = performance.now() - started;
      if (!Number.isNaN(firstVisibleMs) || frame.data === '[DONE]') continue;
      const delta = (JSON.parse(frame.data) as { choices?: Array<{ delta?: { content?: unknown; reasoning_content?: unknown } }> }).choices?.[0]?.delta;
      if ((typeof delta?.content === 'string' && delta.content !== '') || (typeof delta?.reasoning_content === 'string' && delta.reasoning_content !== '')) {
        firstVisibleMs = performance.now() - started;
      }
    }
  }
  return { firstFrameMs, firstVisibleMs };
}

export async function measureVisibleText(options: { streams?: number; paceMs?: number; logDir?: string } = {}): Promise<VisibleTextResult> {
  const streams = options.streams ?? Number(process.env.BENCH_PACED_STREAMS ?? 40);
  const paceMs = options.paceMs ?? Number(process.env.BENCH_PACE_MS ?? 20);
  const dir = options.logDir ?? mkdtempSync(join(os.tmpdir(), 'modelgate-bench-visible-'));
  const upstream = await startUpstream(UPSTREAM_KEY, dir, paceMs);
  const idp = await startDevIdp({ audience: AUDIENCE, accessTokenTtlSeconds: 3600 });
  try {
    const token = await idp.clientCredentialsToken('ci-bot');
    const gateway = { issuer: idp.issuer, audience: AUDIENCE, upstreamUrl: upstream.url, apiKey: UPSTREAM_KEY, model: 'demo-chat', group: 'ci', accessToken: token, logDir: dir, nodeFlags: [] };
    const targets: Target[] = [
      directTarget(upstream.url, UPSTREAM_KEY),
      await startModelgate({ ...gateway, name: 'modelgate-paced' }),
      await startModelgate({ ...gateway, name: 'modelgate-paced+masking', guardrails: BENCH_GUARDRAILS }),
    ];
    const clients = new Map(targets.map((t) => [t.name, new Client(t.url, { keepAliveTimeout: 30_000 })]));
    const samples = new Map<string, VisibleTextSample[]>(targets.map((t) => [t.name, []]));
    // The demo model echoes the prompt: prose, as a chat answer would be.
    const prompt = 'Summarise the quarterly report for the team in two sentences.';
    try {
      for (const target of targets) await streamOnce(clients.get(target.name)!, target, prompt); // warm-up
      for (let i = 0; i < streams; i++) {
        for (const target of rotate(targets, i)) samples.get(target.name)!.push(await streamOnce(clients.get(target.name)!, target, prompt));
      }
    } finally {
      await Promise.all([...clients.values()].map((c) => c.close()));
    }
    const result: VisibleTextResult = { paceMs, streams, targets: {} };
    for (const [name, list] of samples) {
      const of = (key: keyof VisibleTextSample, p: number): number => Math.round(percentile(list.map((s) => s[key]), p) * 100) / 100;
      result.targets[name] = {
        firstFrameP50Ms: of('firstFrameMs', 50),
        firstVisibleP50Ms: of('firstVisibleMs', 50),
        firstFrameP90Ms: of('firstFrameMs', 90),
        firstVisibleP90Ms: of('firstVisibleMs', 90),
      };
    }
    return result;
  } finally {
    await stopAllChildren();
    await idp.close();
  }
}

export function printVisibleText(result: VisibleTextResult): void {
  console.log(`\nTime to first visible text, stream paced at ${result.paceMs} ms a frame (${result.streams} streams per target, p50 / p90):`);
  const direct = result.targets.direct;
  for (const [name, r] of Object.entries(result.targets)) {
    const added = direct && name !== 'direct' ? `  (+${(r.firstVisibleP50Ms - direct.firstVisibleP50Ms).toFixed(2)} ms visible, +${(r.firstFrameP50Ms - direct.firstFrameP50Ms).toFixed(2)} ms first frame vs direct)` : '';
    console.log(
      `  ${name.padEnd(26)} first frame ${r.firstFrameP50Ms.toFixed(2)} / ${r.firstFrameP90Ms.toFixed(2)} ms   first visible text ${r.firstVisibleP50Ms.toFixed(2)} / ${r.firstVisibleP90Ms.toFixed(2)} ms${added}`,
    );
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await measureVisibleText();
  printVisibleText(result);
  console.log(JSON.stringify(result));
}
