// The admission plumbing over real HTTPS: skip rules with their warnings and
// metrics, bad input with its JSON errors, non-pod objects, uid echo, dryRun.
import assert from 'node:assert/strict';
import { request as httpsRequest } from 'node:https';
import { createServer, type IncomingMessage } from 'node:http';
import { createConnection, type AddressInfo } from 'node:net';
import { encodeReviewResponse, HttpError, reviewResponse, type AdmissionVerdict } from '../../webhook/admission.ts';
import { readJsonBody } from '../../webhook/review-body.ts';
import { podReview, decodePatch, startTestWebhook, type AdmissionReviewAnswer, type TestWebhook } from '../support/webhook-server.ts';

const APP = { name: 'app', image: 'nginx:1.27', ports: [{ containerPort: 8080 }] };
const pod = (extra: { metadata?: object; spec?: object } = {}): object => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web', ...extra.metadata },
  spec: { containers: [APP], ...extra.spec },
});

describe('webhook: admission handling', function () {
  let hook: TestWebhook;
  before(async () => {
    hook = await startTestWebhook();
  });
  after(async () => {
    await hook?.close();
  });

  describe('skip rules', () => {
    // warning null: skipped silently (a pod carrying our own annotation is injected; saying otherwise would be false).
    const cases: Array<{ reason: string; review: object; warning: RegExp | null }> = [
      { reason: 'host-network', review: podReview(pod({ spec: { hostNetwork: true } })), warning: /hostNetwork/ },
      {
        reason: 'mirror-pod',
        review: podReview(pod({ metadata: { annotations: { 'kubernetes.io/config.mirror': 'abc123' } } })),
        warning: /mirror/,
      },
      { reason: 'opted-out', review: podReview(pod({ metadata: { labels: { 'faultline.dev/inject': 'false' } } })), warning: /label faultline\.dev\/inject=false/ },
      {
        reason: 'opted-out',
        review: podReview(pod({ metadata: { annotations: { 'faultline.dev/inject': 'false' } } })),
        warning: /annotation faultline\.dev\/inject=false/,
      },
      {
        reason: 'already-injected',
        review: podReview(pod({ metadata: { annotations: { 'faultline.dev/injected': '0.0.9' } } })),
        warning: null,
      },
      {
        reason: 'already-injected',
        review: podReview(pod({ spec: { initContainers: [{ name: 'faultline-proxy', image: 'x', restartPolicy: 'Always' }] } })),
        warning: /container faultline-proxy/,
      },
      { reason: 'system-namespace', review: podReview(pod(), { namespace: 'kube-system' }), warning: /kube-system/ },
      { reason: 'system-namespace', review: podReview(pod(), { namespace: 'faultline-system' }), warning: /faultline-system/ },
      {
        reason: 'name-collision',
        review: podReview(pod({ spec: { volumes: [{ name: 'faultline-run', emptyDir: {} }] } })),
        warning: /volume named faultline-run/,
      },
      {
        reason: 'port-conflict',
        review: podReview(pod({ spec: { containers: [{ ...APP, ports: [{ containerPort: 16021 }] }] } })),
        warning: /16021/,
      },
      // A malformed exclusion annotation is denied, not skipped: test/unit/webhook-capture.test.ts.
    ];
    for (const c of cases) {
      it(`skips ${c.reason} (${c.warning?.source ?? 'silently'}) with ${c.warning ? 'a warning and ' : ''}a metric`, async () => {
        const before = await hook.metric('faultline_injection_skips_total', { reason: c.reason, dry_run: 'false' });
        const answer = await hook.review(c.review);
        assert.equal(answer.response.allowed, true);
        assert.equal(answer.response.patch, undefined);
        assert.equal(answer.response.patchType, undefined);
        if (c.warning === null) assert.equal(answer.response.warnings, undefined);
        else {
          assert.equal(answer.response.warnings?.length, 1);
          assert.match(answer.response.warnings![0]!, new RegExp(`\\(${c.reason}\\)`));
          assert.match(answer.response.warnings![0]!, c.warning);
        }
        assert.equal(await hook.metric('faultline_injection_skips_total', { reason: c.reason, dry_run: 'false' }), before + 1);
      });
    }

    it('injects a pod labelled faultline.dev/inject=true (only "false" opts out)', async () => {
      const answer = await hook.review(podReview(pod({ metadata: { labels: { 'faultline.dev/inject': 'true' } } })));
      assert.ok(decodePatch(answer).length > 0);
    });
  });

  it('echoes the request uid and counts reviews and injections', async () => {
    const reviews = await hook.metric('faultline_admission_reviews_total', { handler: 'mutate-pods', result: 'patched' });
    const injections = await hook.metric('faultline_injections_total', { dry_run: 'false' });
    const answer = await hook.review(podReview(pod(), { uid: '705ab4f5-6393-11e8-b7cc-42010a800002' }));
    assert.equal(answer.apiVersion, 'admission.k8s.io/v1');
    assert.equal(answer.kind, 'AdmissionReview');
    assert.equal(answer.response.uid, '705ab4f5-6393-11e8-b7cc-42010a800002');
    assert.equal(await hook.metric('faultline_admission_reviews_total', { handler: 'mutate-pods', result: 'patched' }), reviews + 1);
    assert.equal(await hook.metric('faultline_injections_total', { dry_run: 'false' }), injections + 1);
    const metrics = (await hook.get('/metrics')).text;
    assert.match(metrics, /faultline_admission_review_duration_seconds_bucket\{le="0.001",handler="mutate-pods"\} \d+/);
    assert.match(metrics, /process_cpu_seconds_total/);
  });

  it('renders the same patch for a dryRun review and counts it as dry_run', async () => {
    const dry = await hook.metric('faultline_injections_total', { dry_run: 'true' });
    const real = await hook.review(podReview(pod(), { uid: 'a' }));
    const dryRun = await hook.review(podReview(pod(), { uid: 'a', dryRun: true }));
    assert.deepEqual(dryRun, real);
    assert.equal(await hook.metric('faultline_injections_total', { dry_run: 'true' }), dry + 1);
  });

  it('allows objects that are not pods, and non-CREATE operations, without a patch', async () => {
    const cm = podReview({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } }, { uid: 'cm' });
    cm.request.kind = { group: '', version: 'v1', kind: 'ConfigMap' };
    cm.request.resource = { group: '', version: 'v1', resource: 'configmaps' };
    const answer = await hook.review(cm);
    assert.deepEqual(answer.response, { uid: 'cm', allowed: true });

    const status = podReview(pod(), { uid: 'status' });
    status.request.subResource = 'status';
    assert.deepEqual((await hook.review(status)).response, { uid: 'status', allowed: true });

    const update = await hook.review(podReview(pod(), { uid: 'u', operation: 'UPDATE' }));
    assert.deepEqual(update.response, { uid: 'u', allowed: true });
  });

  describe('bad input', () => {
    const valid = JSON.stringify(podReview(pod()));
    const cases: Array<{ name: string; body: string; headers?: Record<string, string>; status: number; error: RegExp }> = [
      { name: 'non-JSON body', body: '{"apiVersion": ', status: 400, error: /not valid JSON/ },
      { name: 'wrong content type', body: valid, headers: { 'content-type': 'text/plain' }, status: 415, error: /application\/json/ },
      { name: 'missing content type', body: valid, headers: {}, status: 415, error: /application\/json/ },
      { name: 'a JSON array', body: '[]', status: 400, error: /JSON object/ },
      { name: 'an empty body', body: '', status: 400, error: /not valid JSON/ },
      { name: 'a gzip-encoded body', body: valid, headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, status: 415, error: /Content-Encoding "gzip"/ },
      { name: 'a charset other than UTF-8', body: valid, headers: { 'content-type': 'application/json; charset=latin1' }, status: 415, error: /charset "LATIN1"/ },
      { name: 'wrong apiVersion', body: JSON.stringify({ ...JSON.parse(valid), apiVersion: 'admission.k8s.io/v1beta1' }), status: 400, error: /v1beta1/ },
      { name: 'wrong kind', body: JSON.stringify({ ...JSON.parse(valid), kind: 'Pod' }), status: 400, error: /kind "Pod"/ },
      { name: 'missing request', body: JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), status: 400, error: /no request/ },
      {
        name: 'missing request.uid',
        body: JSON.stringify({ ...JSON.parse(valid), request: { ...JSON.parse(valid).request, uid: undefined } }),
        status: 400,
        error: /request\.uid/,
      },
      {
        name: 'pod CREATE without object',
        body: JSON.stringify({ ...JSON.parse(valid), request: { ...JSON.parse(valid).request, object: undefined } }),
        status: 400,
        error: /request\.object/,
      },
    ];
    for (const c of cases) {
      it(`answers ${c.status} with a JSON error for ${c.name}`, async () => {
        const before = await hook.metric('faultline_admission_reviews_total', { handler: 'mutate-pods', result: 'bad_request' });
        const answer = await hook.post('/mutate/pods', c.body, c.headers ?? { 'content-type': 'application/json' });
        assert.equal(answer.status, c.status, answer.text);
        assert.match(String(answer.headers['content-type']), /^application\/json/);
        assert.match((JSON.parse(answer.text) as { error: string }).error, c.error);
        assert.equal(await hook.metric('faultline_admission_reviews_total', { handler: 'mutate-pods', result: 'bad_request' }), before + 1);
      });
    }

    it('accepts application/json with a charset parameter', async () => {
      const answer = await hook.post('/mutate/pods', valid, { 'content-type': 'application/json; charset=utf-8' });
      assert.equal(answer.status, 200);
    });

    it('answers 413 with a JSON error for a body over 3 MiB', async () => {
      const review = podReview(pod({ metadata: { annotations: { big: 'x'.repeat(3 * 1024 * 1024) } } }));
      const answer = await hook.post('/mutate/pods', JSON.stringify(review));
      assert.equal(answer.status, 413);
      assert.match((JSON.parse(answer.text) as { error: string }).error, /3 MiB/);
    });

    it('answers 413 for a chunked body (no Content-Length) over 3 MiB, after reading it off', async () => {
      const before = await hook.metric('faultline_admission_reviews_total', { handler: 'mutate-pods', result: 'bad_request' });
      const review = Buffer.from(JSON.stringify(podReview(pod({ metadata: { annotations: { big: 'x'.repeat(3 * 1024 * 1024) } } }))));
      const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = httpsRequest(
          { host: '127.0.0.1', port: hook.port, method: 'POST', path: '/mutate/pods', ca: hook.certs.ca, agent: false, headers: { 'content-type': 'application/json' } },
          (res) => {
            let text = '';
            res.setEncoding('utf8').on('data', (d: string) => (text += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          },
        );
        req.on('error', reject);
        // Several writes without a length: Transfer-Encoding: chunked.
        for (let at = 0; at < review.length; at += 256 * 1024) req.write(review.subarray(at, at + 256 * 1024));
        req.end();
      });
      assert.equal(answer.status, 413);
      assert.match((JSON.parse(answer.text) as { error: string }).error, /3 MiB/);
      assert.equal(await hook.metric('faultline_admission_reviews_total', { handler: 'mutate-pods', result: 'bad_request' }), before + 1);
    });

    it('accepts a body just under 3 MiB', async () => {
      const envelope = JSON.stringify(podReview(pod({ metadata: { annotations: { big: '' } } })));
      const review = podReview(pod({ metadata: { annotations: { big: 'x'.repeat(3 * 1024 * 1024 - envelope.length) } } }));
      assert.equal(Buffer.byteLength(JSON.stringify(review)), 3 * 1024 * 1024);
      const answer = await hook.post('/mutate/pods', JSON.stringify(review));
      assert.equal(answer.status, 200);
    });

    it('answers 404 JSON for unknown paths and 405 for GET on a review path', async () => {
      const missing = await hook.get('/mutate/deployments');
      assert.equal(missing.status, 404);
      assert.match((JSON.parse(missing.text) as { error: string }).error, /no route for GET \/mutate\/deployments/);
      const get = await hook.get('/mutate/pods');
      assert.equal(get.status, 405);
      assert.equal(get.headers.allow, 'POST');
    });
  });

  // Reviews skip express (review-endpoint.ts); a review path spelled as
  // express would still match it goes through express to the same endpoint.
  describe('the review path as the API server and others spell it', () => {
    const review = JSON.stringify(podReview(pod(), { uid: 'spelled' }));
    for (const path of ['/mutate/pods?timeout=10s', '/mutate/pods/', '/Mutate/Pods', '/mutate/pods/?timeout=10s'])
      it(`answers ${path} with the same injection, counted once`, async () => {
        const before = await hook.metric('faultline_admission_reviews_total', { handler: 'mutate-pods', result: 'patched' });
        const answer = await hook.post(path, review);
        assert.equal(answer.status, 200, answer.text);
        assert.equal(answer.headers['content-type'], 'application/json; charset=utf-8');
        assert.equal(Number(answer.headers['content-length']), Buffer.byteLength(answer.text));
        const parsed = JSON.parse(answer.text) as AdmissionReviewAnswer;
        assert.equal(parsed.response.uid, 'spelled');
        assert.ok(decodePatch(parsed).length > 0);
        assert.equal(await hook.metric('faultline_admission_reviews_total', { handler: 'mutate-pods', result: 'patched' }), before + 1);
      });

    it('answers a bad review on a spelled path with the same JSON error', async () => {
      const answer = await hook.post('/mutate/pods/', '[]');
      assert.equal(answer.status, 400);
      assert.match((JSON.parse(answer.text) as { error: string }).error, /JSON object/);
    });
  });

  it('reports healthz and readyz', async () => {
    assert.equal((await hook.get('/healthz')).status, 200);
    const ready = await hook.get('/readyz');
    assert.equal(ready.status, 200);
    assert.deepEqual(JSON.parse(ready.text), { status: 'ready' });
  });

  it('survives plain HTTP on the TLS port', async () => {
    await new Promise<void>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port: hook.port }, () => socket.end('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
      // A reset is as good an answer as any; the server just must not die.
      socket.on('error', () => {});
      socket.on('close', () => resolve());
      socket.resume();
    });
    assert.equal((await hook.get('/healthz')).status, 200);
  });
});

