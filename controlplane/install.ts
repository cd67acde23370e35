// Installs Faultline into a local control plane the way envtest installs a
// webhook: the cluster-wide definitions from the real manifests, and the
// webhook configurations pointed at a process on loopback by URL.
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import { check, runKubectl, type KubectlTarget } from './kubectl.ts';

const MANIFESTS_DIR = fileURLToPath(new URL('../manifests', import.meta.url));
const WEBHOOK_KINDS = new Set(['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']);
/** Cluster-wide definitions; plus faultline-pod-security's parameters (the injected images). */
const LOCAL_KINDS = new Set(['CustomResourceDefinition', 'ClusterRole', 'Namespace', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);

interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [key: string]: unknown;
}

interface WebhookClientConfig {
  service?: { name: string; namespace: string; path?: string; port?: number };
  url?: string;
  caBundle?: string;
}

export interface LocalInstall {
  /** CRDs and ClusterRoles: installable before the webhook runs. */
  definitions: KubeObject[];
  /** The webhook configurations, not yet pointed anywhere (see pointWebhooksAt). */
  webhookConfigurations: KubeObject[];
}

/**
 * Renders manifests/ with kustomize (kubectl's built-in, so labels and
 * transformers apply exactly as in `kubectl apply -k`) and keeps what a local
 * control plane needs: CRDs, ClusterRoles (the tenant roles people get bound
 * to), the faultline-system Namespace (the reconciler's leader-election Lease
 * lives there), the faultline-pod-security ValidatingAdmissionPolicy with its
 * binding and ConfigMap, and the webhook configurations. The in-cluster deployment of the
 * webhook — Deployment, Service, its ServiceAccount and bindings,
 * PDB, NetworkPolicy — is left out: locally the webhook is a child process
 * using the admin kubeconfig, and there is no kubelet to run a Deployment.
 */
export async function renderLocalInstall(kubectl: KubectlTarget): Promise<LocalInstall> {
  const yaml = check(await runKubectl(kubectl, ['kustomize', MANIFESTS_DIR]), `kubectl kustomize ${MANIFESTS_DIR}`);
  const objects = parseAllDocuments(yaml)
    .map((doc) => doc.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null);
  return {
    definitions: objects.filter((o) => LOCAL_KINDS.has(o.kind) || isSwitchBinding(o) || (o.kind === 'ConfigMap' && o.metadata.name === 'faultline-injection')),
    webhookConfigurations: objects.filter((o) => WEBHOOK_KINDS.has(o.kind)),
  };
}

/** The pause switches' reader binding (rbac-sidecar.yaml): sidecars need it whatever runs the webhook. */
function isSwitchBinding(o: KubeObject): boolean {
  return o.kind === 'ClusterRoleBinding' && o.metadata.name === 'faultline-switches';
}

/**
 * Rewrites every webhook's clientConfig from an in-cluster Service to
 * `baseUrl` + the Service's path, trusted through `caPem`. There is no
 * kube-proxy or cluster DNS here, so the API server must dial the webhook by
 * URL. Everything else (rules, selectors, failurePolicy, timeouts) stays as
 * shipped: that is what the tests are about.
 */
export function pointWebhooksAt(configurations: readonly KubeObject[], baseUrl: string, caPem: string): KubeObject[] {
  const caBundle = Buffer.from(caPem).toString('base64');
  return configurations.map((config) => {
    const webhooks = (config.webhooks as Array<{ name: string; clientConfig: WebhookClientConfig }> | undefined) ?? [];
    return {
      ...config,
      webhooks: webhooks.map((hook) => {
        const service = hook.clientConfig.service;
        if (!service) throw new Error(`webhook ${hook.name} in ${config.kind} ${config.metadata.name} has no clientConfig.service to rewrite`);
        return { ...hook, clientConfig: { url: `${baseUrl}${service.path ?? '/'}`, caBundle } };
      }),
    };
  });
}

/** Server-side apply: idempotent, and the field manager names who installed what. */
export async function applyObjects(kubectl: KubectlTarget, objects: readonly KubeObject[]): Promise<void> {
  if (objects.length === 0) return;
  const input = objects.map((o) => stringify(o)).join('---\n');
  check(
    await runKubectl(kubectl, ['apply', '--server-side', '--force-conflicts', '--field-manager=faultline-controlplane', '-f', '-'], { input }),
    `installing ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`,
  );
}

/** Waits until every CRD among `objects` is Established (served), so the webhook's informers can list them. */
export async function waitForCrds(kubectl: KubectlTarget, objects: readonly KubeObject[], timeoutSeconds: number): Promise<void> {
  const crds = objects.filter((o) => o.kind === 'CustomResourceDefinition').map((o) => `crd/${o.metadata.name}`);
  if (crds.length === 0) return;
  check(
    await runKubectl(kubectl, ['wait', '--for=condition=Established', `--timeout=${timeoutSeconds}s`, ...crds]),
    `waiting for ${crds.join(', ')} to be Established`,
  );
}
