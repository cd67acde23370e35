// patchCaBundle through @kubernetes/client-node against an HTTP server that
// speaks the admissionregistration/v1 REST contract (see the fake's header).
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { generateCa, mergeCaBundle, patchCaBundle, type KeyPairPem } from '../../certs/index.ts';
import { certificateBlocks } from '../../certs/bundle.ts';
import { WEBHOOK_CONFIGURATION_NAME, WEBHOOK_NAMES } from '../../policies/wellknown.ts';
import { FakeApiServer } from '../support/certs-fake-apiserver.ts';
import { silent } from '../support/certs-tools.ts';

const NAME = WEBHOOK_CONFIGURATION_NAME;
const MUT = 'mutatingwebhookconfigurations' as const;
const VAL = 'validatingwebhookconfigurations' as const;
const svc = { service: { name: 'faultline', namespace: 'faultline-system', path: '/x' } };
const decode = (b64: string | undefined) => Buffer.from(b64 ?? '', 'base64').toString('utf8');

describe('certs: patchCaBundle', function () {
  let api: FakeApiServer;
  let ca: KeyPairPem;
  let otherCa: KeyPairPem;

  before(async function () {
    [ca, otherCa] = await Promise.all([generateCa(), generateCa()]);
  });
  beforeEach(async function () {
    api = new FakeApiServer();
    await api.start();
    api.put(MUT, NAME, [{ name: WEBHOOK_NAMES.mutatePods, clientConfig: { ...svc } }]);
    api.put(VAL, NAME, [
      { name: WEBHOOK_NAMES.validatePolicies, clientConfig: { ...svc, caBundle: Buffer.from(otherCa.certPem).toString('base64') } },
      { name: WEBHOOK_NAMES.validateTenants, clientConfig: { ...svc } },
    ]);
  });
  afterEach(async function () {
    await api.stop();
  });

  it('sets caBundle (PEM, base64-encoded once) on every webhook of both configurations', async function () {
    const outcomes = await patchCaBundle(api.kubeConfig(), ca.certPem, { log: silent });
    assert.deepEqual(
      outcomes.map((o) => [o.kind, o.status, o.webhooks]),
      [
        ['MutatingWebhookConfiguration', 'updated', [WEBHOOK_NAMES.mutatePods]],
        ['ValidatingWebhookConfiguration', 'updated', [WEBHOOK_NAMES.validatePolicies, WEBHOOK_NAMES.validateTenants]],
      ],
    );
    const all = [...api.get(MUT, NAME)!.webhooks!, ...api.get(VAL, NAME)!.webhooks!];
    assert.equal(all.length, 3);
    for (const w of all) {
      const pem = decode(w.clientConfig.caBundle);
      assert.match(pem, /^-----BEGIN CERTIFICATE-----\n/);
      assert.equal(new X509Certificate(pem).fingerprint256, new X509Certificate(ca.certPem).fingerprint256);
      assert.deepEqual(w.clientConfig.service, svc.service, 'the rest of clientConfig is preserved');
    }
  });

  it('writes nothing when every caBundle is already current', async function () {
    await patchCaBundle(api.kubeConfig(), ca.certPem, { log: silent });
    const putsBefore = api.puts.length;
    const outcomes = await patchCaBundle(api.kubeConfig(), ca.certPem, { log: silent });
    assert.deepEqual(outcomes.map((o) => o.status), ['unchanged', 'unchanged']);
    assert.equal(api.puts.length, putsBefore);
  });

  it('re-reads and retries when a concurrent writer causes a 409 Conflict', async function () {
    api.interfereAfterGet.set(`${MUT}/${NAME}`, 2);
    const outcomes = await patchCaBundle(api.kubeConfig(), ca.certPem, { log: silent });
    assert.equal(outcomes[0]!.status, 'updated');
    const mutRequests = api.requests.filter((r) => r.includes(MUT));
    assert.deepEqual(mutRequests, [`GET ${MUT}/${NAME}`, `PUT ${MUT}/${NAME}`, `GET ${MUT}/${NAME}`, `PUT ${MUT}/${NAME}`, `GET ${MUT}/${NAME}`, `PUT ${MUT}/${NAME}`]);
    assert.ok(decode(api.get(MUT, NAME)!.webhooks![0]!.clientConfig.caBundle).includes('BEGIN CERTIFICATE'));
  });

  it('gives up after the configured number of conflicts with a clear error', async function () {
    api.interfereAfterGet.set(`${MUT}/${NAME}`, 10);
    await assert.rejects(
      patchCaBundle(api.kubeConfig(), ca.certPem, { log: silent, conflictRetries: 2 }),
      /updating MutatingWebhookConfiguration "faultline": HTTP 409: Operation cannot be fulfilled/,
    );
  });

  it('reports a missing configuration as not-found and still patches the other', async function () {
    api.objects.delete(`${MUT}/${NAME}`);
    const outcomes = await patchCaBundle(api.kubeConfig(), ca.certPem, { log: silent });
    assert.deepEqual(outcomes.map((o) => o.status), ['not-found', 'updated']);
  });

  it('with retainValid keeps the still-valid CA already deployed next to the new one', async function () {
    const outcomes = await patchCaBundle(api.kubeConfig(), ca.certPem, { log: silent, retainValid: true });
    assert.deepEqual(outcomes.map((o) => o.status), ['updated', 'updated']);
    const [policies, tenants] = api.get(VAL, NAME)!.webhooks!;
    assert.equal(decode(policies!.clientConfig.caBundle), mergeCaBundle(otherCa.certPem, ca.certPem));
    assert.equal(certificateBlocks(decode(policies!.clientConfig.caBundle)).length, 2);
    assert.equal(certificateBlocks(decode(tenants!.clientConfig.caBundle)).length, 1);
  });

  it('rejects a caPem that is not a CA bundle before calling the API', async function () {
    await assert.rejects(patchCaBundle(api.kubeConfig(), 'nope', { log: silent }), /holds no PEM certificate/);
    assert.deepEqual(api.requests, []);
  });

  it('surfaces an unreachable API server as an error naming the operation', async function () {
    const kc = api.kubeConfig();
    await api.stop();
    await assert.rejects(patchCaBundle(kc, ca.certPem, { log: silent }), /reading MutatingWebhookConfiguration "faultline": /);
  });
});
