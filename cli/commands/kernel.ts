import { existsSync } from 'node:fs';
import path from 'node:path';
import { createLogger, type Logger } from '../../common/log.ts';
import { MAX_TIMER_MS } from '../../common/timer.ts';
import { PLAN_ENV, POD_NAMESPACE_ENV, RUN_MOUNT_PATH, TOKEN_MOUNT_PATH } from '../../contract/pod-layout.ts';
import { kernelChaosIdsOf, startFaultKeeper, type FaultKeeper } from '../../pod-setup/fault-keeper.ts';
import { loadInitPlan } from '../../pod-setup/load-plan.ts';
import { str, strs, UsageError, type Command } from '../command.ts';

const DEFAULT_STATE_DIR = '/var/run/faultline-kernel';

function parseVolumeMap(specs: string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const spec of specs) {
    const [app, here, ...rest] = spec.split('=');
    if (!app?.startsWith('/') || !here?.startsWith('/') || rest.length > 0) {
      throw new UsageError(`--volume must be <app path>=<path here>, both absolute, got '${spec}'`);
    }
    map.set(app.replace(/\/+$/, '') || '/', here);
  }
  return map;
}

/** The brake needs the API server; without a kubeconfig or a cluster the faults simply run to expiry. */
async function startBrake(kubeconfig: string | undefined, server: FaultKeeper, planned: Set<string>, log: Logger): Promise<{ stop(): void } | undefined> {
  const namespace = process.env[POD_NAMESPACE_ENV];
  const inCluster = process.env.KUBERNETES_SERVICE_HOST !== undefined;
  if (planned.size === 0 || (kubeconfig === undefined && !inCluster)) return undefined;
  // No token where the app got none (issue 13 M6): like the proxy, run on without watching.
  if (kubeconfig === undefined && !existsSync(path.join(TOKEN_MOUNT_PATH, 'token'))) {
    log.warn({ token: TOKEN_MOUNT_PATH }, 'no service-account token: kernel faults run to expiry, unheld by the pause switches');
    return undefined;
  }
  if (!namespace) throw new UsageError(`the kernel brake needs ${POD_NAMESPACE_ENV} (downward API)`);
  const [{ startKernelBrake }, { inClusterConnection, kubeconfigConnection }] = await Promise.all([
    import('../../pod-setup/kernel-brake.ts'),
    import('../../kube/connection.ts'),
  ]);
  const connection = kubeconfig !== undefined ? await kubeconfigConnection(kubeconfig) : await inClusterConnection();
  const brake = startKernelBrake({ connection, namespace, server, planned, log });
  await brake.start();
  return brake;
}

export const kernelCommand: Command = {
  usage: `Usage: faultline kernel [options]

Long-running half of the kernel-level plan ($${PLAN_ENV} or --plan-file):
layers a fault-injecting passthrough FUSE filesystem over every IO fault's
volume and removes the pod's tc qdisc and nft loss rules when the network
fault expires. Started after expiry, it removes them at once, and the dead
FUSE layer of a killed predecessor from volumes whose faults expired.
Writes <run-dir>/kernel-ready once serving (for the startup probe), then runs
until SIGTERM/SIGINT, which unmount everything, leaving the volumes as they were.

Options:
  --plan-file <path>  Read the plan from a file instead of $${PLAN_ENV}
  --run-dir <dir>     faultline-run emptyDir (default ${RUN_MOUNT_PATH})
  --state-dir <dir>   private working directory (default ${DEFAULT_STATE_DIR})
  --kubeconfig <path>  Watch the pause switches and the plan's policies with this
                      kubeconfig (in a cluster: the faultline token); a policy
                      paused, deleted or held by a switch has its faults lifted
  --volume <app>=<here>
                      The volume the app mounts at <app> is mounted at <here> in
                      this container (repeatable; default: the same path)`,
  options: {
    'plan-file': { type: 'string' },
    'run-dir': { type: 'string' },
    'state-dir': { type: 'string' },
    volume: { type: 'string', multiple: true },
    kubeconfig: { type: 'string' },
  },
  async run(values) {
    const log = createLogger('kernel');
    const volumes = parseVolumeMap(strs(values, 'volume'));
    let server;
    const plan = await loadInitPlan(str(values, 'plan-file'));
    try {
      server = await startFaultKeeper(
        plan,
        {
          stateDir: str(values, 'state-dir') ?? DEFAULT_STATE_DIR,
          runDir: str(values, 'run-dir') ?? RUN_MOUNT_PATH,
          volumes,
        },
        log,
      );
    } catch (err) {
      const message = (err as Error).message;
      log.error(`faultline kernel failed: ${message}`);
      return 1;
    }
    log.info({ volumes: server.volumes.map((v) => v.volumePath) }, 'faultline kernel ready');
    // A native sidecar lives as long as its pod: one that exits is restarted
    // and counts against readiness. Signal listeners don't keep Node's event
    // loop alive, and with no FUSE mount and no expiry timer left nothing
    // else does, so this timer holds it open until SIGTERM/SIGINT.
    const keepAlive = setInterval(() => undefined, MAX_TIMER_MS);
    const brake = await startBrake(str(values, 'kubeconfig'), server, kernelChaosIdsOf(plan), log);
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    clearInterval(keepAlive);
    log.info({ signal }, 'shutting down: unmounting IO fault layers');
    brake?.stop();
    await server.stop();
    log.info('faultline kernel stopped');
    return 0;
  },
};
