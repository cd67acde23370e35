import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createLogger, type Logger } from '../../common/log.ts';
import type { KernelFaultPlan, TrafficWiring } from '../../contract/plans.ts';
import { readHandoff } from '../../contract/handoff.ts';
import {
  DEFAULT_PROXY_PORTS,
  FAKETIME_TIMESTAMP_FILE,
  HANDOFF_FILE,
  HOST_IP_ENV,
  HOST_IPS_ENV,
  PLAN_ENV,
  POD_IP_ENV,
  POD_IPS_ENV,
  POD_NAME_ENV,
  POD_NAMESPACE_ENV,
  PROXY_ALIVE_FILE,
  RUN_MOUNT_PATH,
  TOKEN_MOUNT_PATH,
} from '../../contract/pod-layout.ts';
import { decodeInitPlan, decodeWiring, PlanError } from '../../contract/codec.ts';
import { FilePolicySource } from '../../sidecar/policy-source-file.ts';
import type { PolicySource } from '../../sidecar/policy-source.ts';
import { flag, int, str, UsageError, type Command, type ParsedValues } from '../command.ts';

const P = DEFAULT_PROXY_PORTS;
/** Where pod setup writes its hand-off (contract/handoff.ts) in the shared run volume. */
const DEFAULT_HANDOFF_FILE = `${RUN_MOUNT_PATH}/${HANDOFF_FILE}`;
/** The liveness FIFO faultline-init creates for faultline-failopen. */
const DEFAULT_ALIVE_FILE = `${RUN_MOUNT_PATH}/${PROXY_ALIVE_FILE}`;
/** sidecar/malloc-release.ts: how often the proxy hands free C-heap pages back. */
const DEFAULT_MALLOC_RELEASE_S = 10;

/** The wiring from --wiring-file (a TrafficWiring or a whole InitPlan) or $FAULTLINE_PLAN, and the pod's kernel faults when the plan carries them. */
async function loadWiring(file: string | undefined): Promise<{ wiring: TrafficWiring; kernel?: KernelFaultPlan }> {
  if (file !== undefined) {
    try {
      return { wiring: decodeWiring(await readFile(file, 'utf8'), `--wiring-file ${file}`) };
    } catch (err) {
      // A bad file named on the command line is a usage error (exit 2).
      if (err instanceof PlanError) throw new UsageError(err.message);
      throw err;
    }
  }
  const env = process.env[PLAN_ENV];
  if (env === undefined || env.trim() === '') throw new UsageError(`no wiring: set ${PLAN_ENV} or pass --wiring-file`);
  const plan = decodeInitPlan(env, PLAN_ENV);
  return { wiring: plan.wiring, kernel: plan.kernel };
}

// The Kubernetes source and the planner are imported on use: a pod running
// with a plan file (or `faultline --help`) should not pay for node:https and
// the policy validator.
async function policySource(values: ParsedValues, log: Logger): Promise<PolicySource | undefined> {
  const planFile = str(values, 'plan-file');
  const kubeconfig = str(values, 'kubeconfig');
  if (planFile !== undefined && kubeconfig !== undefined) throw new UsageError('--plan-file and --kubeconfig are two policy sources; pick one');
  if (planFile !== undefined) return new FilePolicySource(planFile, log);
  const inCluster = process.env.KUBERNETES_SERVICE_HOST !== undefined;
  if (kubeconfig === undefined && !inCluster) return undefined;
  if (kubeconfig === undefined && !existsSync(path.join(TOKEN_MOUNT_PATH, 'token'))) {
    log.warn({ token: TOKEN_MOUNT_PATH }, 'no service-account token (the pod sets automountServiceAccountToken: false): running without live faults');
    return undefined;
  }
  const namespace = process.env[POD_NAMESPACE_ENV];
  const podName = process.env[POD_NAME_ENV];
  if (!namespace || !podName) throw new UsageError(`the Kubernetes policy source needs ${POD_NAMESPACE_ENV} and ${POD_NAME_ENV} (downward API)`);
  const [{ K8sPolicySource }, { inClusterConnection, kubeconfigConnection }, { livePlanner }] = await Promise.all([
    import('../../sidecar/policy-source-k8s.ts'),
    import('../../kube/connection.ts'),
    import('../../policies/planner.ts'),
  ]);
  const connection = kubeconfig !== undefined ? await kubeconfigConnection(kubeconfig) : await inClusterConnection();
  return new K8sPolicySource({ connection, namespace, podName, planFor: livePlanner(), log });
}

/** A downward-API list ("10.0.0.5,fd00::5") plus a single address, deduplicated. */
function addresses(one: string | undefined, list: string | undefined): string[] {
  return [...new Set([one ?? '', ...(list ?? '').split(',')].map((a) => a.trim()).filter((a) => a !== ''))];
}

