// The client certificate kube-apiserver presents to the kubelet (exec, logs,
// port-forward), signed by the cluster CA the kubelet trusts. OpenSSL does the
// signing: certs/ issues serving certificates only, and this one is a
// throwaway of a local run.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { must } from './node/host.ts';
import type { ApiserverPki } from './pki.ts';

/** CN/O as kubeadm's apiserver-kubelet-client; the kubelet's webhook authorizer allows system:masters everything. */
const SUBJECT = '/O=system:masters/CN=kube-apiserver-kubelet-client';

export async function issueKubeletClientCert(dir: string, pki: ApiserverPki): Promise<{ certFile: string; keyFile: string }> {
  const keyFile = path.join(dir, 'apiserver-kubelet-client.key');
  const csrFile = path.join(dir, 'apiserver-kubelet-client.csr');
  const certFile = path.join(dir, 'apiserver-kubelet-client.crt');
  const extFile = path.join(dir, 'apiserver-kubelet-client.ext');
  await writeFile(extFile, 'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n');
  await must('openssl', ['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-subj', SUBJECT, '-out', csrFile]);
  await must('openssl', [
    'x509', '-req', '-in', csrFile, '-CA', pki.caFile, '-CAkey', pki.caKeyFile,
    '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '30', '-extfile', extFile, '-out', certFile,
  ]);
  return { certFile, keyFile };
}
