import type { KubeConfig } from '@kubernetes/client-node';
// Not certs/index.ts: it re-exports the kube client, which is loaded below
// only for --patch (it adds ~0.5 s to the start of every `faultline` command).
import { DEFAULT_RENEW_WITHIN_DAYS, ensureCertificates } from '../../certs/ensure.ts';
import { servingNames } from '../../certs/names.ts';
import { DEFAULT_CA_DAYS, DEFAULT_LEAF_DAYS } from '../../certs/x509.ts';
import { createLogger } from '../../common/log.ts';
import { SYSTEM_NAMESPACE, WEBHOOK_CONFIGURATION_NAME } from '../../policies/wellknown.ts';
import { flag, int, str, strs, UsageError, type Command, type ParsedValues } from '../command.ts';

const usage = `Usage: faultline certs --out DIR --service NAME [--namespace NS] [--host H ...]
                      [--days N] [--ca-days N] [--renew-within-days N]
                      [--patch [--kubeconfig FILE]]

Creates or renews the admission webhook's TLS material in DIR:
  ca.crt, ca.key   a self-signed CA (ca.key is secret: never commit it)
  tls.crt, tls.key a serving certificate for NAME, NAME.NS, NAME.NS.svc,
                   NAME.NS.svc.cluster.local and every --host
Valid material is kept as is; what expires within the renewal window, names
the wrong hosts, or is missing, corrupt or mismatched is replaced, and the log
says why. Safe to run repeatedly (e.g. from a CronJob or an init container).

Options:
  --out DIR                 output directory (created 0700 if missing)
  --service NAME            the webhook's Service name
  --namespace NS            the Service's namespace (default ${SYSTEM_NAMESPACE})
  --host H                  extra SAN, repeatable: DNS name or IPv4/IPv6 address
  --days N                  serving certificate validity (default ${DEFAULT_LEAF_DAYS})
  --ca-days N               CA validity, at least --days (default ${DEFAULT_CA_DAYS})
  --renew-within-days N     renew what expires within N days (default ${DEFAULT_RENEW_WITHIN_DAYS})
  --patch                   write ca.crt into clientConfig.caBundle of every webhook in the
                            Mutating- and ValidatingWebhookConfiguration "${WEBHOOK_CONFIGURATION_NAME}"
  --kubeconfig FILE         kubeconfig for --patch (default: $KUBECONFIG, ~/.kube/config, in-cluster)
  -h, --help                show this help

Exit status: 0 done, 1 failed (e.g. webhook configuration not found), 2 bad usage.`;

function positiveInt(values: ParsedValues, key: string, fallback: number, min: number): number {
  const n = int(values, key, fallback);
  if (n < min) throw new UsageError(`--${key} must be at least ${min}, got ${n}`);
  return n;
}

export const certsCommand: Command = {
  usage,
  options: {
    out: { type: 'string' },
    service: { type: 'string' },
    namespace: { type: 'string' },
    host: { type: 'string', multiple: true },
    days: { type: 'string' },
    'ca-days': { type: 'string' },
    'renew-within-days': { type: 'string' },
    patch: { type: 'boolean' },
    kubeconfig: { type: 'string' },
  },
  async run(values) {
    const dir = str(values, 'out');
    const service = str(values, 'service');
    const namespace = str(values, 'namespace') ?? SYSTEM_NAMESPACE;
    const hosts = strs(values, 'host');
    if (!dir) throw new UsageError('--out DIR is required');
    if (!service) throw new UsageError('--service NAME is required');
    const days = positiveInt(values, 'days', DEFAULT_LEAF_DAYS, 1);
    const caDays = positiveInt(values, 'ca-days', DEFAULT_CA_DAYS, 1);
    const renewWithinDays = positiveInt(values, 'renew-within-days', DEFAULT_RENEW_WITHIN_DAYS, 0);
    if (caDays < days) throw new UsageError(`--ca-days (${caDays}) must be at least --days (${days})`);
    const patch = flag(values, 'patch');
    const kubeconfig = str(values, 'kubeconfig');
    if (kubeconfig !== undefined && !patch) throw new UsageError('--kubeconfig is only used with --patch');
    try {
      servingNames(service, namespace, hosts);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }

    const log = createLogger('certs');
    let kubeConfig: KubeConfig | undefined;
    try {
      // Load the kubeconfig before writing anything, so a bad --kubeconfig
      // fails the run without half its work done.
      if (patch) {
        const { KubeConfig } = await import('@kubernetes/client-node');
        kubeConfig = new KubeConfig();
        if (kubeconfig) kubeConfig.loadFromFile(kubeconfig);
        else kubeConfig.loadFromDefault();
      }
      const result = await ensureCertificates({ dir, service, namespace, hosts, days, caDays, renewWithinDays, log });
      log.info({ dir, ca: result.ca, leaf: result.leaf, reasons: result.reasons }, `certificates ready: CA ${result.ca}, serving certificate ${result.leaf}`);
      if (!kubeConfig) return 0;
      // After a renewal the previous CA is still valid and may still sign the
      // certificate other replicas serve: keep it in the bundle until it
      // expires (mergeCaBundle drops it then). A newly created CA means nothing
      // usable existed before, so whatever the bundle held is replaced.
      const { patchCaBundle } = await import('../../certs/patch.ts');
      const outcomes = await patchCaBundle(kubeConfig, result.caPem, { retainValid: result.ca !== 'created', log });
      const missing = outcomes.filter((o) => o.status === 'not-found');
      if (missing.length > 0) {
        console.error(
          `faultline certs: ${missing.map((o) => `${o.kind} "${o.name}"`).join(' and ')} not found; install Faultline's manifests, then re-run with --patch`,
        );
        return 1;
      }
      return 0;
    } catch (err) {
      console.error(`faultline certs: ${(err as Error).message}`);
      return 1;
    }
  },
};
