// Speed of detection (issue 12's acceptance lines):
//  - the default detector set's throughput on English-like prose with sparse
//    entities (MB/s of `scan` over a few megabytes; target >= 50 MB/s on one
//    core), and the time to scan one 1 MB prompt;
//  - the learned injection classifier's time per 4 KB prompt (4,096 UTF-16
//    code units, the most it scores in one pass; target <= 1 ms at p50) on
//    four kinds of text: English prose, the multilingual rows of the dev split
//    (../shared/eval/real/injection_dev.jsonl), code (this repository's src/),
//    and the dev rows written in non-Latin scripts (Hindi, Bengali, Thai,
//    Chinese, Japanese, Korean, Arabic, Russian);
//  - each as the median of ROUNDS rounds, then the acceptance lines, with the
//    issue's limit and this project's margin target (0.5 ms, 80 MB/s).
// Deterministic texts. Run it under the bench lock, and note the load average.
//   npm run bench -- detect [--mb 4] [--rounds 5]
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { injectionLogit, shippedModel } from '../src/detect/injection/classifier.js';
import { scoreInjection } from '../src/detect/injection/index.js';
import { createScanner } from '../src/detect/scanner.js';
import { rng } from '../training/train-injection.js';

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

const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

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
  return { wallMs: median(runs.map((r) => r.wallMs)), bestWallMs: Math.min(...runs.map((r) => r.wallMs)), cpuMs: median(runs.map((r) => r.cpuMs)) };
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DEV_SPLIT = join(ROOT, '..', 'shared', 'eval', 'real', 'injection_dev.jsonl');
const PROMPT_CHARS = 4096;
const PROMPTS_PER_KIND = 64;

/** PROMPTS_PER_KIND windows of PROMPT_CHARS, at spread offsets, from the texts joined by line breaks. */
function windows(texts: readonly string[]): string[] {
  const all = texts.join('\n');
  if (all.length < PROMPT_CHARS) return [];
  const out: string[] = [];
  for (let at = 0; out.length < PROMPTS_PER_KIND; at = (at + 2039) % (all.length - PROMPT_CHARS + 1)) out.push(all.slice(at, at + PROMPT_CHARS));
  return out;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).sort().flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [readFileSync(path, 'utf8')] : [];
  });
}

const nonLatinShare = (text: string): number => {
  let n = 0;
  let all = 0;
  for (const ch of text) {
    all++;
    if (ch.codePointAt(0)! >= 0x370) n++;
  }
  return n / Math.max(1, all);
};

/** The four kinds of 4 KB prompt; the dev split's are left out when ../shared is not next to the checkout. */
function promptKinds(): Array<{ kind: string; prompts: string[] }> {
  const kinds = [{ kind: 'English prose', prompts: Array.from({ length: PROMPTS_PER_KIND }, (_, i) => generateProse(5000, 100 + i).slice(0, PROMPT_CHARS)) }];
  if (existsSync(DEV_SPLIT)) {
    const rows = readFileSync(DEV_SPLIT, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { text: string; lang?: string });
    kinds.push({ kind: 'multilingual dev rows', prompts: windows(rows.filter((r) => r.lang !== undefined).map((r) => r.text)) });
    kinds.push({ kind: 'code (src/)', prompts: windows(sourceFiles(join(ROOT, 'src'))) });
    kinds.push({ kind: 'non-Latin dev rows', prompts: windows(rows.filter((r) => nonLatinShare(r.text) > 0.3).map((r) => r.text)) });
  } else {
    console.log(`(no ${DEV_SPLIT}: the dev-split kinds are skipped)`);
    kinds.push({ kind: 'code (src/)', prompts: windows(sourceFiles(join(ROOT, 'src'))) });
  }
  return kinds;
}

/** p50, p99 and mean CPU per call of fn over every prompt, four passes. */
function perCall(fn: (text: string) => unknown, prompts: readonly string[]): { p50: number; p99: number; cpu: number } {
  for (const p of prompts) fn(p);
  const times: number[] = [];
  const cpu0 = process.cpuUsage();
  for (let pass = 0; pass < 4; pass++) {
    for (const p of prompts) {
      const t0 = performance.now();
      fn(p);
      times.push(performance.now() - t0);
    }
  }
  const cpu = process.cpuUsage(cpu0);
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(times.length / 2)]!, p99: times[Math.floor(times.length * 0.99)]!, cpu: (cpu.user + cpu.system) / 1000 / times.length };
}

const LIMITS = { classifierP50Ms: 1, detectorMbPerS: 50 } as const;
const TARGETS = { classifierP50Ms: 0.5, detectorMbPerS: 80 } as const;

