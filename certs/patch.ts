// Publishes the CA to the API server: clientConfig.caBundle of every webhook
// in Faultline's Mutating- and ValidatingWebhookConfiguration.
import {
  AdmissionregistrationV1Api,
  ApiException,
  type AdmissionregistrationV1WebhookClientConfig,
  type KubeConfig,
  type V1MutatingWebhookConfiguration,
  type V1ObjectMeta,
  type V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { createLogger, type Logger } from '../common/log.ts';
import { WEBHOOK_CONFIGURATION_NAME } from '../policies/wellknown.ts';
import { describeApiError } from '../kube/api-error.ts';
import { mergeCaBundle, parseCaBundle } from './bundle.ts';

export type ConfigurationKind = 'MutatingWebhookConfiguration' | 'ValidatingWebhookConfiguration';

export interface PatchCaBundleOptions {
  /** Configuration name (default WEBHOOK_CONFIGURATION_NAME). */
  name?: string;
  /**
   * Keep the still-valid CAs already in each caBundle next to the new one
   * (see mergeCaBundle). Use it when rotating the CA, so webhook replicas still
   * serving a certificate from the old CA stay trusted until they reload.
   * Default false: caBundle becomes exactly `caPem`.
   */
  retainValid?: boolean;
  /** Attempts after a 409 Conflict (someone else updated the object between our read and write). Default 5. */
  conflictRetries?: number;
  log?: Logger;
}

export interface PatchOutcome {
  kind: ConfigurationKind;
  name: string;
  /** `not-found`: the configuration does not exist (Faultline's manifests are not installed). */
  status: 'updated' | 'unchanged' | 'not-found';
  /** Names of the webhooks whose caBundle was set (all of them when updated). */
  webhooks: string[];
}

interface WebhookConfiguration {
  metadata?: V1ObjectMeta;
  webhooks?: Array<{ name: string; clientConfig: AdmissionregistrationV1WebhookClientConfig }>;
}

/** The two configuration kinds differ only in their webhook type; this is what updateOne needs of either. */
interface Accessor<T extends WebhookConfiguration> {
  kind: ConfigurationKind;
  read(name: string): Promise<T>;
  replace(name: string, body: T): Promise<unknown>;
}

/**
 * Sets caBundle on every webhook of both configurations. Read-modify-replace:
 * the replace carries the resourceVersion we read, so a concurrent writer
 * (kubectl apply, another replica, a GitOps controller) makes it fail with 409
 * instead of being overwritten; we then re-read and retry. Objects already
 * carrying the wanted bundle are not written at all.
 *
 * A missing configuration is not an exception: it is reported as `not-found`
 * so callers can say "install the manifests first" instead of a stack trace.
 * Any other API error (403 for missing RBAC, connection refused, …) throws.
 */
export async function patchCaBundle(kubeConfig: KubeConfig, caPem: string, options: PatchCaBundleOptions = {}): Promise<PatchOutcome[]> {
  parseCaBundle(caPem, 'the CA bundle to publish');
  const name = options.name ?? WEBHOOK_CONFIGURATION_NAME;
  const log = options.log ?? createLogger('certs');
  const api = kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  const mutating: Accessor<V1MutatingWebhookConfiguration> = {
    kind: 'MutatingWebhookConfiguration',
    read: (n) => api.readMutatingWebhookConfiguration({ name: n }),
    replace: (n, body) => api.replaceMutatingWebhookConfiguration({ name: n, body }),
  };
  const validating: Accessor<V1ValidatingWebhookConfiguration> = {
    kind: 'ValidatingWebhookConfiguration',
    read: (n) => api.readValidatingWebhookConfiguration({ name: n }),
    replace: (n, body) => api.replaceValidatingWebhookConfiguration({ name: n, body }),
  };
  const retainValid = options.retainValid ?? false;
  const retries = options.conflictRetries ?? 5;
  const outcomes = [
    await updateOne(mutating, name, caPem, retainValid, retries),
    await updateOne(validating, name, caPem, retainValid, retries),
  ];
  for (const outcome of outcomes) {
    const fields = { kind: outcome.kind, name, webhooks: outcome.webhooks };
    if (outcome.status === 'not-found') log.error(fields, `${outcome.kind} "${name}" not found: install Faultline's manifests first`);
    else log.info(fields, `${outcome.kind} "${name}" caBundle ${outcome.status}`);
  }
  return outcomes;
}

async function updateOne<T extends WebhookConfiguration>(accessor: Accessor<T>, name: string, caPem: string, retainValid: boolean, conflictRetries: number): Promise<PatchOutcome> {
  const result = (status: PatchOutcome['status'], webhooks: string[]): PatchOutcome => ({ kind: accessor.kind, name, status, webhooks });
  for (let attempt = 0; ; attempt++) {
    let config: T;
    try {
      config = await accessor.read(name);
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return result('not-found', []);
      throw describeApiError(err, `reading ${accessor.kind} "${name}"`);
    }
    const webhooks = config.webhooks ?? [];
    let changed = false;
    for (const webhook of webhooks) {
      const current = webhook.clientConfig.caBundle;
      const existingPem = current ? Buffer.from(current, 'base64').toString('utf8') : undefined;
      // Both paths go through mergeCaBundle so the bundle is canonically
      // encoded either way and an unchanged bundle is recognised as such.
      const pem = mergeCaBundle(retainValid ? existingPem : undefined, caPem);
      // caBundle is a []byte field: JSON carries it base64-encoded exactly once.
      const wanted = Buffer.from(pem, 'utf8').toString('base64');
      if (current !== wanted) {
        webhook.clientConfig.caBundle = wanted;
        changed = true;
      }
    }
    const names = webhooks.map((w) => w.name);
    if (!changed) return result('unchanged', names);
    try {
      // `config` still carries metadata.resourceVersion from the read: optimistic concurrency.
      await accessor.replace(name, config);
      return result('updated', names);
    } catch (err) {
      if (err instanceof ApiException && err.code === 409 && attempt < conflictRetries) continue;
      if (err instanceof ApiException && err.code === 404) return result('not-found', []);
      throw describeApiError(err, `updating ${accessor.kind} "${name}"`);
    }
  }
}
