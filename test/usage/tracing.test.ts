// OpenTelemetry through a whole gateway, exported over OTLP/HTTP (JSON) to
// a receiver in this process, configured only by the standard OTEL_*
// variables. Checks the request span continues the client's trace, each
// stage is its child, the GenAI attributes, the traceparent the upstream got,
// and that no prompt text reaches a span.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startHarness, type Harness } from '../helpers/harness.js';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Array<{ key: string; value: Record<string, unknown> }>;
}

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const SECRET_PROMPT = 'the quarterly numbers are 12345';

function attribute(span: OtlpSpan, key: string): unknown {
  const value = span.attributes.find((a) => a.key === key)?.value;
  return value && Object.values(value)[0];
}

describe('OpenTelemetry traces', () => {
  let receiver: Server;
  const spans: OtlpSpan[] = [];
  const logs: string[] = [];
  const saved = { ...process.env };

  before(async () => {
    receiver = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString('utf8')));
      req.on('end', () => {
        assert.equal(req.url, '/v1/traces');
        const body = JSON.parse(text) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }> };
        for (const rs of body.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  });
  after(async () => {
    process.env = saved;
    await new Promise((resolve) => receiver.close(resolve));
  });

  async function withTracedGateway(env: Record<string, string>, run: (h: Harness) => Promise<void>): Promise<void> {
    const before = { ...process.env };
    Object.assign(process.env, env);
    let h: Harness;
    try {
      h = await startHarness({ logs });
    } finally {
      process.env = before;
    }
    try {
      await run(h);
    } finally {
      await h.close();
    }
  }

  const endpoint = () => `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

  test('a streamed chat: server span under the client span, a child per stage, GenAI attributes, traceparent upstream, no prompt', async () => {
    await withTracedGateway({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint(), OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_SERVICE_NAME: 'modelgate-test' }, async (h) => {
      const client = new OpenAI({
        baseURL: `${h.url}/v1`,
        apiKey: await h.userToken('alice'),
        maxRetries: 0,
        defaultHeaders: { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` },
      });
      const stream = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: SECRET_PROMPT }], stream: true });
      for await (const _ of stream);
      await new Promise((r) => setTimeout(r, 20)); // the request span ends after the response
      await h.gateway.services.tracing.flush();

      const trace = spans.filter((s) => s.traceId === CLIENT_TRACE);
      const root = trace.find((s) => s.parentSpanId === CLIENT_SPAN);
      assert.ok(root, `no span under the client's span; got ${JSON.stringify(spans.map((s) => [s.name, s.traceId, s.parentSpanId]))}`);
      assert.equal(root.name, 'POST /v1/chat/completions');
      assert.equal(root.kind, 2, 'SERVER');
      const children = trace.filter((s) => s.parentSpanId === root.spanId);
      const names = children.map((s) => s.name);
      for (const stage of ['authenticate', 'authorise', 'limit', 'inspect', 'approve', 'chat demo-chat', 'first_token', 'relay']) {
        assert.ok(names.includes(stage), `no "${stage}" span; children: ${names.join(', ')}`);
      }
      const upstream = children.find((s) => s.name === 'chat demo-chat')!;
      assert.equal(upstream.kind, 3, 'CLIENT');
      assert.equal(attribute(upstream, 'gen_ai.operation.name'), 'chat');
      assert.equal(attribute(upstream, 'gen_ai.request.model'), 'demo-chat');
      assert.equal(attribute(upstream, 'gen_ai.provider.name'), 'openai');
      assert.ok(Number(attribute(root, 'gen_ai.usage.output_tokens')) > 0);
      assert.ok(Number(attribute(root, 'gen_ai.usage.input_tokens')) > 0);

      const received = h.model.received.at(-1)!.headers.traceparent;
      assert.equal(received, `00-${CLIENT_TRACE}-${upstream.spanId}-01`, 'the upstream continues the trace from the forward span');
      assert.ok(!JSON.stringify(trace).includes('quarterly'), 'prompt text in a span');
      const logged = logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'request' && l.path === '/v1/chat/completions');
      assert.equal(logged?.traceId, CLIENT_TRACE, 'the access log names the trace');
    });
  });

  test('tracing off: the client traceparent still reaches the upstream, validated; a malformed one does not', async () => {
    const h = await startHarness();
    try {
      const token = await h.userToken('alice');
      for (const [sent, expected] of [
        [`00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`, `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`],
        ['00-not-a-trace-id-x-01', undefined],
      ] as const) {
        const client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: token, maxRetries: 0, defaultHeaders: { traceparent: sent } });
        await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] });
        assert.equal(h.model.received.at(-1)!.headers.traceparent, expected);
      }
    } finally {
      await h.close();
    }
  });
});