export const sidecarCommand: Command = {
  usage: `Usage: faultline sidecar [options]

Serves the wiring's capture (from $${PLAN_ENV}, or --wiring-file): the two
listeners nft sends every inbound and outbound TCP connection to; each
connection's original destination decides its path. Forwards the traffic,
injecting the pod's live faults:
HTTP and gRPC delay/abort per request or stream, TCP toxics through a
supervised toxiproxy-server. Capture reads the pod's addresses from $${POD_IP_ENV}
and $${POD_IPS_ENV} and the node's from $${HOST_IP_ENV} and $${HOST_IPS_ENV} (downward API). Faults come from the
ChaosPolicies of $${POD_NAMESPACE_ENV} that target $${POD_NAME_ENV} (in-cluster with the
token mounted at ${TOKEN_MOUNT_PATH}, or --kubeconfig), or from a static plan file. Without a source, traffic passes
untouched. Every fault ends at its expiresAt, whatever the source does.

Options:
  --wiring-file <path>     TrafficWiring (or InitPlan) JSON instead of $${PLAN_ENV}
  --plan-file <path>       LiveFaultPlan JSON, reloaded when it changes (policy source)
  --kubeconfig <path>      Watch ChaosPolicies with this kubeconfig (policy source;
                           token, tokenFile or client certificate only)
  --toxiproxy-bin <path>   toxiproxy-server executable (default: toxiproxy-server on PATH)
  --toxiproxy-port <n>     Toxiproxy API port on 127.0.0.1 (default ${P.toxiproxy}; 0 = any free)
  --admin-port <n>         Admin API on 127.0.0.1 (default ${P.admin})
  --metrics-port <n>       Prometheus /metrics (default ${P.metrics})
  --health-port <n>        /healthz/ready for the startup probe (default ${P.health})
  --listen-host <host>     Address of the traffic listeners (default ::, both families)
  --fault-header           Mark faulted responses with x-faultline-fault
  --faketime-file <path>   libfaketime offset file (default ${FAKETIME_TIMESTAMP_FILE})
  --handoff-file <path>    Init hand-off (default ${DEFAULT_HANDOFF_FILE})
  --alive-file <path>      Liveness FIFO held open while the listeners serve; the
                           fail-open gate opens when it closes (default ${DEFAULT_ALIVE_FILE})
  --malloc-release-interval <s>
                           Seconds between returns of free C-heap memory to the
                           kernel (glibc malloc_trim; default ${DEFAULT_MALLOC_RELEASE_S}, 0 = never)`,
  options: {
    'wiring-file': { type: 'string' },
    'plan-file': { type: 'string' },
    kubeconfig: { type: 'string' },
    'toxiproxy-bin': { type: 'string' },
    'toxiproxy-port': { type: 'string' },
    'admin-port': { type: 'string' },
    'metrics-port': { type: 'string' },
    'health-port': { type: 'string' },
    'listen-host': { type: 'string' },
    'fault-header': { type: 'boolean' },
    'faketime-file': { type: 'string' },
    'handoff-file': { type: 'string' },
    'alive-file': { type: 'string' },
    'malloc-release-interval': { type: 'string' },
  },
  async run(values) {
    const log = createLogger('sidecar');
    const mallocReleaseS = int(values, 'malloc-release-interval', DEFAULT_MALLOC_RELEASE_S);
    if (mallocReleaseS < 0) throw new UsageError(`--malloc-release-interval must be 0 (never) or more seconds, got ${mallocReleaseS}`);
    const { wiring, kernel } = await loadWiring(str(values, 'wiring-file'));
    const podAddresses = addresses(process.env[POD_IP_ENV], process.env[POD_IPS_ENV]);
    if (podAddresses.length === 0)
      throw new UsageError(`capture needs the pod's addresses: set ${POD_IP_ENV} or ${POD_IPS_ENV} (downward API status.podIP/podIPs)`);
    const source = await policySource(values, log);
    const [{ Sidecar }, { holdAlivePipe }] = await Promise.all([import('../../sidecar/sidecar.ts'), import('../../sidecar/alive-pipe.ts')]);
    const handoffFile = str(values, 'handoff-file') ?? DEFAULT_HANDOFF_FILE;
    const sidecar = await Sidecar.start({
      capture: wiring.capture,
      listenHost: str(values, 'listen-host') ?? '::',
      podAddresses,
      nodeAddresses: addresses(process.env[HOST_IP_ENV], process.env[HOST_IPS_ENV]),
      source,
      toxiproxyBin: str(values, 'toxiproxy-bin') ?? 'toxiproxy-server',
      toxiproxyPort: int(values, 'toxiproxy-port', P.toxiproxy),
      adminPort: int(values, 'admin-port', P.admin),
      metricsPort: int(values, 'metrics-port', P.metrics),
      healthPort: int(values, 'health-port', P.health),
      faultHeader: flag(values, 'fault-header'),
      faketimeFile: str(values, 'faketime-file') ?? FAKETIME_TIMESTAMP_FILE,
      handoffDelay: await readHandoff(handoffFile),
      mallocReleaseIntervalMs: mallocReleaseS * 1000,
      ...(process.env[POD_NAME_ENV] ? { podName: process.env[POD_NAME_ENV] } : {}),
      ...(kernel ? { kernelPlan: kernel } : {}),
      log,
    });
    const alive = holdAlivePipe(str(values, 'alive-file') ?? DEFAULT_ALIVE_FILE, log);
    // The kubelet stops a native sidecar with SIGTERM after the app has exited;
    // close cleanly so the Toxiproxy child never outlives us.
    await new Promise<void>((resolve) => {
      const stop = (signal: string): void => {
        log.info({ signal }, 'shutting down');
        resolve();
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    // Gate open first, so connections arriving while we drain reach the app.
    alive.release();
    await sidecar.close();
    return 0;
  },
};
