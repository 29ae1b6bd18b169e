// Throughput of the default detector set on English-like prose with sparse
// entities: MB/s of `scan` over a few megabytes, and the time to scan one
// 1 MB prompt. Deterministic text; prints figures only (no thresholds).
//   node --import tsx bench/detect.ts [--mb 4]
import os from 'node:os';
import { injectionLogit, shippedModel } from '../src/detect/injection/classifier.js';
import { scoreInjection } from '../src/detect/injection/index.js';
import { createScanner } from '../src/detect/scanner.js';

function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const WORDS = (
  'the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were her ' +
  'she there been one all would their we him can has more if will when who so no what about up out them some time could into ' +
  'only other new than then its also two first any these may like after over most where those should through people years ' +
  'because such very between much before under during while since however against without model request service customer ' +
  'report meeting quarter release team project deploy budget invoice account server latency network policy review draft ' +
  'summary update question answer support ticket migration database cluster region market revenue growth forecast ' +
  'date data version system API ID USA Q3 e.g. i.e. Note: Re: (see)'
).split(' ');
// Rarer words that wake keyword-gated detectors (one word in a hundred is one of these), so the benchmark pays for them.
const TRIGGER_WORDS = ['key', 'password', 'token', 'secret', 'born', 'birth', 'authorization', 'https://example.com/docs', 'user@host', 'sin', 'nas'];
const NAMES = ['Alice', 'Bob', 'Carol', 'Dave', 'Erin', 'Frank', 'Grace', 'Heidi', 'Ivan', 'Judy', 'Mallory', 'Oscar', 'Peggy', 'Trent', 'Walter'];
const PLACES = ['London', 'Berlin', 'Lisbon', 'Tokyo', 'Toronto', 'Madrid', 'Paris', 'Oslo'];

