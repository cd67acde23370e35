// The generated certificates, judged by OpenSSL's command line (independent of
// node-forge, which produced them, and of node:crypto, which inspects them).
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureCertificates, generateCa, issueServingCert, type EnsureResult } from '../../certs/index.ts';
import { openssl, silent, tempDir } from '../support/certs-tools.ts';

const SERVICE = 'faultline';
const NS = 'faultline-system';
const HOSTS = ['127.0.0.1', '2001:db8::1', 'webhook.example.com'];
const SANS = [SERVICE, `${SERVICE}.${NS}`, `${SERVICE}.${NS}.svc`, `${SERVICE}.${NS}.svc.cluster.local`];

describe('certs: generated certificates (verified by openssl)', function () {
  let dir: string;
  let cleanup: () => Promise<void>;
  let result: EnsureResult;
  let started: number;

  before(async function () {
    ({ dir, cleanup } = await tempDir());
    started = Date.now();
    result = await ensureCertificates({ dir, service: SERVICE, namespace: NS, hosts: HOSTS, log: silent });
  });
  after(async function () {
    await cleanup();
  });

  const verify = (...extra: string[]) => openssl('verify', '-CAfile', result.paths.caCert, ...extra, result.paths.cert);

  it('verifies against ca.crt for every Service name', async function () {
    for (const name of SANS) {
      const r = await verify('-verify_hostname', name);
      assert.equal(r.code, 0, `${name}: ${r.stderr}${r.stdout}`);
      assert.match(r.stdout, /: OK/);
    }
  });

  it('verifies for extra hosts: DNS, IPv4 and IPv6', async function () {
    assert.equal((await verify('-verify_hostname', 'webhook.example.com')).code, 0);
    assert.equal((await verify('-verify_ip', '127.0.0.1')).code, 0);
    assert.equal((await verify('-verify_ip', '2001:db8:0:0:0:0:0:1')).code, 0);
  });

  it('fails for a name or address it was not issued for', async function () {
    const wrongName = await verify('-verify_hostname', `other.${NS}.svc`);
    assert.notEqual(wrongName.code, 0);
    assert.match(wrongName.stdout + wrongName.stderr, /hostname mismatch/);
    const wrongIp = await verify('-verify_ip', '127.0.0.2');
    assert.notEqual(wrongIp.code, 0);
    assert.match(wrongIp.stdout + wrongIp.stderr, /IP address mismatch/);
  });

  it('fails against a different CA', async function () {
    const other = await generateCa();
    const otherPath = join(dir, 'other-ca.crt');
    await writeFile(otherPath, other.certPem);
    const r = await openssl('verify', '-CAfile', otherPath, result.paths.cert);
    assert.notEqual(r.code, 0);
  });

  it('has the serving profile: CN, SANs, key usage, serverAuth, SHA-256, RSA 2048, AKI = CA SKI', async function () {
    const text = (await openssl('x509', '-in', result.paths.cert, '-noout', '-text')).stdout;
    assert.match(text, new RegExp(`Subject: CN\\s?=\\s?${SERVICE}\\.${NS}\\.svc\\n`));
    const san = /X509v3 Subject Alternative Name:\s*\n\s*(.+)/.exec(text)?.[1] ?? '';
    const entries = san.split(', ').sort();
    const expected = [...SANS.map((n) => `DNS:${n}`), 'DNS:webhook.example.com', 'IP Address:127.0.0.1', 'IP Address:2001:DB8:0:0:0:0:0:1'].sort();
    assert.deepEqual(entries, expected);
    assert.match(text, /X509v3 Basic Constraints: critical\s*\n\s*CA:FALSE/);
    assert.match(text, /X509v3 Key Usage: critical\s*\n\s*Digital Signature, Key Encipherment\n/);
    assert.match(text, /X509v3 Extended Key Usage:\s*\n\s*TLS Web Server Authentication\n/);
    assert.match(text, /Signature Algorithm: sha256WithRSAEncryption/);
    assert.match(text, /Public-Key: \(2048 bit\)/);

    const caText = (await openssl('x509', '-in', result.paths.caCert, '-noout', '-text')).stdout;
    const ski = /X509v3 Subject Key Identifier:\s*\n\s*([0-9A-F:]+)/.exec(caText)?.[1];
    const aki = /X509v3 Authority Key Identifier:\s*\n\s*(?:keyid:)?([0-9A-F:]+)/.exec(text)?.[1];
    assert.ok(ski, 'CA has a subjectKeyIdentifier');
    assert.equal(aki, ski);
  });

  it('has the CA profile: critical CA:TRUE, keyCertSign/cRLSign, self-signed', async function () {
    const text = (await openssl('x509', '-in', result.paths.caCert, '-noout', '-text')).stdout;
    assert.match(text, /X509v3 Basic Constraints: critical\s*\n\s*CA:TRUE/);
    assert.match(text, /X509v3 Key Usage: critical\s*\n\s*Certificate Sign, CRL Sign\n/);
    assert.match(text, /X509v3 Subject Key Identifier:/);
    const selfCheck = await openssl('verify', '-CAfile', result.paths.caCert, result.paths.caCert);
    assert.equal(selfCheck.code, 0, selfCheck.stderr);
  });

  it('pairs each key with its certificate (openssl modulus comparison)', async function () {
    for (const [crt, key] of [
      [result.paths.cert, result.paths.key],
      [result.paths.caCert, result.paths.caKey],
    ] as const) {
      const certMod = (await openssl('x509', '-in', crt, '-noout', '-modulus')).stdout.trim();
      const keyMod = (await openssl('rsa', '-in', key, '-noout', '-modulus')).stdout.trim();
      assert.match(certMod, /^Modulus=[0-9A-F]{512}$/);
      assert.equal(certMod, keyMod);
    }
    const leafMod = (await openssl('x509', '-in', result.paths.cert, '-noout', '-modulus')).stdout;
    const caKeyMod = (await openssl('rsa', '-in', result.paths.caKey, '-noout', '-modulus')).stdout;
    assert.notEqual(leafMod, caKeyMod);
  });

  it('backdates notBefore by 5 minutes and uses the default validities (leaf 365 days, CA 3650)', function () {
    const leaf = new X509Certificate(result.certPem);
    const ca = new X509Certificate(result.caPem);
    const day = 86_400_000;
    for (const cert of [leaf, ca]) {
      // Certificates carry whole seconds; allow for that and for the test's own runtime.
      assert.ok(cert.validFromDate.getTime() <= started - 4 * 60_000, `notBefore ${cert.validFromDate.toISOString()}`);
      assert.ok(cert.validFromDate.getTime() >= started - 5 * 60_000 - 1000);
    }
    assert.ok(Math.abs(leaf.validToDate.getTime() - (started + 365 * day)) < 60_000);
    assert.ok(Math.abs(ca.validToDate.getTime() - (started + 3650 * day)) < 60_000);
  });

  it('draws random, positive, 16-byte serials', async function () {
    const a = await issueServingCert({ certPem: result.caPem, keyPem: await readFile(result.paths.caKey, 'utf8') }, { service: SERVICE, namespace: NS });
    const serials = [result.certPem, result.caPem, a.certPem].map((pem) => new X509Certificate(pem).serialNumber);
    assert.equal(new Set(serials).size, 3);
    for (const s of serials) {
      assert.equal(s.length, 32, s); // 16 bytes, no padding byte: positive and minimally encoded
      assert.ok(parseInt(s.slice(0, 2), 16) < 0x80);
    }
  });

  it('caps a leaf at its CA expiry and refuses an expired CA', async function () {
    const now = new Date();
    const shortCa = await generateCa({ days: 10, now });
    const leaf = await issueServingCert(shortCa, { service: SERVICE, namespace: NS, days: 365, now });
    assert.equal(new X509Certificate(leaf.certPem).validToDate.getTime(), new X509Certificate(shortCa.certPem).validToDate.getTime());

    const expired = await generateCa({ days: 1, now: new Date(now.getTime() - 2 * 86_400_000) });
    await assert.rejects(issueServingCert(expired, { service: SERVICE, namespace: NS }), /CA certificate has expired/);
  });

  it('rejects bad inputs with clear errors', async function () {
    const ca = { certPem: result.caPem, keyPem: await readFile(result.paths.caKey, 'utf8') };
    await assert.rejects(issueServingCert(ca, { service: 'Faultline', namespace: NS }), /invalid service name 'Faultline'/);
    await assert.rejects(issueServingCert(ca, { service: SERVICE, namespace: 'x_y' }), /invalid namespace 'x_y'/);
    await assert.rejects(issueServingCert(ca, { service: SERVICE, namespace: NS, hosts: ['bad host'] }), /invalid host 'bad host'/);
    await assert.rejects(issueServingCert(ca, { service: SERVICE, namespace: NS, days: 0 }), /whole number of days/);
    await assert.rejects(issueServingCert({ certPem: 'nope', keyPem: ca.keyPem }, { service: SERVICE, namespace: NS }), /cannot read the CA certificate/);
    await assert.rejects(generateCa({ days: 1.5 }), /whole number of days/);
  });
});

