// The soak bench's model server, as cheap as a mock can be so the 2 cores go
// to what is measured: raw node:http, frames prebuilt once, and one 10 ms
// ticker for every open stream (a stream is served on every tenth tick, so
// 5,000 streams cost 10 timer callbacks a 100 ms, not 5,000).
//
// POST /v1/chat/completions answers an OpenAI stream of SOAK_FRAMES chunks
// (default 50) SOAK_INTERVAL_MS apart (default 100; the first at once), one
// of them carrying an email address for output masking to find, then
// `data: [DONE]`. Requests are counted by bearer key, so the bench can tell
// streams sent directly from those the gateway or the agent forwarded.
// GET /stats returns those counts. Prints its URL on the first stdout line.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const FRAMES = Number(process.env.SOAK_FRAMES ?? 50);
const INTERVAL_MS = Number(process.env.SOAK_INTERVAL_MS ?? 100);
const TICK_MS = 10;
const SLOTS = Math.max(1, Math.round(INTERVAL_MS / TICK_MS));
const KEYS = new Set((process.env.SOAK_KEYS ?? '').split(',').filter(Boolean));

const chunk = (content: string, finish: string | null): string =>
  `data: ${JSON.stringify({ id: 'chatcmpl-soak', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'soak', choices: [{ index: 0, delta: { content }, finish_reason: finish }] })}\n\n`;
const frames = Array.from({ length: FRAMES }, (_, i) =>
  i === FRAMES - 1 ? chunk('.', 'stop') : i === Math.floor(FRAMES / 2) ? chunk(' write to jane.doe@example.com', null) : chunk(` word${i}`, null),
);
const DONE = 'data: [DONE]\n\n';

interface Stream {
  res: http.ServerResponse;
  sent: number;
}
const slots: Array<Set<Stream>> = Array.from({ length: SLOTS }, () => new Set());
let tick = 0;
const counts: Record<string, number> = {};
let open = 0;

const ticker = setInterval(() => {
  tick = (tick + 1) % SLOTS;
  const slot = slots[tick]!;
  for (const s of slot) {
    s.res.write(frames[s.sent++]);
    if (s.sent === FRAMES) {
      slot.delete(s);
      s.res.end(DONE);
    }
  }
}, TICK_MS);

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ counts, open }));
    return;
  }
  if (req.method === 'GET' && req.url === '/healthz') {
    res.end('ok');
    return;
  }
  const key = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? 'none';
  if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions') || !KEYS.has(key)) {
    res.writeHead(req.method !== 'POST' ? 405 : KEYS.has(key) ? 404 : 401, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: 'soak mock: wrong method, path or key', type: 'invalid_request_error' } }));
    req.resume();
    return;
  }
  counts[key] = (counts[key] ?? 0) + 1;
  req.resume();
  req.once('end', () => {
    open++;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const stream: Stream = { res, sent: 1 };
    res.write(frames[0]);
    const slot = slots[tick]!;
    slot.add(stream);
    res.once('close', () => {
      open--;
      slot.delete(stream);
    });
  });
});
server.keepAliveTimeout = 5_000;
server.listen(Number(process.env.SOAK_PORT ?? 0), '127.0.0.1', 4096, () => {
  process.stdout.write(`http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});

const stop = (): void => {
  clearInterval(ticker);
  server.closeAllConnections();
  server.close(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The parent holds our stdin open; EOF means it died without cleaning up.
process.stdin.on('end', stop);
process.stdin.resume();
