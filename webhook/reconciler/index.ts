// The singletons of the webhook process: the ChaosPolicy status controller and
// the sidecar RoleBinding controller, run only by the replica holding the
// lease, and only on a synced cache (an empty cache would read as "no pods"
// and clear every policy's targets).
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../../common/log.ts';
import type { ClusterCache } from '../cache/cluster-cache.ts';
import { startLeaderElection, type LeaseTiming } from '../../kube/leader.ts';
import { startPolicyController, type Controller } from './policy-controller.ts';
import { startSidecarRbacController } from './sidecar-rbac.ts';
import type { ChaosMetrics } from './chaos-metrics.ts';
import type { ChaosEvent } from '../../common/chaos-event.ts';

export interface ReconcilerOptions {
  kubeConfig: KubeConfig;
  cluster: ClusterCache;
  log: Logger;
  /** Namespace of the leader-election Lease. */
  leaseNamespace: string;
  leaseTiming?: LeaseTiming;
  /** Metrics by policy, on the webhook's registry (created once per process: leadership comes and goes). */
  metrics?: ChaosMetrics;
  chaosSink?: (e: ChaosEvent) => void;
}

export interface Reconciler {
  readonly isLeader: boolean;
  stop(): Promise<void>;
}

export function startReconciler(opts: ReconcilerOptions): Reconciler {
  const { cluster, log } = opts;
  let running: Controller[] = [];
  let leading = false;
  const elector = startLeaderElection({
    kubeConfig: opts.kubeConfig,
    namespace: opts.leaseNamespace,
    log,
    ...(opts.leaseTiming ? { timing: opts.leaseTiming } : {}),
    onStartedLeading() {
      leading = true;
      void cluster.synced().then(() => {
        if (!leading || running.length > 0) return;
        running = [startPolicyController({ kubeConfig: opts.kubeConfig, cluster, log, ...(opts.metrics ? { metrics: opts.metrics } : {}), ...(opts.chaosSink ? { chaosSink: opts.chaosSink } : {}) }), startSidecarRbacController({ kubeConfig: opts.kubeConfig, cluster, log })];
      });
    },
    onStoppedLeading() {
      leading = false;
      for (const c of running) c.stop();
      running = [];
    },
  });
  return {
    get isLeader() {
      return elector.isLeader;
    },
    stop: () => elector.stop(),
  };
}
