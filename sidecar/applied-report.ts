// What this pod applies of each policy, as the datapath sees it (contract/applied.ts):
// a pure function of the effective plan, capture's exclusions, Toxiproxy's state, the
// kernel faults the pod was started with and what pod setup handed over.
import type { AppliedFault, DatapathObservations, DatapathReport, NotAppliedFault, NotAppliedReason, PolicyApplyReport } from '../contract/applied.ts';
import { NOT_APPLIED_REASONS } from '../contract/applied.ts';
import type { KernelFaultPlan, LiveFaultPlan, PlannedHttpFault, PlannedTcpFault } from '../contract/plans.ts';
import { tcpFaultsFor, toxiproxyName, type Target } from './targets.ts';

export interface ReportInput {
  pod: string;
  /** The effective plan (aborted policies already left out). */
  plan: LiveFaultPlan;
  /** Whether Toxiproxy serves the named proxy now; 'disabled' when the proxy runs without it. */
  toxiproxy: (proxyName: string) => boolean | 'disabled';
  /** The kernel faults in the pod's plan (FAULTLINE_PLAN), fixed at its start. */
  kernel?: KernelFaultPlan;
  /** Facts from real traffic (the capture path), when a source is wired. */
  observations?: DatapathObservations;
  /**
   * Transparent capture: every port is captured except the annotation-excluded
   * ones; TCP faults are served by the Toxiproxy proxies of `tcpTargets`.
   */
  capture: {
    excludes(direction: 'inbound' | 'outbound', port: number | undefined): boolean;
    tcpTargets: readonly Target[];
  };
}

/** The kinds one planned HTTP/gRPC fault injects: "http.delay", "grpc.abort", … */
export function httpKinds(f: PlannedHttpFault): string[] {
  const family = f.protocol ?? 'http';
  return [...(f.delay ? [`${family}.delay`] : []), ...(f.abort ? [`${family}.abort`] : [])];
}

export function httpTarget(f: PlannedHttpFault): string {
  return f.direction === 'inbound' ? `inbound :${f.match.port ?? '*'}` : `outbound ${f.match.host ?? '*'}:${f.match.port ?? '*'}`;
}

export function tcpTarget(f: PlannedTcpFault): string {
  return f.direction === 'inbound' ? `inbound :${f.port}` : `outbound ${f.host ?? '*'}:${f.port}`;
}

const notApplied = (kind: string, target: string, reason: NotAppliedReason, detail?: string): NotAppliedFault => ({
  kind, target, reason, message: detail ?? NOT_APPLIED_REASONS[reason],
});

class PolicyFaults {
  readonly applied: AppliedFault[] = [];
  readonly notApplied: NotAppliedFault[] = [];
}

