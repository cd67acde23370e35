// The faultline.dev/plan annotation on an injected pod: a short summary of what
// is captured and which policies' kernel faults the pod was started with. The
// injector writes it; the cache reads the chaos ids back to fill kernel-fault
// blast radii and to tell the reconciler which pods need a restart.
import type { ChaosId, InitPlan, TrafficWiring } from '../contract/plans.ts';

export interface PlanSummary {
  /** "capture", or "capture, mesh first (istio)" for a pod carrying a mesh sidecar. */
  traffic: string;
  /** Kernel fault families applied at start: network, io, time. */
  kernel: string[];
  /** Policies whose kernel faults the pod carries, "<namespace>/<name>", sorted; absent when none. */
  chaos?: ChaosId[];
}

export function planSummary(plan: InitPlan): PlanSummary {
  const { kernel } = plan;
  const ids = new Set<ChaosId>([...(kernel.network ? [kernel.network.chaosId] : []), ...kernel.io.map((f) => f.chaosId), ...(kernel.time ? [kernel.time.chaosId] : [])]);
  return {
    traffic: trafficSummary(plan.wiring),
    kernel: [...(kernel.network ? ['network'] : []), ...(kernel.io.length > 0 ? ['io'] : []), ...(kernel.time ? ['time'] : [])],
    ...(ids.size > 0 ? { chaos: [...ids].sort() } : {}),
  };
}

function trafficSummary(w: TrafficWiring): string {
  return w.capture.mesh ? `capture, mesh first (${w.capture.mesh.kind})` : 'capture';
}

/** The chaos ids in an annotation value; [] for a missing or foreign value (never throws: users can edit annotations). */
export function kernelChaosIds(annotation: string | undefined): ChaosId[] {
  if (annotation === undefined) return [];
  try {
    const chaos = (JSON.parse(annotation) as Partial<PlanSummary> | null)?.chaos;
    return Array.isArray(chaos) ? chaos.filter((id): id is string => typeof id === 'string') : [];
  } catch {
    return [];
  }
}
