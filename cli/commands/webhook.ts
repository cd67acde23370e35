import type { KubeConfig } from '@kubernetes/client-node';
import { createLogger } from '../../common/log.ts';
import { SYSTEM_NAMESPACE } from '../../policies/wellknown.ts';
import { ConfigError, INJECTION_SETTINGS, loadInjectionConfig } from '../../webhook/config.ts';
import { startWebhookServer } from '../../webhook/server.ts';
import { int, str, UsageError, type Command, type Options } from '../command.ts';

const settings = Object.values(INJECTION_SETTINGS);
const width = Math.max(...settings.map((s) => s.flag.length)) + 6;

const usage = `Usage: faultline webhook --cert-dir DIR [--port P] [--address A] [--kubeconfig FILE]
                        [--lease-namespace NS] [--drain-timeout-seconds N] [injection options]

Serves the admission webhooks over HTTPS:
  POST /mutate/pods              inject faultline-init and the faultline-proxy sidecar
  POST /validate/chaospolicies   admit a ChaosPolicy only within its tenant's allowlist
  POST /validate/chaostenants    refuse invalid tenants and namespace overlaps
  GET  /healthz                  process is up
  GET  /readyz                   listening, cluster cache synced, not draining
  GET  /metrics        Prometheus metrics
DIR/tls.crt and DIR/tls.key are reloaded within seconds when they change (a
mounted Secret, \`faultline certs\`); an invalid new pair is logged and ignored.
SIGTERM stops accepting connections, finishes in-flight reviews and exits 0.

Options:
  --cert-dir DIR               directory with tls.crt and tls.key
  --port P                     HTTPS port (default 9443)
  --address A                  listen address (default all interfaces)
  --kubeconfig FILE            cluster access: the cache behind policy validation and
                               policy-driven injection, and the status reconciler (default:
                               in-cluster when KUBERNETES_SERVICE_HOST is set, else none:
                               pods are still injected, policy writes are refused)
  --lease-namespace NS         namespace of the leader-election Lease; the lease holder runs
                               the reconciler (default $POD_NAMESPACE, else ${SYSTEM_NAMESPACE})
  --drain-timeout-seconds N    bound on finishing in-flight reviews at shutdown (default 10)
  -h, --help                   show this help

Injection options (flag, or the env var shown; the flag wins):
${settings.map((s) => `  --${`${s.flag} X`.padEnd(width)}${s.help}${s.default !== undefined ? ` (default ${s.default})` : ''}\n  ${''.padEnd(width + 2)}env ${s.env}`).join('\n')}

Exit status: 0 stopped cleanly, 1 failed to start, 2 bad usage or configuration.`;

const options: Options = {
  'cert-dir': { type: 'string' },
  port: { type: 'string' },
  address: { type: 'string' },
  kubeconfig: { type: 'string' },
  'lease-namespace': { type: 'string' },
  'drain-timeout-seconds': { type: 'string' },
};
for (const s of settings) options[s.flag] = { type: 'string' };

/** --kubeconfig, else the in-cluster service account, else none (injection still works). */
async function loadKubeConfig(file: string | undefined): Promise<KubeConfig | undefined> {
  if (file === undefined && process.env.KUBERNETES_SERVICE_HOST === undefined) return undefined;
  // Loaded only when needed: the client library is large and slows every start.
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (file !== undefined) kc.loadFromFile(file);
  else kc.loadFromCluster();
  return kc;
}

export const webhookCommand: Command = {
  name: 'webhook',
  usage,
  options,
  async run(values) {
    const certDir = str(values, 'cert-dir');
    if (certDir === undefined) throw new UsageError('--cert-dir is required');
    const port = int(values, 'port', 9443);
    if (port < 0 || port > 65535) throw new UsageError(`--port must be in [0, 65535], got ${port}`);
    const drainSeconds = int(values, 'drain-timeout-seconds', 10);
    if (drainSeconds < 0) throw new UsageError(`--drain-timeout-seconds must not be negative, got ${drainSeconds}`);
    let injection;
    try {
      injection = loadInjectionConfig(values);
    } catch (err) {
      if (err instanceof ConfigError) throw new UsageError(err.message);
      throw err;
    }

    const log = createLogger('webhook');
    const kubeconfigFile = str(values, 'kubeconfig');
    let kubeConfig: KubeConfig | undefined;
    try {
      kubeConfig = await loadKubeConfig(kubeconfigFile);
    } catch (err) {
      log.error({ err: (err as Error).message, kubeconfig: kubeconfigFile ?? 'in-cluster' }, 'cannot load kubeconfig');
      return 1;
    }
    let server;
    try {
      server = await startWebhookServer({
        certDir,
        port,
        ...(str(values, 'address') !== undefined ? { address: str(values, 'address') } : {}),
        injection,
        ...(kubeConfig ? { kubeConfig, leaseNamespace: str(values, 'lease-namespace') ?? process.env.POD_NAMESPACE ?? SYSTEM_NAMESPACE } : {}),
        log,
        drainTimeoutMs: drainSeconds * 1000,
      });
    } catch (err) {
      log.error({ err: (err as Error).message }, 'webhook failed to start');
      return 1;
    }

    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    log.info({ signal }, 'shutting down');
    await server.shutdown();
    return 0;
  },
};
