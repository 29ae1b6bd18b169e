// /metrics names models, issuers and rules. By default it is served open on
// the main port (what Prometheus expects); `server.metrics` moves it to its
// own address and requires a bearer token.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startHarness, type Harness } from '../helpers/harness.js';

const BEARER = 'scrape-token-0123456789abcdef';

describe('metrics access', () => {
  let open: Harness;
  let locked: Harness;
  before(async () => {
    open = await startHarness();
    locked = await startHarness({
      configure(input) {
        input.server = { ...input.server, metrics: { listen: '127.0.0.1:0', bearer: BEARER } };
      },
    });
  });
  after(async () => {
    await open.close();
    await locked.close();
  });

  const get = async (url: string, token?: string) => {
    const response = await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    return { status: response.status, text: await response.text() };
  };

  test('default: served on the main port without a token', async () => {
    const answer = await get(`${open.url}/metrics`);
    assert.equal(answer.status, 200);
    assert.match(answer.text, /modelgate_/);
  });

  test('server.metrics.listen: the main port does not serve /metrics at all', async () => {
    assert.equal((await get(`${locked.url}/metrics`)).status, 404);
    assert.equal((await get(`${locked.url}/metrics`, BEARER)).status, 404);
  });

  test('server.metrics.bearer: the metrics listener needs the token', async () => {
    const url = locked.gateway.metricsUrl;
    assert.ok(url && url !== locked.url);
    assert.equal((await get(`${url}/metrics`)).status, 401);
    assert.equal((await get(`${url}/metrics`, `${BEARER}x`)).status, 401);
    const scraped = await get(`${url}/metrics`, BEARER);
    assert.equal(scraped.status, 200);
    assert.match(scraped.text, /modelgate_/);
  });

  test('the metrics listener serves nothing but /metrics', async () => {
    assert.equal((await get(`${locked.gateway.metricsUrl}/v1/models`, BEARER)).status, 404);
  });
});
