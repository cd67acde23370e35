// The self-managed certificate decisions (certs/secret-plan.ts) and the
// material each write produces (certs/secret-material.ts): Secret contents +
// clock in, plan out. No cluster, no files.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { certificateBlocks } from '../../certs/bundle.ts';
import { servingNames } from '../../certs/names.ts';
import { renderMaterial } from '../../certs/secret-material.ts';
import { planSecret, trustBundle, type Plan, type PlanInput, type SecretMaterial } from '../../certs/secret-plan.ts';
import { generateCa, issueServingCert, type KeyPairPem } from '../../certs/x509.ts';

const DAY = 86_400_000;
const NOW = new Date('2030-06-01T00:00:00Z');
const RENEW_BEFORE = 30 * DAY;
const DELAY = 10_000;
const SERVICE = { service: 'faultline-webhook', namespace: 'faultline-system', hosts: ['127.0.0.1'] } as const;
const NAMES = servingNames(SERVICE.service, SERVICE.namespace, SERVICE.hosts);
const ago = (days: number) => new Date(NOW.getTime() - days * DAY);

function plan(material: SecretMaterial | undefined, extra: Partial<PlanInput> = {}): Plan {
  return planSecret({ material, names: NAMES, now: NOW, renewBeforeMs: RENEW_BEFORE, caPublishedForMs: undefined, propagationDelayMs: DELAY, ...extra });
}

function secret(ca: KeyPairPem, leaf: KeyPairPem, bundle: string[] = [ca.certPem]): SecretMaterial {
  return { caCert: ca.certPem, caKey: ca.keyPem, cert: leaf.certPem, key: leaf.keyPem, bundle: bundle.join('') };
}

const subjects = (pem: string) => certificateBlocks(pem).map((b) => new X509Certificate(b).subject);

