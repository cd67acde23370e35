// mergeCaBundle: the trust bundle during CA rotation.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateCa, issueServingCert, mergeCaBundle, type KeyPairPem } from '../../certs/index.ts';
import { certificateBlocks } from '../../certs/bundle.ts';
import { openssl, tempDir } from '../support/certs-tools.ts';

const DAY = 86_400_000;
const fingerprints = (pem: string) => certificateBlocks(pem).map((b) => new X509Certificate(b).fingerprint256);

describe('certs: mergeCaBundle', function () {
  let oldCa: KeyPairPem;
  let newCa: KeyPairPem;
  let expiredCa: KeyPairPem;

  before(async function () {
    [oldCa, newCa, expiredCa] = await Promise.all([
      generateCa(),
      generateCa(),
      // Issued 20 days ago for 10 days: expired now.
      generateCa({ days: 10, now: new Date(Date.now() - 20 * DAY) }),
    ]);
  });

  it('puts the new CA first and keeps the still-valid old one', function () {
    const merged = mergeCaBundle(oldCa.certPem, newCa.certPem);
    assert.deepEqual(fingerprints(merged), fingerprints(newCa.certPem + oldCa.certPem));
  });

  it('is idempotent: merging the same CA again yields byte-identical output', function () {
    const once = mergeCaBundle(oldCa.certPem, newCa.certPem);
    assert.equal(mergeCaBundle(once, newCa.certPem), once);
    assert.equal(fingerprints(mergeCaBundle(newCa.certPem, newCa.certPem)).length, 1);
  });

  it('drops expired CAs and unparseable blocks from the existing bundle', function () {
    const junk = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
    const merged = mergeCaBundle(`${expiredCa.certPem}${junk}garbage\n${oldCa.certPem}`, newCa.certPem);
    assert.deepEqual(fingerprints(merged), fingerprints(newCa.certPem + oldCa.certPem));
  });

  it('accepts an empty or absent existing bundle', function () {
    assert.deepEqual(fingerprints(mergeCaBundle(undefined, newCa.certPem)), fingerprints(newCa.certPem));
    assert.deepEqual(fingerprints(mergeCaBundle('', newCa.certPem)), fingerprints(newCa.certPem));
  });

  it('rejects a new CA that is missing, unparseable or not a CA', async function () {
    assert.throws(() => mergeCaBundle(oldCa.certPem, ''), /the new CA holds no PEM certificate/);
    assert.throws(() => mergeCaBundle(oldCa.certPem, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----'), /cannot be parsed/);
    const leaf = await issueServingCert(newCa, { service: 'faultline', namespace: 'faultline-system' });
    assert.throws(() => mergeCaBundle(oldCa.certPem, leaf.certPem), /is not a CA certificate/);
  });

  it('lets a verifier trust leaves from both CAs during rotation (openssl)', async function () {
    const { dir, cleanup } = await tempDir();
    try {
      const bundle = join(dir, 'bundle.pem');
      await writeFile(bundle, mergeCaBundle(oldCa.certPem, newCa.certPem));
      for (const ca of [oldCa, newCa]) {
        const leaf = await issueServingCert(ca, { service: 'faultline', namespace: 'faultline-system' });
        const path = join(dir, 'leaf.pem');
        await writeFile(path, leaf.certPem);
        const r = await openssl('verify', '-CAfile', bundle, '-verify_hostname', 'faultline.faultline-system.svc', path);
        assert.equal(r.code, 0, r.stderr);
      }
    } finally {
      await cleanup();
    }
  });
});
