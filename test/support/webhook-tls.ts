// Test certificates from the openssl CLI (independent of certs/): a throwaway CA
// and a serving certificate for 127.0.0.1 and localhost.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCertificates {
  /** PEM of the CA that signed tls.crt (pass as `ca` to clients). */
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** Creates a CA and a serving certificate signed by it; nothing is written outside a temp dir. */
export async function makeTestCertificates(caName = 'faultline-test-ca'): Promise<TestCertificates> {
  const work = await mkdtemp(join(tmpdir(), 'faultline-certs-'));
  try {
    const p = (f: string): string => join(work, f);
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.crt'),
      '-subj', `/CN=${caName}`, '-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
    await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('tls.key'), '-out', p('tls.csr'), '-subj', '/CN=localhost']);
    await writeFile(p('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
    await run('openssl', ['x509', '-req', '-in', p('tls.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial',
      '-out', p('tls.crt'), '-days', '2', '-extfile', p('ext.cnf')]);
    const [ca, cert, key] = await Promise.all([readFile(p('ca.crt')), readFile(p('tls.crt')), readFile(p('tls.key'))]);
    return { ca, cert, key };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * A fresh temp directory laid out like a mounted Kubernetes Secret: the data in
 * a timestamped directory, `..data` pointing at it, tls.crt/tls.key pointing
 * through `..data`. Use as the webhook's --cert-dir.
 */
export async function writeCertDir(certs: TestCertificates): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'faultline-webhook-tls-'));
  await swapSecretData(dir, certs.cert, certs.key);
  await symlink('..data/tls.crt', join(dir, 'tls.crt'));
  await symlink('..data/tls.key', join(dir, 'tls.key'));
  return dir;
}

let generation = 0;

/** Replaces the pair the way the kubelet's atomic writer does: new directory, then one rename of `..data`. */
export async function swapSecretData(dir: string, cert: Buffer, key: Buffer): Promise<void> {
  const data = `..${Date.now()}_${process.pid}_${generation++}`;
  await mkdir(join(dir, data));
  await writeFile(join(dir, data, 'tls.crt'), cert);
  await writeFile(join(dir, data, 'tls.key'), key);
  await symlink(data, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
}
