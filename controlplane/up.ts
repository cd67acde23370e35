// `npm start`: the local development cluster. Dev tooling, not product: it
// lives beside the control plane it starts, so the product CLI (cli/) and the
// images never carry controlplane/. It reuses the product CLI's option parser.
import { flag, int, runAsProcess, runCommand, UsageError, type Command } from '../cli/command.ts';
import { API_GROUP_VERSION, CHAOS_LABEL, CHAOS_LABEL_ENABLED } from '../policies/wellknown.ts';
import { missingTools, pinnedVersions } from './binaries.ts';
import { startControlPlane, type ControlPlane } from './index.ts';

const usage = `Usage: npm start -- [--port P] [--keep] [--quiet]   (node controlplane/up.ts)

Runs a local Kubernetes control plane with Faultline installed, for trying it
out and for development: etcd and kube-apiserver on 127.0.0.1 (the pinned
versions, built into ~/.cache/faultline/bin on first use: about 5 min on
2 cores), the CRDs and tenant roles from manifests/, the webhook as a local
process, and a demo ChaosTenant "shop". Users: admin (cluster-admin), alice
(group tenant-shop) and bob (group tenant-pay), one kubeconfig each.

There is no kubelet: pods are admitted, injected and stored, never run.
Stays up until Ctrl-C or SIGTERM, then stops everything and deletes its
temporary directory (etcd data, logs, kubeconfigs, certificates).

Options:
  --port P    kube-apiserver port on 127.0.0.1 (default: a free port)
  --keep      keep the temporary directory after stopping
  --quiet     print only the kubeconfig path (for scripts: KUBECONFIG=$(...))
  -h, --help  show this help

Exit status: 0 stopped by a signal, 1 failed to start or a component died.`;

/** The demo tenant: what `shop` may run, so the walkthrough's denial has something to cite. */
function demoTenant(): object {
  return {
    apiVersion: API_GROUP_VERSION,
    kind: 'ChaosTenant',
    metadata: { name: 'shop' },
    spec: {
      namespaces: ['shop'],
      subjects: [{ kind: 'Group', name: 'tenant-shop' }],
      allow: {
        kinds: ['http.delay', 'http.abort', 'tcp.latency'],
        limits: { maxDelay: '2s', maxDuration: '30m', maxPodPercent: 50 },
      },
    },
  };
}

/** Creates the demo tenant if the CRD is served; returns a warning instead of failing `up`. */
async function createDemoTenant(cp: ControlPlane): Promise<string | undefined> {
  const crd = await cp.kubectl('admin', ['get', 'crd', `chaostenants.${API_GROUP_VERSION.split('/')[0]}`]);
  if (crd.code !== 0) return 'the ChaosTenant CRD is not installed; skipped the demo tenant';
  const res = await cp.kubectl('admin', ['create', '-f', '-'], { input: JSON.stringify(demoTenant()) });
  return res.code === 0 ? undefined : `the demo ChaosTenant "shop" was not created: ${res.stderr.trim()}`;
}

/** `kubectl apply` of an HTTP-delay ChaosPolicy for the walkthrough pod, as alice. */
function policyCommand(cp: ControlPlane, name: string, delay: string): string {
  // Flush left: a here-document ends only at an unindented EOF line.
  return `  kubectl --kubeconfig ${cp.kubeconfigs.alice} apply -n shop -f - <<'EOF'
apiVersion: ${API_GROUP_VERSION}
kind: ChaosPolicy
metadata: {name: ${name}}
spec:
  selector: {matchLabels: {run: web}}
  mode: {type: fixed-percent, value: 50}
  duration: 10m
  http: [{delay: {fixed: ${delay}, percent: 50}}]
EOF`;
}

function walkthrough(cp: ControlPlane, k8sVersion: string, tenantWarning: string | undefined): string {
  const t = cp.timings;
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const kubectl = cp.binaries.kubectl;
  return `
Faultline is up: Kubernetes ${k8sVersion} on ${cp.apiserverUrl}, ready in ${s(t.total)} (etcd + kube-apiserver ${s(t.controlPlane)})

  kubeconfig  ${cp.kubeconfigs.admin}   (admin)
              ${cp.kubeconfigs.alice}   (alice, group tenant-shop)
              ${cp.kubeconfigs.bob}   (bob, group tenant-pay)
  kubectl     ${kubectl}
  webhook     https://127.0.0.1:${cp.webhookPort}
  logs        ${cp.dir}/{etcd,kube-apiserver,webhook}.log
${tenantWarning ? `\n  warning: ${tenantWarning}\n` : ''}
Try it from another shell:

  export KUBECONFIG=${cp.kubeconfigs.admin}
  alias kubectl=${kubectl}

  # 1. Opt a namespace in, create a pod, see what was injected
  kubectl create namespace shop
  kubectl label namespace shop ${CHAOS_LABEL}=${CHAOS_LABEL_ENABLED}
  kubectl run web --image=nginx -n shop
  kubectl get pod web -n shop -o yaml        # initContainers: faultline-init, faultline-proxy (restartPolicy: Always)

  # 2. As tenant alice, ask for a fault within the "shop" tenant's allowlist
  kubectl create rolebinding alice-edit --clusterrole=edit --user=alice -n shop
${policyCommand(cp, 'web-latency', '200ms')}
  kubectl get chaospolicies -n shop

  # 3. Ask for more than the tenant allows (max 2s): the denial names tenant, field and limit
${policyCommand(cp, 'web-stall', '5s')}

No kubelet runs here, so pods stay Pending. Ctrl-C stops everything${cp.keep ? ` (${cp.dir} is kept)` : ` and deletes ${cp.dir}`}.
`;
}

export const upCommand: Command = {
  usage,
  options: {
    port: { type: 'string' },
    keep: { type: 'boolean' },
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
    progress('starting etcd, kube-apiserver and the Faultline webhook');
    let cp: ControlPlane;
    try {
      cp = await startControlPlane({ keep: flag(values, 'keep'), progress, ...(port ? { apiserverPort: port } : {}) });
    } catch (err) {
      process.stderr.write(`faultline up: ${(err as Error).message}\n`);
      return 1;
    }

    // Children are unref'd (their lifetime follows ours, not the reverse), so
    // something must hold the event loop open while we wait for a signal.
    const keepAlive = setInterval(() => undefined, 1 << 30);
    try {
      const tenantWarning = await createDemoTenant(cp);
      const { KUBERNETES_VERSION = 'unknown' } = await pinnedVersions();
      process.stdout.write(quiet ? `${cp.kubeconfigs.admin}\n` : walkthrough(cp, KUBERNETES_VERSION, tenantWarning));

      const outcome = await new Promise<{ signal: NodeJS.Signals } | { died: string }>((resolve) => {
        process.once('SIGINT', () => resolve({ signal: 'SIGINT' }));
        process.once('SIGTERM', () => resolve({ signal: 'SIGTERM' }));
        void cp.unexpectedExit().then((died) => resolve({ died }));
      });
      if ('died' in outcome) process.stderr.write(`faultline up: ${outcome.died}\n`);
      progress('stopping');
      // A second Ctrl-C while stopping exits at once; the reaper still kills
      // the children and removes the directory.
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

runAsProcess('faultline up', () => runCommand('faultline up', upCommand, process.argv.slice(2)));
