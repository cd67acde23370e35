// ensureCertificates on a real directory: what is kept, renewed, regenerated.
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureCertificates, generateCa, issueServingCert, type EnsureOptions } from '../../certs/index.ts';
import { openssl, silent, tempDir } from '../support/certs-tools.ts';

const BASE = { service: 'faultline', namespace: 'faultline-system', log: silent } as const;
const FILES = ['ca.crt', 'ca.key', 'tls.crt', 'tls.key'] as const;

type Snapshot = Record<(typeof FILES)[number], Buffer>;

describe('certs: ensureCertificates on disk', function () {
  let dir: string;
  let cleanup: () => Promise<void>;
  let opts: EnsureOptions;

  beforeEach(async function () {
    ({ dir, cleanup } = await tempDir());
    opts = { ...BASE, dir };
  });
  afterEach(async function () {
    await cleanup();
  });

  async function snapshot(): Promise<Snapshot> {
    const entries = await Promise.all(FILES.map(async (f) => [f, await readFile(join(dir, f))] as const));
    return Object.fromEntries(entries) as Snapshot;
  }
  const fingerprint = (pem: Buffer) => new X509Certificate(pem).fingerprint256;

  it('creates the four files with key modes 0600 and no temp files left behind', async function () {
    const r = await ensureCertificates(opts);
    assert.equal(r.ca, 'created');
    assert.equal(r.leaf, 'created');
    assert.match(r.reasons.ca ?? '', /ca\.crt and ca\.key do not exist/);
    assert.match(r.reasons.leaf ?? '', /tls\.crt and tls\.key do not exist/);
    assert.deepEqual((await readdir(dir)).sort(), [...FILES].sort());
    assert.equal((await stat(r.paths.key)).mode & 0o777, 0o600);
    assert.equal((await stat(r.paths.caKey)).mode & 0o777, 0o600);
    assert.equal((await stat(r.paths.cert)).mode & 0o777, 0o644);
    assert.equal((await stat(r.paths.caCert)).mode & 0o777, 0o644);
    const files = await snapshot();
    assert.equal(files['ca.crt'].toString(), r.caPem);
    assert.equal(files['tls.crt'].toString(), r.certPem);
    assert.equal(files['tls.key'].toString(), r.keyPem);
    for (const f of FILES) assert.ok(!files[f].includes('\r'), `${f} uses LF line ends`);
  });

  it('creates a missing output directory with mode 0700', async function () {
    const nested = join(dir, 'a', 'b');
    await ensureCertificates({ ...opts, dir: nested });
    assert.equal((await stat(nested)).mode & 0o777, 0o700);
  });

  it('keeps valid material byte-for-byte on a re-run', async function () {
    await ensureCertificates(opts);
    const before = await snapshot();
    const r = await ensureCertificates(opts);
    assert.deepEqual([r.ca, r.leaf], ['kept', 'kept']);
    assert.deepEqual(r.reasons, {});
    assert.deepEqual(await snapshot(), before);
    assert.equal(r.certPem, before['tls.crt'].toString());
  });

  it('renews a leaf expiring within the window under the same CA', async function () {
    await ensureCertificates({ ...opts, days: 10 });
    const before = await snapshot();
    const r = await ensureCertificates(opts);
    assert.deepEqual([r.ca, r.leaf], ['kept', 'renewed']);
    assert.match(r.reasons.leaf ?? '', /within the 30-day renewal window/);
    const after = await snapshot();
    assert.deepEqual(after['ca.crt'], before['ca.crt']);
    assert.deepEqual(after['ca.key'], before['ca.key']);
    assert.notDeepEqual(after['tls.key'], before['tls.key']);
    const v = await openssl('verify', '-CAfile', r.paths.caCert, r.paths.cert);
    assert.equal(v.code, 0, v.stderr);
    const days = (new X509Certificate(after['tls.crt']).validToDate.getTime() - Date.now()) / 86_400_000;
    assert.ok(days > 364 && days <= 365, `renewed leaf valid for ${days} days`);
  });

  it('honours --renew-within-days: a 10-day leaf is kept with a 5-day window', async function () {
    await ensureCertificates({ ...opts, days: 10, renewWithinDays: 5 });
    const r = await ensureCertificates({ ...opts, days: 10, renewWithinDays: 5 });
    assert.deepEqual([r.ca, r.leaf], ['kept', 'kept']);
  });

  it('renews an expiring CA, and the leaf with it', async function () {
    await ensureCertificates({ ...opts, days: 10, caDays: 20 });
    const before = await snapshot();
    const r = await ensureCertificates(opts);
    assert.deepEqual([r.ca, r.leaf], ['renewed', 'renewed']);
    assert.match(r.reasons.ca ?? '', /ca\.crt expires on .* within the 30-day renewal window/);
    assert.equal(r.reasons.leaf, 'its CA was renewed');
    const after = await snapshot();
    assert.notEqual(fingerprint(after['ca.crt']), fingerprint(before['ca.crt']));
    // The new leaf chains to the new CA only.
    assert.equal((await openssl('verify', '-CAfile', r.paths.caCert, r.paths.cert)).code, 0);
    const oldCa = join(dir, 'old-ca.pem');
    await writeFile(oldCa, before['ca.crt']);
    assert.notEqual((await openssl('verify', '-CAfile', oldCa, r.paths.cert)).code, 0);
  });

  it('reissues the leaf when the names change (new --host), keeping the CA', async function () {
    await ensureCertificates(opts);
    const before = await snapshot();
    const r = await ensureCertificates({ ...opts, hosts: ['10.96.0.10'] });
    assert.deepEqual([r.ca, r.leaf], ['kept', 'renewed']);
    assert.match(r.reasons.leaf ?? '', /names changed: .*want \[.*10\.96\.0\.10\]/);
    assert.deepEqual((await snapshot())['ca.crt'], before['ca.crt']);
    assert.equal((await openssl('verify', '-CAfile', r.paths.caCert, '-verify_ip', '10.96.0.10', r.paths.cert)).code, 0);
    // Same names again (different spelling and order): kept.
    const again = await ensureCertificates({ ...opts, hosts: ['10.96.0.10', 'FAULTLINE'] });
    assert.equal(again.leaf, 'kept');
    // Dropping the host is a change too.
    assert.equal((await ensureCertificates(opts)).leaf, 'renewed');
  });

  it('regenerates a corrupt key, saying why', async function () {
    await ensureCertificates(opts);
    const before = await snapshot();
    await writeFile(join(dir, 'tls.key'), '-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n');
    const r = await ensureCertificates(opts);
    assert.deepEqual([r.ca, r.leaf], ['kept', 'created']);
    assert.match(r.reasons.leaf ?? '', /tls\.key is not a readable PEM private key/);
    assert.notDeepEqual((await snapshot())['tls.crt'], before['tls.crt']);
    assert.equal(new X509Certificate(r.certPem).checkPrivateKey(createPrivateKey(r.keyPem)), true);
    assert.equal((await stat(r.paths.key)).mode & 0o777, 0o600);
  });

  it('regenerates a key that does not match its certificate', async function () {
    await ensureCertificates(opts);
    await writeFile(join(dir, 'tls.key'), await readFile(join(dir, 'ca.key')));
    const r = await ensureCertificates(opts);
    assert.equal(r.leaf, 'created');
    assert.equal(r.reasons.leaf, 'tls.key does not match tls.crt');
  });

  it('regenerates a leaf not signed by the CA on disk', async function () {
    await ensureCertificates(opts);
    const stranger = await issueServingCert(await generateCa(), BASE);
    await writeFile(join(dir, 'tls.crt'), stranger.certPem);
    await writeFile(join(dir, 'tls.key'), stranger.keyPem);
    const r = await ensureCertificates(opts);
    assert.deepEqual([r.ca, r.leaf], ['kept', 'created']);
    assert.match(r.reasons.leaf ?? '', /tls\.crt is not signed by the CA/);
    assert.equal((await openssl('verify', '-CAfile', r.paths.caCert, r.paths.cert)).code, 0);
  });

  it('regenerates everything when ca.crt is corrupt or ca.key is missing', async function () {
    await ensureCertificates(opts);
    await writeFile(join(dir, 'ca.crt'), 'not a certificate');
    let r = await ensureCertificates(opts);
    assert.deepEqual([r.ca, r.leaf], ['created', 'created']);
    assert.match(r.reasons.ca ?? '', /ca\.crt is not a readable PEM certificate/);
    assert.equal(r.reasons.leaf, 'its CA was unusable and has been replaced');

    await rm(join(dir, 'ca.key'));
    r = await ensureCertificates(opts);
    assert.deepEqual([r.ca, r.leaf], ['created', 'created']);
    assert.equal(r.reasons.ca, 'ca.key does not exist');
    assert.equal((await openssl('verify', '-CAfile', r.paths.caCert, r.paths.cert)).code, 0);
  });

  it('refuses a leaf certificate posing as the CA', async function () {
    await ensureCertificates(opts);
    await writeFile(join(dir, 'ca.crt'), await readFile(join(dir, 'tls.crt')));
    await writeFile(join(dir, 'ca.key'), await readFile(join(dir, 'tls.key')));
    const r = await ensureCertificates(opts);
    assert.equal(r.ca, 'created');
    assert.match(r.reasons.ca ?? '', /ca\.crt is not a CA certificate/);
  });

  it('rejects bad options before touching the disk', async function () {
    const target = join(dir, 'out');
    await assert.rejects(ensureCertificates({ ...opts, dir: target, days: 400, caDays: 365 }), /CA validity \(365 days\) must be at least the certificate validity \(400 days\)/);
    await assert.rejects(ensureCertificates({ ...opts, dir: target, renewWithinDays: -1 }), /renewWithinDays must be a whole number/);
    await assert.rejects(ensureCertificates({ ...opts, dir: target, days: 0 }), /days must be a whole number/);
    await assert.rejects(ensureCertificates({ ...opts, dir: target, hosts: ['fe80::1%eth0'] }), /zone index/);
    await assert.rejects(stat(target), { code: 'ENOENT' });
  });
});