describe('webhook: the answer as text (encodeReviewResponse)', () => {
  const patch = [
    { op: 'add' as const, path: '/metadata/annotations/a~1b', value: 'quotes " and \\ backslash, ünïcödé, 🙂, </script>' },
    { op: 'add' as const, path: '/spec/initContainers', value: [{ name: 'x', env: [{ name: 'PLAN', value: '{"k":"v"}' }] }] },
  ];
  const verdicts: Array<[string, AdmissionVerdict]> = [
    ['a patch', { allowed: true, patch }],
    ['a patch with warnings', { allowed: true, patch, warnings: ['faultline: "w" ü'] }],
    ['an empty patch', { allowed: true, patch: [] }],
    ['a denial', { allowed: false, status: { code: 400, reason: 'BadRequest', message: 'faultline: bad "annotation" ü' } }],
    ['a skip with a warning', { allowed: true, result: 'skipped', warnings: ['faultline: proxy not injected'] }],
  ];
  for (const [name, verdict] of verdicts)
    it(`is reviewResponse() as JSON, for ${name}`, () => {
      const text = encodeReviewResponse('uid-ü', verdict);
      assert.deepEqual(JSON.parse(text), reviewResponse('uid-ü', verdict));
      const sent = (JSON.parse(text) as ReturnType<typeof reviewResponse>).response.patch;
      if (verdict.patch?.length) assert.deepEqual(JSON.parse(Buffer.from(sent!, 'base64').toString('utf8')), verdict.patch);
    });
});