/** English-like prose: sentences of common words, names, numbers, times, percentages; an entity every few KB. */
function generateProse(bytes: number, seed = 42): string {
  const random = rng(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const parts: string[] = [];
  let length = 0;
  while (length < bytes) {
    const words: string[] = [];
    const count = 8 + Math.floor(random() * 16);
    for (let i = 0; i < count; i++) {
      const r = random();
      if (r < 0.01) words.push(pick(TRIGGER_WORDS));
      else if (r < 0.04) words.push(pick(NAMES));
      else if (r < 0.06) words.push(pick(PLACES));
      else if (r < 0.08) words.push(String(Math.floor(random() * 1000)));
      else if (r < 0.09) words.push(String(1990 + Math.floor(random() * 35)));
      else if (r < 0.095) words.push(`${Math.floor(random() * 100)}%`);
      else if (r < 0.1) words.push(`${Math.floor(random() * 24)}:${String(Math.floor(random() * 60)).padStart(2, '0')}`);
      else words.push(pick(WORDS));
    }
    let sentence = words.join(' ');
    sentence = sentence[0]!.toUpperCase() + sentence.slice(1) + pick(['.', '.', '.', '?', '!', ';']);
    const e = random();
    if (e < 0.004) sentence += ` Contact ${pick(NAMES).toLowerCase()}@example.com for details.`;
    else if (e < 0.006) sentence += ' Call +44 20 7946 0958 tomorrow.';
    else if (e < 0.007) sentence += ' The card on file is 4111 1111 1111 1111.';
    else if (e < 0.008) sentence += ' The host 10.20.30.40 was restarted.';
    else if (e < 0.0085) sentence += ' GITHUB_TOKEN=ghp_R4nd0mT0k3nV4lu3Xy9Zq8Wv7Ut6Sr5Qp4On';
    parts.push(sentence);
    length += sentence.length + 1;
    if (random() < 0.15) parts.push('\n\n');
  }
  return parts.join(' ');
}

interface Timing {
  /** Median and fastest wall-clock run; on a shared machine the fastest is the closest to an idle core. */
  wallMs: number;
  bestWallMs: number;
  /** Process CPU time, all threads (GC helpers included), median. */
  cpuMs: number;
}

function timeIt(fn: () => void, repeat: number): Timing {
  const runs: Array<{ wallMs: number; cpuMs: number }> = [];
  for (let i = 0; i < repeat; i++) {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    fn();
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    runs.push({ wallMs, cpuMs: (cpu.user + cpu.system) / 1000 });
  }
  const median = (values: number[]): number => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  return { wallMs: median(runs.map((r) => r.wallMs)), bestWallMs: Math.min(...runs.map((r) => r.wallMs)), cpuMs: median(runs.map((r) => r.cpuMs)) };
}

function main(): void {
  const mbArg = process.argv.indexOf('--mb');
  const megabytes = mbArg > 0 ? Number(process.argv[mbArg + 1]) : 4;
  const scanner = createScanner();
  const corpus = generateProse(megabytes * 1024 * 1024);
  const prompt = generateProse(1024 * 1024, 7).slice(0, 1024 * 1024);

  // Warm up the JIT and the lazily built tables.
  scanner.scan(corpus.slice(0, 256 * 1024));
  scanner.scan(prompt);

  // The scanner remembers its last text (the masker asks twice about one window): alternate two texts.
  const corpora = [corpus, `${corpus} `];
  const prompts = [prompt, `${prompt.slice(1)} `];
  let turn = 0;
  const corpusTime = timeIt(() => scanner.scan(corpora[turn++ % 2]!), 9);
  const promptTime = timeIt(() => scanner.scan(prompts[turn++ % 2]!), 15);
  const injectionTime = timeIt(() => scoreInjection(prompt), 5);

  // The learned classifier alone, and the whole injection score (rules + classifier), on 4 KB prompts: p50 per call.
  const model = shippedModel();
  const prompts4k = Array.from({ length: 64 }, (_, i) => generateProse(5000, 100 + i).slice(0, 4096));
  const perCall = (fn: (text: string) => unknown): { p50: number; p90: number; cpu: number } => {
    for (const p of prompts4k) fn(p);
    const times: number[] = [];
    const cpu0 = process.cpuUsage();
    for (let round = 0; round < 8; round++) {
      for (const p of prompts4k) {
        const t0 = performance.now();
        fn(p);
        times.push(performance.now() - t0);
      }
    }
    const cpu = process.cpuUsage(cpu0);
    times.sort((a, b) => a - b);
    // Mean CPU time per call: on a loaded machine, closer to one idle core than wall-clock.
    return { p50: times[Math.floor(times.length / 2)]!, p90: times[Math.floor(times.length * 0.9)]!, cpu: (cpu.user + cpu.system) / 1000 / times.length };
  };
  const classifier4k = perCall((text) => injectionLogit(model, text));
  const combined4k = perCall((text) => scoreInjection(text));
  // PERSON/LOCATION/ADDRESS are opt-in: their cost, on 64 KB of the same prose.
  const nlpScanner = createScanner({ types: ['PERSON', 'LOCATION', 'ADDRESS'] });
  const nlpText = corpus.slice(0, 64 * 1024);
  nlpScanner.scan(nlpText.slice(0, 4096));
  const nlpTime = timeIt(() => nlpScanner.scan(`${nlpText}${turn++}`), 3);
  const spans = scanner.scan(corpus).length;
  const mb = corpus.length / (1024 * 1024);
  const rate = (ms: number): string => (mb / (ms / 1000)).toFixed(1);

  console.log(`prose: ${mb.toFixed(1)} MB (${corpus.length} chars, 1 MB = 2^20 chars), ${spans} entities found`);
  console.log(`scan throughput, wall-clock: ${rate(corpusTime.bestWallMs)} MB/s best of 9, ${rate(corpusTime.wallMs)} MB/s median (CPU time, all threads: ${rate(corpusTime.cpuMs)} MB/s)`);
  console.log(`1 MB prompt: ${promptTime.bestWallMs.toFixed(1)} ms best of 15, ${promptTime.wallMs.toFixed(1)} ms median (CPU ${promptTime.cpuMs.toFixed(1)} ms)`);
  console.log(`scoreInjection on the 1 MB prompt: ${injectionTime.bestWallMs.toFixed(1)} ms best of 5, ${injectionTime.wallMs.toFixed(1)} ms median`);
  console.log(`injection classifier on a 4 KB prompt: ${classifier4k.p50.toFixed(3)} ms p50, ${classifier4k.p90.toFixed(3)} ms p90, ${classifier4k.cpu.toFixed(3)} ms CPU per call; rules + classifier: ${combined4k.p50.toFixed(3)} ms p50, ${combined4k.cpu.toFixed(3)} ms CPU per call`);
  console.log(`PERSON/LOCATION/ADDRESS (opt-in, compromise): ${((64 / 1024) / (nlpTime.wallMs / 1000)).toFixed(2)} MB/s median of 3`);
  console.log(`load average: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} on ${os.availableParallelism()} cores`);
}

main();