export function datapathReport(input: ReportInput): DatapathReport {
  const { plan, capture } = input;
  const byPolicy = new Map<string, PolicyFaults>();
  const of = (chaosId: string): PolicyFaults => {
    let p = byPolicy.get(chaosId);
    if (!p) byPolicy.set(chaosId, (p = new PolicyFaults()));
    return p;
  };
  const onPlan = { ...plan, http: [], tcp: [] } satisfies LiveFaultPlan;

  const excluded = (direction: 'inbound' | 'outbound', port: number | undefined): string =>
    `${NOT_APPLIED_REASONS.PortNotServed} (port ${port} is excluded from capture by the pod's faultline.dev/exclude-${direction}-ports annotation)`;
  for (const f of plan.http) {
    const notServed = capture.excludes(f.direction, f.match.port) ? excluded(f.direction, f.match.port) : undefined;
    const seen = input.observations?.notApplicable(f);
    for (const kind of httpKinds(f)) {
      const target = httpTarget(f);
      if (notServed) of(f.chaosId).notApplied.push(notApplied(kind, target, 'PortNotServed', notServed));
      else if (seen) of(f.chaosId).notApplied.push(notApplied(kind, target, seen.reason, seen.message));
      else of(f.chaosId).applied.push({ kind, target });
    }
  }

  for (const f of plan.tcp) {
    const isExcluded = capture.excludes(f.direction, f.port);
    const t = isExcluded ? undefined : capture.tcpTargets.find((x) => tcpFaultsFor({ ...onPlan, tcp: [f] }, x).length > 0);
    const state = t ? input.toxiproxy(toxiproxyName(t)) : false;
    for (const toxic of f.toxics) {
      const kind = `tcp.${toxic.type}`;
      const target = tcpTarget(f);
      if (isExcluded) of(f.chaosId).notApplied.push(notApplied(kind, target, 'PortNotServed', excluded(f.direction, f.port)));
      else if (!t) of(f.chaosId).notApplied.push(notApplied(kind, target, 'PortNotServed', `${NOT_APPLIED_REASONS.PortNotServed} (a CIDR names no single upstream for Toxiproxy to dial)`));
      else if (state === 'disabled') of(f.chaosId).notApplied.push(notApplied(kind, target, 'ToxiproxyDisabled'));
      else if (!state) of(f.chaosId).notApplied.push(notApplied(kind, target, 'ToxiproxyDown'));
      else of(f.chaosId).applied.push({ kind, target });
    }
  }

  // netem is missing on this node: pod setup handed the delay to the proxy, which holds inbound traffic.
  if (plan.networkDelay) of(plan.networkDelay.chaosId).applied.push({ kind: 'network.delay', target: 'inbound *', via: 'proxy (no sch_netem on the node)' });
  if (plan.time) of(plan.time.chaosId).applied.push({ kind: 'time.offset', target: plan.time.containers.join(',') || '*' });

  const kernel = input.kernel;
  const net = kernel?.network;
  if (net) {
    // A delay handed to the proxy means pod setup found no sch_netem: loss fell back to nft and rate to
    // tbf, while duplicate, corrupt and reorder have no stand-in (pod-setup/network/netem-fallback.ts).
    const netemMissing = net.delay !== undefined && plan.networkDelay?.chaosId === net.chaosId;
    const target = net.device;
    if (net.delay && !netemMissing) of(net.chaosId).applied.push({ kind: 'network.delay', target, via: 'netem' });
    if (net.loss) of(net.chaosId).applied.push({ kind: 'network.loss', target, via: netemMissing ? 'nft (no sch_netem on the node)' : 'netem' });
    for (const k of ['duplicate', 'corrupt', 'reorder'] as const) {
      if (net[k] === undefined) continue;
      if (netemMissing) of(net.chaosId).notApplied.push(notApplied(`network.${k}`, target, 'NetemMissing'));
      else of(net.chaosId).applied.push({ kind: `network.${k}`, target, via: 'netem' });
    }
    if (net.rateBitsPerSec !== undefined) of(net.chaosId).applied.push({ kind: 'network.rate', target, via: 'tc' });
  }
  for (const io of kernel?.io ?? []) {
    const target = `${io.volumePath} ${io.path}`;
    if (io.errno !== undefined) of(io.chaosId).applied.push({ kind: 'io.error', target, via: 'faultline-kernel' });
    if (io.delayMs > 0) of(io.chaosId).applied.push({ kind: 'io.delay', target, via: 'faultline-kernel' });
  }
  if (kernel?.time && !plan.time) of(kernel.time.chaosId).applied.push({ kind: 'time.offset', target: kernel.time.containers.join(',') || '*', via: 'pod setup (libfaketime)' });

  // One entry per policy of the plan, even with nothing to show: "targeted, nothing applies here" is the news.
  // Kernel faults and the hand-off outlive their policy in the pod's plan; only running policies are reported.
  const ids = new Map((plan.policies ?? []).map((p) => [p.chaosId, p]));
  if (plan.policies === undefined) for (const id of byPolicy.keys()) ids.set(id, { chaosId: id, uid: '', generation: 0 });
  const policies: PolicyApplyReport[] = [...ids.values()].map((p) => {
    const faults = byPolicy.get(p.chaosId) ?? new PolicyFaults();
    return { policy: p.chaosId, uid: p.uid, generation: p.generation, applied: faults.applied, notApplied: faults.notApplied };
  });
  return { pod: input.pod, policies };
}
