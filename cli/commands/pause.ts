// `faultline pause` / `faultline resume`: throw or release a brake
// (policies/switches.ts). Each is one merge PATCH, the same write as the
// kubectl form printed with it, so the CLI adds no path that kubectl lacks.
// Neither touches the webhook: the Namespace is never sent to it, and a
// ChaosTenant UPDATE that changes only spec.paused is excluded from it by a
// matchCondition — the brakes work while the webhook is down.
import { homedir } from 'node:os';
import path from 'node:path';
import { createLogger } from '../../common/log.ts';
import { CLUSTER_SWITCH_NAMESPACE, PAUSE_ANNOTATION } from '../../policies/switches.ts';
import { API_GROUP, API_VERSION } from '../../policies/wellknown.ts';
import { flag, str, UsageError, type Command, type ParsedValues } from '../command.ts';

/** What one switch write is: the API call and its kubectl equivalent. */
export interface SwitchWrite {
  path: string;
  patch: unknown;
  kubectl: string;
  done: string;
}

/** Pure: the write that sets `paused` on the switch the flags name. */
export function switchWrite(values: ParsedValues, paused: boolean): SwitchWrite {
  const all = flag(values, 'all');
  const tenant = str(values, 'tenant');
  if (all === (tenant !== undefined)) throw new UsageError('name one switch: --all (cluster-wide) or --tenant <name>');
  if (tenant !== undefined) {
    if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(tenant) || tenant.length > 253) throw new UsageError(`--tenant: "${tenant}" is not a valid ChaosTenant name`);
    return {
      path: `/apis/${API_GROUP}/${API_VERSION}/chaostenants/${tenant}`,
      patch: { spec: { paused } },
      kubectl: `kubectl patch chaostenant ${tenant} --type=merge -p '{"spec":{"paused":${paused}}}'`,
      done: `ChaosTenant ${tenant} ${paused ? 'paused' : 'resumed'}`,
    };
  }
  return {
    path: `/api/v1/namespaces/${CLUSTER_SWITCH_NAMESPACE}`,
    patch: { metadata: { annotations: { [PAUSE_ANNOTATION]: paused ? 'true' : null } } },
    kubectl: paused
      ? `kubectl annotate namespace ${CLUSTER_SWITCH_NAMESPACE} ${PAUSE_ANNOTATION}=true --overwrite`
      : `kubectl annotate namespace ${CLUSTER_SWITCH_NAMESPACE} ${PAUSE_ANNOTATION}-`,
    done: paused ? 'all chaos paused cluster-wide' : 'cluster-wide pause released',
  };
}

function defaultKubeconfig(): string {
  const env = process.env.KUBECONFIG?.split(path.delimiter).find((p) => p !== '');
  return env ?? path.join(homedir(), '.kube', 'config');
}

function switchCommand(paused: boolean): Command {
  const verb = paused ? 'pause' : 'resume';
  return {
    usage: `Usage: faultline ${verb} (--all | --tenant <name>) [--kubeconfig <path>]

${paused
  ? `Throws a brake. Every sidecar and faultline-kernel watches the switches
itself: all live faults (and the kernel faults wherever faultline-kernel runs)
end within 1 s, also with the webhook down; new or changed ChaosPolicies are
denied naming the switch, and pods admitted meanwhile get no kernel faults.
Nothing resumes by itself: run \`faultline resume\` with the same switch.`
  : `Releases a brake thrown by \`faultline pause\`. Live faults of policies still
within their duration come back at once; kernel faults come back on pod restart.`}

Options:
  --all                The cluster-wide switch (annotation ${PAUSE_ANNOTATION} on
                       Namespace ${CLUSTER_SWITCH_NAMESPACE})
  --tenant <name>      One tenant's switch (ChaosTenant spec.paused)
  --kubeconfig <path>  Default: $KUBECONFIG, else ~/.kube/config`,
    options: {
      all: { type: 'boolean' },
      tenant: { type: 'string' },
      kubeconfig: { type: 'string' },
    },
    async run(values) {
      const write = switchWrite(values, paused);
      const log = createLogger('cli');
      const { kubeconfigConnection } = await import('../../kube/connection.ts');
      const { KubeClient } = await import('../../kube/client.ts');
      const client = new KubeClient(await kubeconfigConnection(str(values, 'kubeconfig') ?? defaultKubeconfig()));
      try {
        await client.writeJson('PATCH', write.path, write.patch, AbortSignal.timeout(15_000), 'application/merge-patch+json');
      } catch (err) {
        process.stderr.write(`faultline ${verb}: ${(err as Error).message}\nthe same with kubectl: ${write.kubectl}\n`);
        return 1;
      } finally {
        client.close();
      }
      log.info({ switch: write.path, paused }, write.done);
      process.stdout.write(`${write.done}\n(kubectl form: ${write.kubectl})\n`);
      return 0;
    },
  };
}

export const pauseCommand = switchCommand(true);
export const resumeCommand = switchCommand(false);
