// The API server authenticating itself to the webhook (issue 13 M2), as an
// admin sets it up on a real cluster: a client CA the webhook trusts
// (--client-ca-file), a client certificate for kube-apiserver, and the
// AdmissionConfiguration whose kubeConfigFile hands that certificate to the
// webhook plugins for the webhook's host. Test infrastructure: OpenSSL's CLI
// issues the certificates (certs/ only issues serving certificates).
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';

const run = promisify(execFile);

/** The subject CN of the API server's client certificate; the webhook accepts only it (--client-name). */
export const ADMISSION_CLIENT_NAME = 'kube-apiserver-admission';

export interface AdmissionAuth {
  /** kube-apiserver --admission-control-config-file. */
  configFile: string;
  /** faultline webhook --client-ca-file. */
  clientCaFile: string;
  /** A certificate the same CA signed for another name: what an impostor could hold at best (tests). */
  strangerCertFile: string;
  strangerKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
}

/** Writes the client PKI and the AdmissionConfiguration for a webhook served at `webhookHostPort` (host:port). */
export async function writeAdmissionAuth(dir: string, webhookHostPort: string): Promise<AdmissionAuth> {
  const f = (name: string): string => path.join(dir, name);
  const openssl = (...args: string[]) => run('openssl', args);
  await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '30', '-subj', '/CN=faultline-admission-client-ca',
    '-keyout', f('client-ca.key'), '-out', f('client-ca.crt'), '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  const issue = async (name: string, cn: string): Promise<void> => {
    await openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`));
    await writeFile(f(`${name}.ext`), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n');
    await openssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('client-ca.crt'), '-CAkey', f('client-ca.key'), '-CAcreateserial',
      '-days', '30', '-extfile', f(`${name}.ext`), '-out', f(`${name}.crt`));
  };
  await issue('admission-client', ADMISSION_CLIENT_NAME);
  await issue('stranger', 'stranger');

  const kubeconfig = {
    apiVersion: 'v1',
    kind: 'Config',
    // The name is the webhook's host:port as in its clientConfig.url.
    users: [{ name: webhookHostPort, user: { 'client-certificate': f('admission-client.crt'), 'client-key': f('admission-client.key') } }],
  };
  await writeFile(f('admission-kubeconfig.yaml'), stringify(kubeconfig), { mode: 0o600 });
  const webhookPlugin = (name: string) => ({
    name,
    configuration: { apiVersion: 'apiserver.config.k8s.io/v1', kind: 'WebhookAdmissionConfiguration', kubeConfigFile: f('admission-kubeconfig.yaml') },
  });
  const config = {
    apiVersion: 'apiserver.config.k8s.io/v1',
    kind: 'AdmissionConfiguration',
    plugins: [webhookPlugin('ValidatingAdmissionWebhook'), webhookPlugin('MutatingAdmissionWebhook')],
  };
  await writeFile(f('admission-config.yaml'), stringify(config));
  return {
    configFile: f('admission-config.yaml'),
    clientCaFile: f('client-ca.crt'),
    clientCertFile: f('admission-client.crt'),
    clientKeyFile: f('admission-client.key'),
    strangerCertFile: f('stranger.crt'),
    strangerKeyFile: f('stranger.key'),
  };
}
