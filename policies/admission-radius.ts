// The blast radius of kernel faults (network/io/time) for a pod being created.
//
// Kernel faults are fixed when a pod starts, and a pod under admission has no
// stable name to sample a `one`/`fixed`/`fixed-percent` radius against (a
// ReplicaSet's pods get generated names). So the radius is filled first come,
// first served: the new pod joins when fewer live matching pods already carry
// the policy's kernel faults than the radius would be with the new pod
// counted. The reconciler then prefers the pods carrying them when it picks
// status.targets, so live and kernel faults land on the same pods.

import { targetCount } from './selection.ts';
import type { DefaultedMode } from './defaults.ts';
import type { ChaosId } from '../contract/plans.ts';

/** A live pod the policy's selector matches, as far as the radius is concerned. */
export interface RadiusPod {
  /** Chaos ids whose kernel faults the pod was started with (its plan annotation). */
  kernelChaosIds: readonly ChaosId[];
}

export interface RadiusInput {
  chaosId: ChaosId;
  mode: DefaultedMode;
  /** The owning tenant's maxPodPercent, a hard ceiling. */
  maxPodPercent?: number;
  /** Live (not terminating, not finished) pods the selector matches, excluding the new pod. */
  matching: readonly RadiusPod[];
}

/** Whether a new matching pod gets the policy's kernel faults. */
export function admitsNewPod(input: RadiusInput): boolean {
  const carrying = input.matching.filter((p) => p.kernelChaosIds.includes(input.chaosId)).length;
  return carrying < targetCount(input.mode, input.matching.length + 1, input.maxPodPercent);
}