describe('webhook: reading a review body (readJsonBody)', () => {
  /** The promise readJsonBody gave for one request whose client sends `head` and half its declared body, then goes away. */
  async function abortedMidBody(head: string): Promise<unknown> {
    const server = createServer();
    let settled!: Promise<unknown>;
    const seen = new Promise<void>((resolve) => {
      server.once('request', (req: IncomingMessage) => {
        settled = readJsonBody(req, 1024).then(() => 'resolved', (err: unknown) => err);
        resolve();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const client = createConnection((server.address() as AddressInfo).port, '127.0.0.1');
      client.write(`POST /mutate HTTP/1.1\r\nHost: x\r\n${head}Content-Length: 100\r\n\r\n{"half":`);
      await seen;
      client.destroy();
      return await settled;
    } finally {
      server.closeAllConnections();
      server.close();
    }
  }

  it('answers a client that goes away mid-body with a 400, not a webhook failure', async () => {
    const err = await abortedMidBody('Content-Type: application/json\r\n');
    assert.ok(err instanceof HttpError, String(err));
    assert.equal(err.status, 400);
    assert.match(err.message, /request aborted/);
  });

  it('settles a refused body (415) whose client goes away while it is read off', async () => {
    const err = await abortedMidBody('Content-Type: application/json\r\nContent-Encoding: gzip\r\n');
    assert.ok(err instanceof HttpError, String(err));
    assert.equal(err.status, 400);
  });
});
