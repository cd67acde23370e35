import { missingTools, pinnedVersions } from '../../controlplane/binaries.ts';
import {
  describeMissing,
  MissingImagesError,
  missingForNode,
  startControlPlane,
  type ControlPlane,
  type ControlPlaneOptions,
} from '../../controlplane/index.ts';
import { DEMO_IMAGE, IMAGES, PAUSE_IMAGE } from '../../common/images.ts';
import { API_GROUP_VERSION, CHAOS_LABEL, CHAOS_LABEL_ENABLED } from '../../policies/wellknown.ts';
import { flag, int, UsageError, type Command } from '../command.ts';
import { createDemoTenant, renderSteps, walkthroughSteps } from '../walkthrough.ts';

const usage = `Usage: faultline up [--port P] [--api-only] [--keep] [--quiet]

Runs a local single-node Kubernetes cluster with Faultline installed, for
trying it out and for development: etcd, kube-apiserver,
kube-controller-manager and kube-scheduler, and a real node — containerd and
runc (Debian's), the kubelet, kube-proxy, CoreDNS and a CNI bridge on a private
subnet that routes nowhere. Kubernetes binaries are the pinned versions, built
into ~/.cache/faultline/bin on first use (about 15 min cold on 2 cores).
Faultline's CRDs and tenant roles come from manifests/, its webhook runs as a
local process, and a demo ChaosTenant "shop" is created. Users: admin
(cluster-admin), alice (group tenant-shop) and bob (group tenant-pay), one
kubeconfig each.

The node needs root, the Debian packages containerd, runc,
containernetworking-plugins, iptables, nftables, conntrack, and the images
from \`npm run images:build\`. Where any is missing, up says what and how to
get it, then runs the control plane alone (pods are admitted and injected,
never run).

Stays up until Ctrl-C or SIGTERM, then stops everything — pods, containers,
mounts, the bridge, netfilter rules, cgroups, host sysctls the kubelet
changed — and deletes its temporary directory.

Options:
  --port P    kube-apiserver port (default: a free port)
  --api-only  no node, even where one could run
  --keep      keep the temporary directory after stopping
  --quiet     print only the kubeconfig path (for scripts: KUBECONFIG=$(...))
  -h, --help  show this help

Exit status: 0 stopped by a signal, 1 failed to start or a component died.`;

/** What the node must have loaded: the injected images, the demo app, the pause image. */
export const NODE_IMAGES = [IMAGES.proxy, IMAGES.init, DEMO_IMAGE, PAUSE_IMAGE] as const;

/** `kubectl apply` of an HTTP-delay ChaosPolicy for the API-only walkthrough, as alice. */
function policyCommand(cp: ControlPlane, name: string, delay: string): string {
  // Flush left: a here-document ends only at an unindented EOF line.
  return `  kubectl --kubeconfig ${cp.kubeconfigs.alice} apply -n shop -f - <<'EOF'
apiVersion: ${API_GROUP_VERSION}
kind: ChaosPolicy
metadata: {name: ${name}}
spec:
  selector: {matchLabels: {run: web}}
  mode: {type: all}
  duration: 10m
  http: [{delay: {fixed: ${delay}}}]
EOF`;
}

/** Without a node: what can be tried is admission (injection, allowlists). */
function apiOnlySteps(cp: ControlPlane): string {
  return `  # 1. Opt a namespace in, create a pod, see what was injected
  kubectl create namespace shop
  kubectl label namespace shop ${CHAOS_LABEL}=${CHAOS_LABEL_ENABLED}
  kubectl run web --image=nginx -n shop
  kubectl get pod web -n shop -o yaml        # initContainers: faultline-init, faultline-proxy (restartPolicy: Always)

  # 2. As tenant alice, ask for a fault within the "shop" tenant's allowlist
  kubectl create rolebinding alice-edit --clusterrole=edit --user=alice -n shop
${policyCommand(cp, 'web-latency', '200ms')}
  kubectl get chaospolicies -n shop

  # 3. Ask for more than the tenant allows (max 2s): the denial names tenant, field and limit
${policyCommand(cp, 'web-stall', '5s')}`;
}

