// The Faultline webhook as a child process on loopback, serving with a
// certificate from certs/ (the same code `faultline certs` runs), restartable
// so tests can take it away and bring it back.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureCertificates } from '../certs/index.ts';
import { createLogger } from '../common/log.ts';
import { SYSTEM_NAMESPACE } from '../policies/wellknown.ts';
import { get } from './https.ts';
import type { ManagedProcess } from './process.ts';
import { startReady } from './wait.ts';

const CLI = fileURLToPath(new URL('../bin/faultline.js', import.meta.url));
/** The in-cluster Service name: the certificate carries its names too, as in a real install. */
const SERVICE = 'faultline-webhook';

export interface WebhookTls {
  certDir: string;
  caPem: string;
}

/** CA + serving certificate for 127.0.0.1/localhost in `certDir`. */
export async function writeWebhookTls(certDir: string): Promise<WebhookTls> {
  const result = await ensureCertificates({
    dir: certDir,
    service: SERVICE,
    namespace: SYSTEM_NAMESPACE,
    hosts: ['127.0.0.1', 'localhost'],
    log: createLogger('certs', 'silent'),
  });
  return { certDir, caPem: result.caPem };
}

export interface WebhookOptions {
  tls: WebhookTls;
  port: number;
  /** The webhook's cluster access (the admin kubeconfig: there is no in-cluster ServiceAccount). */
  kubeconfig: string;
  /** Directory for webhook.log (appended across restarts). */
  dir: string;
  /** Answer reviews only for the API server's client certificate from this CA. */
  clientCaFile?: string;
  clientName?: string;
  timeoutMs: number;
  progress?: (line: string) => void;
  /** The `faultline` entry to run (default the TypeScript sources). */
  cli?: string;
}

/** `faultline webhook` on 127.0.0.1:port, ready when its /readyz says so. */
export function startWebhookProcess(opts: WebhookOptions): Promise<ManagedProcess> {
  return startReady(
    {
      name: 'webhook',
      // The Node running us: it is the one known to strip TypeScript types.
      command: process.execPath,
      args: [
        opts.cli ?? CLI,
        'webhook',
        `--cert-dir=${opts.tls.certDir}`,
        '--address=127.0.0.1',
        `--port=${opts.port}`,
        `--kubeconfig=${opts.kubeconfig}`,
        // Nothing is in flight when a test stops it; don't wait for stragglers.
        '--drain-timeout-seconds=2',
        ...(opts.clientCaFile ? [`--client-ca-file=${opts.clientCaFile}`, ...(opts.clientName ? [`--client-name=${opts.clientName}`] : [])] : []),
      ],
      logFile: path.join(opts.dir, 'webhook.log'),
    },
    async (signal) => {
      const res = await get(`https://127.0.0.1:${opts.port}/readyz`, { ca: opts.tls.caPem, timeoutMs: 1000, signal });
      return res.status === 200 ? true : `HTTP ${res.status}`;
    },
    { what: 'webhook /readyz', timeoutMs: opts.timeoutMs, progress: opts.progress },
  );
}