function main(): void {
  const argument = (name: string, fallback: number): number => {
    const at = process.argv.indexOf(name);
    return at > 0 ? Number(process.argv[at + 1]) : fallback;
  };
  const megabytes = argument('--mb', 4);
  const rounds = Math.max(1, argument('--rounds', 5));
  const scanner = createScanner();
  const corpus = generateProse(megabytes * 1024 * 1024);
  const prompt = generateProse(1024 * 1024, 7).slice(0, 1024 * 1024);
  const model = shippedModel();
  const kinds = promptKinds();

  // Warm up the JIT and the lazily built tables.
  scanner.scan(corpus.slice(0, 256 * 1024));
  scanner.scan(prompt);

  // The scanner remembers its last text (the masker asks twice about one window): alternate two texts.
  const corpora = [corpus, `${corpus} `];
  const prompts = [prompt, `${prompt.slice(1)} `];
  let turn = 0;
  const mb = corpus.length / (1024 * 1024);
  const rate = (ms: number): number => mb / (ms / 1000);
  // Rounds interleave the scans and the classifier, so a busy spell on the machine does not land on one figure.
  const scanRounds: Timing[] = [];
  const classifierRounds = kinds.map(() => [] as Array<{ p50: number; p99: number; cpu: number }>);
  const combinedRounds: number[] = [];
  for (let round = 0; round < rounds; round++) {
    scanRounds.push(timeIt(() => scanner.scan(corpora[turn++ % 2]!), 3));
    kinds.forEach(({ prompts: texts }, k) => classifierRounds[k]!.push(perCall((text) => injectionLogit(model, text), texts)));
    combinedRounds.push(perCall((text) => scoreInjection(text), kinds[0]!.prompts).p50);
  }
  const promptTime = timeIt(() => scanner.scan(prompts[turn++ % 2]!), 15);
  const injectionTime = timeIt(() => scoreInjection(prompt), 5);
  // PERSON/LOCATION/ADDRESS are opt-in: their cost, on 64 KB of the same prose.
  const nlpScanner = createScanner({ types: ['PERSON', 'LOCATION', 'ADDRESS'] });
  const nlpText = corpus.slice(0, 64 * 1024);
  nlpScanner.scan(nlpText.slice(0, 4096));
  const nlpTime = timeIt(() => nlpScanner.scan(`${nlpText}${turn++}`), 3);
  const spans = scanner.scan(corpus).length;

  const scanMedian = rate(median(scanRounds.map((r) => r.wallMs)));
  const scanBest = rate(Math.min(...scanRounds.map((r) => r.bestWallMs)));
  const scanCpu = rate(median(scanRounds.map((r) => r.cpuMs)));
  console.log(`prose: ${mb.toFixed(1)} MB (${corpus.length} chars, 1 MB = 2^20 chars), ${spans} entities found`);
  console.log(`scan throughput, wall-clock: ${scanMedian.toFixed(1)} MB/s median of ${rounds} rounds (each the median of 3 scans), ${scanBest.toFixed(1)} MB/s best scan (CPU time, all threads: ${scanCpu.toFixed(1)} MB/s)`);
  console.log(`1 MB prompt: ${promptTime.bestWallMs.toFixed(1)} ms best of 15, ${promptTime.wallMs.toFixed(1)} ms median (CPU ${promptTime.cpuMs.toFixed(1)} ms)`);
  console.log(`scoreInjection on the 1 MB prompt: ${injectionTime.bestWallMs.toFixed(1)} ms best of 5, ${injectionTime.wallMs.toFixed(1)} ms median`);
  console.log(`injection classifier on a 4 KB prompt (${PROMPTS_PER_KIND} prompts x 4 passes a round; medians of ${rounds} rounds):`);
  const classifierP50s: Array<[string, number]> = [];
  kinds.forEach(({ kind, prompts: texts }, k) => {
    const r = classifierRounds[k]!;
    const p50 = median(r.map((x) => x.p50));
    classifierP50s.push([kind, p50]);
    console.log(`  ${kind.padEnd(22)} ${p50.toFixed(3)} ms p50, ${median(r.map((x) => x.p99)).toFixed(3)} ms p99, ${median(r.map((x) => x.cpu)).toFixed(3)} ms CPU per call (${texts.length} prompts)`);
  });
  console.log(`  rules + classifier (scoreInjection) on English prose: ${median(combinedRounds).toFixed(3)} ms p50`);
  console.log(`PERSON/LOCATION/ADDRESS (opt-in, compromise): ${((64 / 1024) / (nlpTime.wallMs / 1000)).toFixed(2)} MB/s median of 3`);
  const verdict = (ok: boolean): string => (ok ? 'pass' : 'MISS');
  const worst = classifierP50s.reduce((a, b) => (b[1] > a[1] ? b : a));
  console.log(`acceptance: classifier p50 on 4 KB <= ${LIMITS.classifierP50Ms} ms: ${verdict(worst[1] <= LIMITS.classifierP50Ms)} (slowest kind: ${worst[0]}, ${worst[1].toFixed(3)} ms); margin target <= ${TARGETS.classifierP50Ms} ms: ${verdict(worst[1] <= TARGETS.classifierP50Ms)}`);
  console.log(`acceptance: detector set >= ${LIMITS.detectorMbPerS} MB/s per core: ${verdict(scanMedian >= LIMITS.detectorMbPerS)} (${scanMedian.toFixed(1)} MB/s median); margin target >= ${TARGETS.detectorMbPerS} MB/s: ${verdict(scanMedian >= TARGETS.detectorMbPerS)}`);
  console.log(`load average: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} on ${os.availableParallelism()} cores, ${new Date().toISOString()}`);
}

main();
