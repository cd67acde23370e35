import path from 'node:path';
import { get } from './https.ts';
import { SERVICE_CIDR, type ApiserverPki } from './pki.ts';
import type { ManagedProcess } from './process.ts';
import { startReady } from './wait.ts';

export interface ApiserverOptions {
  binary: string;
  /** Holds kube-apiserver.log and the --cert-dir. */
  dir: string;
  port: number;
  etcdUrl: string;
  pki: ApiserverPki;
  /** AdmissionConfiguration: the client certificate it presents to webhooks (admission-auth.ts). */
  admissionConfigFile?: string;
  timeoutMs: number;
  progress?: (line: string) => void;
}

export interface Apiserver {
  process: ManagedProcess;
  url: string;
}

/**
 * kube-apiserver on 127.0.0.1 with a real cluster's admission chain and
 * authorization (RBAC), static-token users, and its own serving CA.
 * Ready when an authenticated GET /readyz returns 200, i.e. every
 * post-start hook has run (RBAC bootstrap roles exist, etc.).
 */
export async function startApiserver(opts: ApiserverOptions): Promise<Apiserver> {
  const url = `https://127.0.0.1:${opts.port}`;
  const { pki } = opts;
  const proc = await startReady(
    {
      name: 'kube-apiserver',
      command: opts.binary,
      args: [
        `--etcd-servers=${opts.etcdUrl}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${opts.port}`,
        // Unused while tls-*-file are given, but its default is under /var/run.
        `--cert-dir=${path.join(opts.dir, 'apiserver-certs')}`,
        `--tls-cert-file=${pki.certFile}`,
        `--tls-private-key-file=${pki.keyFile}`,
        `--token-auth-file=${pki.tokenFile}`,
        // RBAC alone: there are no nodes, so the Node authorizer has nothing to do.
        '--authorization-mode=RBAC',
        '--service-account-issuer=https://kubernetes.default.svc',
        `--service-account-key-file=${pki.saPublicKeyFile}`,
        `--service-account-signing-key-file=${pki.saSigningKeyFile}`,
        `--service-cluster-ip-range=${SERVICE_CIDR}`,
        // faultline-init is privileged; pod validation refuses that otherwise.
        '--allow-privileged=true',
        ...(opts.admissionConfigFile ? [`--admission-control-config-file=${opts.admissionConfigFile}`] : []),
        // No admission flags: the default plugin chain, as in a real cluster
        // (MutatingAdmissionWebhook and ValidatingAdmissionWebhook included).
        // In particular ServiceAccount stays on, unlike in envtest: it adds
        // serviceAccountName and the kube-api-access volume to every pod,
        // re-runs after webhooks to mount that token into *injected*
        // containers, and so triggers the webhook's reinvocation
        // (reinvocationPolicy: IfNeeded). Disabling it would hide exactly
        // that from the tests. The `default` ServiceAccount it requires
        // comes from controllers.ts, standing in for kube-controller-manager.
      ],
      logFile: path.join(opts.dir, 'kube-apiserver.log'),
    },
    async (signal) => {
      const res = await get(`${url}/readyz`, { ca: pki.caPem, bearerToken: pki.tokens.admin, timeoutMs: 2000, signal });
      return res.status === 200 ? true : `HTTP ${res.status}: ${failingChecks(res.body)}`;
    },
    { what: 'kube-apiserver /readyz', timeoutMs: opts.timeoutMs, progress: opts.progress, intervalMs: 200 },
  );
  return { process: proc, url };
}

/** The "[-]name failed" lines of a /readyz body, which say what is still starting. */
function failingChecks(body: string): string {
  const failed = body.split('\n').filter((l) => l.startsWith('[-]')).map((l) => l.slice(3).replace(/ failed.*$/, ''));
  return failed.length ? failed.join(', ') : body.trim().slice(0, 200);
}
