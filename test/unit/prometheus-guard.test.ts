// abortWhen.prometheus: the webhook's bounds, the tenant's allowlist of
// Prometheus URLs, and the reconciler's evaluation against a tiny local HTTP
// server speaking Prometheus' /api/v1/query JSON.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { abortNoticeEvent, parseAbortNotice, describeAbort } from '../../policies/abort-notice.ts';
import { validatePolicy } from '../../policies/validate.ts';
import { admissionVerdict } from '../../policies/verdict.ts';
import type { ChaosPolicy } from '../../policies/types.ts';
import { PrometheusGuards, queryValue, runQuery, type PrometheusBreach } from '../../webhook/reconciler/prometheus-guard.ts';
import { policy, T0, tenant } from '../support/policies-fixtures.ts';

const faults = { http: [{ delay: { fixed: '100ms' } }] };
const ns = { name: 'shop', labels: { 'faultline.dev/chaos': 'enabled' } };
const PROM = 'http://prometheus.monitoring:9090';
const guarded = (url = PROM, extra: Record<string, unknown> = {}) => policy({ ...faults, abortWhen: { prometheus: { url, query: 'sum(rate(http_errors_total[1m]))', above: 5, ...extra } } });

describe('abortWhen.prometheus: admission', () => {
  it('the webhook bounds the URL, the query and the interval', () => {
    assert.deepEqual(validatePolicy(guarded()), []);
    const errs = (p: ChaosPolicy) => validatePolicy(p).map((e) => `${e.path}: ${e.message}`).join('\n');
    assert.match(errs(guarded('ftp://x')), /spec\.abortWhen\.prometheus\.url: .*must be http or https/);
    assert.match(errs(guarded('http://user:pw@prom:9090')), /must not carry credentials/);
    assert.match(errs(guarded('not a url')), /must be an absolute URL/);
    assert.match(errs(guarded(PROM, { interval: '1s' })), /spec\.abortWhen\.prometheus\.interval: .*between 5s and 10m/);
    assert.match(errs(guarded(PROM, { interval: '1h' })), /between 5s and 10m/);
    assert.match(errs(guarded(PROM, { query: '' })), /spec\.abortWhen\.prometheus\.query/);
  });

  it('the tenant lists the Prometheus the reconciler may query; any other URL is denied', () => {
    const verdict = (p: ChaosPolicy, prometheusUrls?: string[]) =>
      admissionVerdict({ policy: p, namespace: ns, tenants: [tenant({ kinds: ['http.delay'], ...(prometheusUrls ? { prometheusUrls } : {}) })], user: undefined });
    const none = verdict(guarded());
    assert.equal(none.allowed, false);
    assert.match(none.message, /spec\.abortWhen\.prometheus\.url: http:\/\/prometheus\.monitoring:9090 is not a Prometheus the tenant allows \(allow\.prometheusUrls lists none\)/);
    assert.equal(verdict(guarded(), [`${PROM}/`]).allowed, true, 'a trailing slash is the same base');
    assert.equal(verdict(guarded('http://10.0.0.1:9090'), [PROM]).allowed, false);
    assert.equal(verdict(guarded(`${PROM}/../admin`), [PROM]).allowed, false);
  });

  it('a Prometheus abort is a notice like a proxy\'s, described with its value', () => {
    const event = abortNoticeEvent({ namespace: 'shop', name: 'p' }, { condition: 'prometheus', observed: 7.5, threshold: 5, requests: 0, windowMs: 30_000, uid: 'uid-p', generation: 2 }, 'faultline-reconciler', T0, 'faultline-reconciler');
    const notice = parseAbortNotice(event)!;
    assert.equal(notice.abort.condition, 'prometheus');
    assert.equal(describeAbort(notice.abort), 'Prometheus query value 7.5 exceeded 5 (evaluated every 30s), seen by faultline-reconciler');
  });
});

describe('abortWhen.prometheus: evaluation', () => {
  let server: http.Server;
  let url = '';
  let answer: { status: number; body: string } = { status: 200, body: '' };
  const queries: string[] = [];
  const vector = (...values: number[]) => JSON.stringify({ status: 'success', data: { resultType: 'vector', result: values.map((v, i) => ({ metric: { pod: `web-${i}` }, value: [T0 / 1000, String(v)] })) } });

  before(async () => {
    server = http.createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      if (u.pathname !== '/prom/api/v1/query') {
        res.writeHead(404);
        return void res.end();
      }
      queries.push(u.searchParams.get('query') ?? '');
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(answer.body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/prom`;
  });
  after(async () => {
    await new Promise((r) => server.close(r));
  });

  it('reads the largest sample of a vector or a scalar; errors are named', () => {
    assert.deepEqual(queryValue(vector(1, 9, 3)), { value: 9 });
    assert.deepEqual(queryValue(vector()), { value: undefined });
    assert.deepEqual(queryValue(JSON.stringify({ status: 'success', data: { resultType: 'scalar', result: [1, '2.5'] } })), { value: 2.5 });
    assert.match((queryValue(JSON.stringify({ status: 'error', error: 'parse error at char 3' })) as { error: string }).error, /Prometheus answered error: parse error/);
    assert.match((queryValue('<html>') as { error: string }).error, /not JSON/);
    assert.match((queryValue(JSON.stringify({ status: 'success', data: { resultType: 'matrix', result: [] } })) as { error: string }).error, /matrix/);
  });

  it('queries <url>/api/v1/query and aborts only above the threshold, once per generation', async () => {
    answer = { status: 200, body: vector(2, 4) };
    assert.equal(await runQuery(url, 'up', 2_000), vector(2, 4));
    const p = policy({ ...faults, abortWhen: { prometheus: { url, query: 'sum(errors)', above: 5, interval: '5s' } } }, { generation: 3 });
    const breaches: PrometheusBreach[] = [];
    const errors: string[] = [];
    let current = p;
    const guards = new PrometheusGuards({ current: () => current, onBreach: (b) => breaches.push(b), onError: (_k, m) => errors.push(m) });
    try {
      queries.length = 0;
      guards.sync('shop/p', p, true);
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(queries, ['sum(errors)']);
      assert.equal(breaches.length, 0, '4 is not above 5');
      answer = { status: 200, body: vector(1, 6.5) };
      guards.sync('shop/p', p, false);
      guards.sync('shop/p', p, true); // a fresh watch evaluates at once
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(breaches.length, 1);
      assert.deepEqual([breaches[0]!.observed, breaches[0]!.threshold, breaches[0]!.intervalMs], [6.5, 5, 5_000]);
      answer = { status: 500, body: 'oops' };
      current = { ...p, metadata: { ...p.metadata, generation: 4 } };
      guards.sync('shop/p', current, true);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(breaches.length, 1, 'an error never aborts');
      assert.match(errors.at(-1) ?? '', /not JSON/);
    } finally {
      guards.stop();
    }
  });
});
