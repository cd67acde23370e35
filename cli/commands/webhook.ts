import type { KubeConfig } from '@kubernetes/client-node';
import { servingNames, validateNamespace } from '../../certs/names.ts';
import { createLogger } from '../../common/log.ts';
import { parseDuration } from '../../policies/duration.ts';
import { SYSTEM_NAMESPACE } from '../../policies/wellknown.ts';
import type { CertController, CertControllerOptions } from '../../webhook/cert-controller.ts';
import { ConfigError, INJECTION_SETTINGS, loadInjectionConfig } from '../../webhook/injection-config.ts';
import { loadCallerAuth } from '../../webhook/caller-auth.ts';
import { startWebhookServer } from '../../webhook/server.ts';
import { int, str, strs, UsageError, type Command, type Options, type ParsedValues } from '../command.ts';

const settings = Object.values(INJECTION_SETTINGS);
const width = Math.max(...settings.map((s) => s.flag.length)) + 6;

const usage = `Usage: faultline webhook --cert-dir DIR [--port P] [--address A] [--kubeconfig FILE]
                        [--lease-namespace NS] [--drain-timeout-seconds N] [injection options]
                        [--client-ca-file FILE [--client-name CN ...]]
                        [--cert-secret NS/NAME [--service-name S] [--cert-host H ...]
                         [--cert-renew-before D] [--cert-refresh-interval D] [--ca-propagation-delay D]]

Serves the admission webhooks over HTTPS:
  POST /mutate/pods              inject faultline-init and the faultline-proxy sidecar
  POST /validate/chaospolicies   admit a ChaosPolicy only within its tenant's allowlist
  POST /validate/chaostenants    refuse invalid tenants and namespace overlaps
  GET  /healthz                  process is up
  GET  /readyz                   listening, cluster cache synced, not draining
  GET  /metrics                 Prometheus metrics
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
  --client-ca-file FILE        answer reviews only for clients (the API server, through its
                               AdmissionConfiguration kubeConfigFile) presenting a certificate
                               this CA signed; others get 401 (default: off, said at start)
  --client-name CN             accept only this subject CN from that CA, repeatable

Self-managed certificates (needs cluster access; see docs/operations.md):
  --cert-secret NS/NAME        keep the CA and serving certificate in this kubernetes.io/tls
                               Secret (created if absent; replicas share it), write the serving
                               pair into --cert-dir, keep the caBundle of the "faultline" webhook
                               configurations equal to the Secret's CAs, renew before expiry.
                               Annotate the Secret faultline.dev/rotate=ca (or =leaf) to renew now
  --service-name S             the webhook's Service, in the Secret's namespace (default
                               faultline-webhook): the serving certificate's DNS names
  --cert-host H                extra SAN, repeatable (DNS name or IP), same on every replica
  --cert-renew-before D        renew the CA or certificate this long before it expires (default 720h)
  --cert-refresh-interval D    re-read the Secret and re-assert the caBundle this often (default 1m)
  --ca-propagation-delay D     how long a new CA is in the caBundle before any replica serves a
                               certificate signed by it (default 10s)
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
  'cert-secret': { type: 'string' },
  'service-name': { type: 'string' },
  'cert-host': { type: 'string', multiple: true },
  'cert-renew-before': { type: 'string' },
  'cert-refresh-interval': { type: 'string' },
  'ca-propagation-delay': { type: 'string' },
  'client-ca-file': { type: 'string' },
  'client-name': { type: 'string', multiple: true },
};
for (const s of settings) options[s.flag] = { type: 'string' };

/** --kubeconfig, else the in-cluster service account, else none (injection still works). */
async function loadKubeConfig(file: string | undefined): Promise<KubeConfig | undefined> {
  // An empty KUBERNETES_SERVICE_HOST is no cluster either, as for client-go's in-cluster config.
  if (file === undefined && !process.env.KUBERNETES_SERVICE_HOST) return undefined;
  // Loaded only when needed: the client library is large and slows every start.
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (file !== undefined) kc.loadFromFile(file);
  else kc.loadFromCluster();
  return kc;
}

/** A Go duration flag (720h, 1m, 10s) in milliseconds. */
function duration(values: ParsedValues, key: string, fallback: string, min: number): number {
  const text = str(values, key) ?? fallback;
  const parsed = parseDuration(text);
  if ('error' in parsed) throw new UsageError(`--${key}: ${parsed.error}`);
  if (parsed.ms < min) throw new UsageError(`--${key} must be at least ${min} ms, got ${text}`);
  return parsed.ms;
}

/** Longest --cert-renew-before: below the leaf's one-year validity, or every pass would renew. */
const MAX_RENEW_BEFORE_MS = 180 * 86_400_000;
const SECRET_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** The self-managed certificate settings, minus what only `run` knows; undefined without --cert-secret. */
function certSecretOptions(values: ParsedValues): Omit<CertControllerOptions, 'kubeConfig' | 'certDir' | 'log'> | undefined {
  const ref = str(values, 'cert-secret');
  const dependent = ['service-name', 'cert-host', 'cert-renew-before', 'cert-refresh-interval', 'ca-propagation-delay'];
  if (ref === undefined) {
    const stray = dependent.filter((k) => values[k] !== undefined);
    if (stray.length > 0) throw new UsageError(`--${stray[0]} is only used with --cert-secret`);
    return undefined;
  }
  const [namespace, name, ...rest] = ref.split('/');
  if (namespace === undefined || name === undefined || rest.length > 0) throw new UsageError(`--cert-secret must be NAMESPACE/NAME, got ${ref}`);
  if (!SECRET_NAME.test(name)) throw new UsageError(`--cert-secret: invalid Secret name '${name}'`);
  const service = str(values, 'service-name') ?? 'faultline-webhook';
  const hosts = strs(values, 'cert-host');
  try {
    validateNamespace(namespace);
    // Validates the Service name and hosts the way the certificate will need them.
    servingNames(service, namespace, hosts);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const renewBeforeMs = duration(values, 'cert-renew-before', '720h', 0);
  if (renewBeforeMs > MAX_RENEW_BEFORE_MS) throw new UsageError(`--cert-renew-before must be at most 4320h (the certificate is valid one year)`);
  return {
    secret: { namespace, name },
    service,
    hosts,
    renewBeforeMs,
    refreshIntervalMs: duration(values, 'cert-refresh-interval', '1m', 100),
    propagationDelayMs: duration(values, 'ca-propagation-delay', '10s', 0),
  };
}

export const webhookCommand: Command = {
  usage,
  options,
  async run(values) {
    const certDir = str(values, 'cert-dir');
    if (certDir === undefined) throw new UsageError('--cert-dir is required');
    const port = int(values, 'port', 9443);
    if (port < 0 || port > 65535) throw new UsageError(`--port must be in [0, 65535], got ${port}`);
    const drainSeconds = int(values, 'drain-timeout-seconds', 10);
    if (drainSeconds < 0) throw new UsageError(`--drain-timeout-seconds must not be negative, got ${drainSeconds}`);
    const certSecret = certSecretOptions(values);
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
    if (certSecret && !kubeConfig) throw new UsageError('--cert-secret needs cluster access: --kubeconfig FILE, or run in a cluster');
    let certs: CertController | undefined;
    if (certSecret && kubeConfig) {
      try {
        // Before the server: it loads the pair this writes into --cert-dir.
        const { startCertController } = await import('../../webhook/cert-controller.ts');
        certs = await startCertController({ ...certSecret, kubeConfig, certDir, log: createLogger('certs') });
      } catch (err) {
        log.error({ err: (err as Error).message, secret: `${certSecret.secret.namespace}/${certSecret.secret.name}` }, 'cannot set up the serving certificate');
        return 1;
      }
    }
    const clientCaFile = str(values, 'client-ca-file');
    const clientNames = strs(values, 'client-name');
    if (clientNames.length > 0 && clientCaFile === undefined) throw new UsageError('--client-name needs --client-ca-file');
    let callerAuth;
    try {
      if (clientCaFile !== undefined) callerAuth = await loadCallerAuth(clientCaFile, clientNames);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'cannot load --client-ca-file');
      await certs?.stop();
      return 1;
    }
    let server;
    try {
      server = await startWebhookServer({
        ...(callerAuth ? { callerAuth } : {}),
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
      await certs?.stop();
      return 1;
    }

    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    log.info({ signal }, 'shutting down');
    await server.shutdown();
    await certs?.stop();
    // The drain is done, so nothing may hold the process past it: a client
    // library's lingering socket or timer would turn SIGTERM into a SIGKILL at
    // the end of terminationGracePeriodSeconds.
    setTimeout(() => process.exit(0), 1_000).unref();
    return 0;
  },
};