function walkthrough(cp: ControlPlane, k8sVersion: string, tenantWarning: string | undefined, fallback: string | undefined): string {
  const t = cp.timings;
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const kubectl = cp.binaries.kubectl;
  const node = cp.node;
  const what = node
    ? `a node (${s(t.node)} to Ready)`
    : 'no node: pods are admitted and injected, never run';
  const logs = node
    ? `${cp.dir}/{etcd,kube-apiserver,kube-controller-manager,kube-scheduler,webhook}.log, ${node.layout.dir}/{containerd,kubelet,kube-proxy,coredns}.log`
    : `${cp.dir}/{etcd,kube-apiserver,kube-controller-manager,webhook}.log`;
  return `
Faultline is up: Kubernetes ${k8sVersion} on ${cp.apiserverUrl}, ready in ${s(t.total)}; ${what}

  kubeconfig  ${cp.kubeconfigs.admin}   (admin)
              ${cp.kubeconfigs.alice}   (alice, group tenant-shop)
              ${cp.kubeconfigs.bob}   (bob, group tenant-pay)
  kubectl     ${kubectl}
  webhook     https://127.0.0.1:${cp.webhookPort}
  logs        ${logs}
${tenantWarning ? `\n  warning: ${tenantWarning}\n` : ''}${fallback ? `\n${fallback}\n` : ''}
Try it from another shell:

  export KUBECONFIG=${cp.kubeconfigs.admin}
  alias kubectl=${kubectl}
${node ? renderSteps(walkthroughSteps(), { admin: cp.kubeconfigs.admin, alice: cp.kubeconfigs.alice }) : `\n${apiOnlySteps(cp)}`}

Ctrl-C stops everything${cp.keep ? ` (${cp.dir} is kept)` : ` and deletes ${cp.dir}`}.
`;
}

/**
 * Starts with a node where the machine can run one, else the control plane
 * alone; returns the cluster and, for a fallback, the reason to print.
 */
async function startCluster(base: ControlPlaneOptions, apiOnly: boolean, progress: (line: string) => void): Promise<{ cp: ControlPlane; fallback?: string }> {
  if (apiOnly) return { cp: await startControlPlane(base) };
  const missing = await missingForNode();
  if (missing.length > 0) {
    const fallback = `No node: this machine lacks\n${describeMissing(missing)}\nso this is the control plane alone (pods are admitted and injected, never run).`;
    return { cp: await startControlPlane(base), fallback };
  }
  progress('starting etcd, kube-apiserver, kube-controller-manager, the Faultline webhook, and a node');
  try {
    return { cp: await startControlPlane({ ...base, node: { images: NODE_IMAGES } }) };
  } catch (err) {
    if (!(err instanceof MissingImagesError)) throw err;
    const fallback = `No node: containerd lacks the images\n${err.images.map((i) => `  - ${i}`).join('\n')}\nBuild and load them with \`npm run images:build\` (about 4 min), then run \`npm start\` again.\nThis is the control plane alone (pods are admitted and injected, never run).`;
    progress(fallback);
    return { cp: await startControlPlane(base), fallback };
  }
}

export const upCommand: Command = {
  usage,
  options: {
    port: { type: 'string' },
    keep: { type: 'boolean' },
    'api-only': { type: 'boolean' },
    quiet: { type: 'boolean' },
  },
  async run(values) {
    const port = int(values, 'port', 0);
    if (port < 0 || port > 65535) throw new UsageError(`--port must be in [1, 65535], got ${port}`);
    const quiet = flag(values, 'quiet');
    const progress = quiet ? () => undefined : (line: string) => process.stderr.write(`faultline up: ${line}\n`);

    const missing = await missingTools();
    if (missing.length > 0) {
      // The build's own output follows on stderr, even with --quiet: a silent
      // ten-minute wait looks like a hang.
      process.stderr.write(`faultline up: building ${missing.join(', ')} (first run only: about 5 min on 2 cores)\n`);
    }
    let cp: ControlPlane;
    let fallback: string | undefined;
    try {
      ({ cp, fallback } = await startCluster({ keep: flag(values, 'keep'), progress, ...(port ? { apiserverPort: port } : {}) }, flag(values, 'api-only'), progress));
    } catch (err) {
      process.stderr.write(`faultline up: ${(err as Error).message}\n`);
      return 1;
    }

    // Children are unref'd (their lifetime follows ours, not the reverse), so
    // something must hold the event loop open while we wait for a signal.
    const keepAlive = setInterval(() => undefined, 1 << 30);
    try {
      const tenantWarning = await createDemoTenant((args, input) => cp.kubectl('admin', args, input ? { input } : {}));
      const { KUBERNETES_VERSION = 'unknown' } = await pinnedVersions();
      process.stdout.write(quiet ? `${cp.kubeconfigs.admin}\n` : walkthrough(cp, KUBERNETES_VERSION, tenantWarning, fallback));

      const outcome = await new Promise<{ signal: NodeJS.Signals } | { died: string }>((resolve) => {
        process.once('SIGINT', () => resolve({ signal: 'SIGINT' }));
        process.once('SIGTERM', () => resolve({ signal: 'SIGTERM' }));
        void cp.unexpectedExit().then((died) => resolve({ died }));
      });
      if ('died' in outcome) process.stderr.write(`faultline up: ${outcome.died}\n`);
      progress('stopping');
      // A second Ctrl-C while stopping exits at once; the reaper still tears
      // the node down, kills the children and removes the directory.
      process.once('SIGINT', () => process.exit(130));
      await cp.stop();
      progress(cp.keep ? `stopped; kept ${cp.dir}` : 'stopped');
      return 'died' in outcome ? 1 : 0;
    } finally {
      clearInterval(keepAlive);
      await cp.stop();
    }
  },
};