describe('certs: Secret-backed certificate plan', function () {
  // Key generation is the slow part; every fixture is made once.
  let ca: KeyPairPem, leaf: KeyPairPem;
  let nextCa: KeyPairPem;
  let expiringCa: KeyPairPem, expiredCa: KeyPairPem;
  let expiringLeaf: KeyPairPem, otherServiceLeaf: KeyPairPem, foreignLeaf: KeyPairPem;

  before(async function () {
    this.timeout(30_000);
    ca = await generateCa({ now: ago(100) });
    nextCa = await generateCa({ now: ago(1) });
    leaf = await issueServingCert(ca, { ...SERVICE, now: ago(100) });
    // 3650-day CA issued 3640 days ago: 10 days left, inside the 30-day window.
    expiringCa = await generateCa({ now: ago(3640) });
    expiredCa = await generateCa({ days: 1, now: ago(2) });
    expiringLeaf = await issueServingCert(ca, { ...SERVICE, days: 20, now: NOW });
    otherServiceLeaf = await issueServingCert(ca, { ...SERVICE, service: 'old-name', now: ago(1) });
    foreignLeaf = await issueServingCert(await generateCa({ now: ago(1) }), { ...SERVICE, now: ago(1) });
  });

  describe('decide', function () {
    it('creates the Secret when it does not exist', function () {
      assert.deepEqual(plan(undefined), { action: 'create', reason: 'the Secret does not exist' });
    });

    it('keeps a valid CA and leaf, whatever the propagation state', function () {
      assert.deepEqual(plan(secret(ca, leaf)), { action: 'keep' });
      assert.deepEqual(plan(secret(ca, leaf), { caPublishedForMs: 0 }), { action: 'keep' });
    });

    it('replaces everything when the CA is unusable: missing key, mismatched key, expired', function () {
      const missing = plan({ ...secret(ca, leaf), caKey: undefined });
      assert.equal(missing.action, 'create');
      assert.match((missing as { reason: string }).reason, /ca\.key does not exist/);
      const mismatched = plan({ ...secret(ca, leaf), caKey: nextCa.keyPem });
      assert.match((mismatched as { reason: string }).reason, /ca\.key does not match ca\.crt/);
      assert.equal(mismatched.action, 'create');
      const expired = plan(secret(expiredCa, leaf));
      assert.equal(expired.action, 'create');
      assert.match((expired as { reason: string }).reason, /ca\.crt expired/);
    });

    it('rotates a CA inside the renewal window, and not one just outside it', function () {
      const due = plan(secret(expiringCa, leaf));
      assert.equal(due.action, 'rotate-ca');
      assert.match((due as { reason: string }).reason, /within the 30-day renewal window/);
      assert.deepEqual(plan(secret(expiringCa, leaf), { renewBeforeMs: 9 * DAY }).action, 'issue-leaf', 'CA kept; the leaf is not from it');
    });

    it('issues a new leaf under the same CA when only the leaf is due, misnamed, missing or foreign', function () {
      const expiring = plan(secret(ca, expiringLeaf));
      assert.equal(expiring.action, 'issue-leaf');
      assert.match((expiring as { reason: string }).reason, /tls\.crt expires on .* within the 30-day renewal window/);
      assert.match((plan(secret(ca, otherServiceLeaf)) as { reason: string }).reason, /names changed/);
      assert.match((plan({ ...secret(ca, leaf), cert: undefined, key: undefined }) as { reason: string }).reason, /tls\.crt and tls\.key do not exist/);
      // Signed by a CA nobody trusts (not in ca-bundle.crt): no reason to wait.
      assert.match((plan(secret(ca, foreignLeaf)) as { reason: string }).reason, /not signed by the CA/);
    });

    it('honours the rotate annotation: "ca" before anything else, "leaf" on a valid leaf, anything else ignored', function () {
      assert.equal(plan(secret(ca, leaf), { rotate: 'ca' }).action, 'rotate-ca');
      assert.equal(plan(secret(ca, leaf), { rotate: 'leaf' }).action, 'issue-leaf');
      assert.deepEqual(plan(secret(ca, leaf), { rotate: 'yes please' }), { action: 'keep' });
    });

    it('moves the leaf to a staged CA only after the caBundle has carried it for the propagation delay', function () {
      // After rotate-ca: ca.crt is the new CA, the leaf is still from the old one, both are trusted.
      const staged = secret(nextCa, leaf, [nextCa.certPem, ca.certPem]);
      const unseen = plan(staged);
      assert.equal(unseen.action, 'wait');
      assert.equal((unseen as { retryInMs: number }).retryInMs, DELAY);
      const early = plan(staged, { caPublishedForMs: 4_000 });
      assert.deepEqual([early.action, (early as { retryInMs: number }).retryInMs], ['wait', 6_000]);
      assert.equal(plan(staged, { caPublishedForMs: DELAY }).action, 'issue-leaf');
      // A leaf request does not skip the wait: it is the same move.
      assert.equal(plan(staged, { rotate: 'leaf' }).action, 'wait');
    });

    it('does not wait for an old-CA leaf that has expired: it serves nothing anyone trusts', async function () {
      const shortLeaf = await issueServingCert(ca, { ...SERVICE, days: 1, now: ago(2) });
      assert.equal(plan(secret(nextCa, shortLeaf, [nextCa.certPem, ca.certPem])).action, 'issue-leaf');
    });
  });

  describe('trustBundle', function () {
    it('is ca.crt first, then the other still-valid CAs of ca-bundle.crt, each once', function () {
      const bundle = trustBundle(secret(nextCa, leaf, [ca.certPem, nextCa.certPem, ca.certPem]), NOW);
      assert.deepEqual(subjects(bundle), subjects(nextCa.certPem + ca.certPem));
    });

    it('drops expired CAs and garbage; survives a missing ca-bundle.crt', function () {
      const bundle = trustBundle(secret(ca, leaf, [expiredCa.certPem, '-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----\n']), NOW);
      assert.deepEqual(subjects(bundle), subjects(ca.certPem));
      assert.deepEqual(subjects(trustBundle({ ...secret(ca, leaf), bundle: undefined }, NOW)), subjects(ca.certPem));
    });

    it('keeps the previous CA exactly until it expires', function () {
      const material = secret(nextCa, leaf, [nextCa.certPem, expiredCa.certPem]);
      const expiry = new X509Certificate(expiredCa.certPem).validToDate;
      assert.equal(certificateBlocks(trustBundle(material, new Date(expiry.getTime() - 1))).length, 2);
      assert.equal(certificateBlocks(trustBundle(material, expiry)).length, 1);
    });
  });

  describe('a full rotation, plan by plan', function () {
    it('create → keep → rotate-ca (leaf untouched, both CAs trusted) → wait → issue-leaf from the new CA → keep', async function () {
      this.timeout(10_000);
      const opts = { ...SERVICE, now: NOW };
      const created = await renderMaterial({ action: 'create', reason: 'test' }, undefined, opts);
      assert.deepEqual(plan(created), { action: 'keep' });
      assert.equal(certificateBlocks(created.bundle).length, 1);

      const staged = await renderMaterial({ action: 'rotate-ca', reason: 'test' }, created, opts);
      assert.notEqual(staged.caCert, created.caCert);
      assert.equal(staged.cert, created.cert, 'the serving certificate waits for the new CA to be published');
      assert.equal(staged.key, created.key);
      assert.deepEqual(subjects(trustBundle(staged, NOW)), subjects(staged.caCert + created.caCert));
      assert.equal(plan(staged, { caPublishedForMs: 0 }).action, 'wait');

      const moved = await renderMaterial({ action: 'issue-leaf', reason: 'test' }, staged, opts);
      assert.equal(moved.caCert, staged.caCert);
      const served = new X509Certificate(moved.cert);
      assert.ok(served.checkIssued(new X509Certificate(staged.caCert)), 'the new leaf is signed by the new CA');
      assert.deepEqual(subjects(moved.bundle), subjects(staged.caCert + created.caCert), 'the old CA stays trusted');
      assert.deepEqual(plan(moved, { caPublishedForMs: 0 }), { action: 'keep' });
    });
  });
});
