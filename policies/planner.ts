// From policies to one fault plan per pod.
//
// Which policies count: valid ones (an invalid object in the cache is skipped,
// never fatal), not paused, not expired, not terminating (deletionTimestamp),
// in the pod's namespace, and
//   - live plan (sidecar): the pod is listed in status.targets of the current
//     generation — the reconciler alone applies the tenant's verdict and the
//     blast radius;
//   - kernel plan (admission): the caller passes only policies its tenant
//     currently admits; the selector matches the pod's labels, and the pod is
//     in status.targets or in the radius the caller decides (`inRadius`; by
//     default mode `all`).
//
// Merge rules when several policies select one pod (oldest = earliest
// creationTimestamp, ties by name; "oldest first" is the order of every list):
//   - http: every rule is kept, oldest policy first, then in spec order. Per
//     request the proxy takes the delay of the FIRST matching rule that has a
//     delay and the abort of the first matching rule that has an abort, rolls
//     each one's percent once, delays and then aborts — Istio's order for a
//     route's fault. Later rules never stack, so a percent means what it says.
//   - tcp: every toxic is kept; toxics from several policies on one port share
//     that port's Toxiproxy proxy, so names are prefixed "<policy>." to stay unique.
//   - network: one netem qdisc per pod: the oldest policy's network faults win
//     as a whole (one owner means exact attribution and expiry); the others'
//     are dropped and reported as conflicts.
//   - io: every rule is kept, oldest first (the first matching rule decides).
//   - time: a process has one clock: the oldest policy wins, others are reported
//     (kernel plan) or dropped (live plan, which the proxy writes to faketime.rc;
//     an empty containers list there means "as wired at admission").
// Every planned fault carries its policy's expiresAt = start + duration, start
// being status.startedAt, else metadata.creationTimestamp.

import { chaosIdOf as chaosEventId } from '../common/chaos-event.ts';
import { abortedNow, plannedGuard } from './abort-when.ts';
import { applyDefaults, type DefaultedGrpcFault, type DefaultedPolicySpec, type DefaultedToxic } from './defaults.ts';
import { durationMs } from './duration.ts';
import { GenerationMemo } from './generation-memo.ts';
import { parseTcRate } from './rate.ts';
import { matchesSelector } from './selection.ts';
import type { ChaosPolicy } from './types.ts';
import type { ChaosId, KernelFaultPlan, LiveFaultPlan, PlannedHttpFault, PlannedIoFault, PlannedNetworkFault, PlannedTcpFault, PlannedToxic } from '../contract/plans.ts';
import { validatePolicy } from './validate.ts';
import { grpcCodeNumber, TOXIC_ATTRIBUTE_NAMES, TOXIC_ATTRIBUTES, TOXIC_TIME_ATTRIBUTES } from './vocabulary.ts';

/** What the plans need of a pod. */
export interface PodLike {
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  spec?: { containers?: Array<{ name: string }> };
}

export function chaosIdOf(policy: ChaosPolicy): ChaosId {
  return `${policy.metadata.namespace ?? ''}/${policy.metadata.name ?? ''}`;
}

/** Epoch ms the faults end, or undefined when the policy has no start yet. */
export function policyExpiresAt(policy: ChaosPolicy): number | undefined {
  const start = Date.parse(policy.status?.startedAt ?? policy.metadata.creationTimestamp ?? '');
  const duration = durationMs(policy.spec.duration);
  return Number.isFinite(start) && Number.isFinite(duration) ? start + duration : undefined;
}

/**
 * A valid policy with its defaulted spec: what the webhook's cache keeps
 * (converted once per generation) and what both planners read.
 */
export interface PreparedPolicy {
  policy: ChaosPolicy;
  spec: DefaultedPolicySpec;
  chaosId: ChaosId;
}

/** Validates and defaults; undefined for an invalid object (skipped, never fatal). */
export function preparePolicy(policy: ChaosPolicy): PreparedPolicy | undefined {
  return validatePolicy(policy).length > 0 ? undefined : prepareValidPolicy(policy);
}

/** Defaults a policy its caller has just validated (admission inspects it once, for its messages too). */
export function prepareValidPolicy(policy: ChaosPolicy): PreparedPolicy {
  return { policy, spec: applyDefaults(policy.spec), chaosId: chaosIdOf(policy) };
}

/** Deleted but held by a finalizer: out of every plan at once, whatever its status says. */
export function isTerminating(policy: ChaosPolicy): boolean {
  return policy.metadata.deletionTimestamp !== undefined && policy.metadata.deletionTimestamp !== null;
}

interface ActivePolicy extends PreparedPolicy {
  expiresAt: number;
}

/** Unpaused, unexpired, not terminating, oldest first. */
function activePolicies(policies: readonly PreparedPolicy[], now: number): ActivePolicy[] {
  const active: ActivePolicy[] = [];
  for (const p of policies) {
    const expiresAt = policyExpiresAt(p.policy);
    // An abort holds the generation it was seen on, until a person changes the policy.
    if (p.spec.paused || abortedNow(p.policy) || isTerminating(p.policy) || expiresAt === undefined || expiresAt <= now) continue;
    active.push({ ...p, expiresAt });
  }
  const created = (p: ChaosPolicy): number => Date.parse(p.metadata.creationTimestamp ?? '') || 0;
  return active.sort((a, b) => created(a.policy) - created(b.policy) || a.chaosId.localeCompare(b.chaosId));
}

function prepareAll(policies: readonly ChaosPolicy[]): PreparedPolicy[] {
  return policies.flatMap((p) => preparePolicy(p) ?? []);
}

/**
 * status.targets is the reconciler's decision under the tenant's verdict for
 * status.observedGeneration; it is trusted only while that is the current
 * generation (a changed spec waits for its own decision).
 */
function targetsOf(policy: ChaosPolicy): readonly string[] {
  const generation = policy.metadata.generation;
  if (generation !== undefined && policy.status?.observedGeneration !== generation) return [];
  return policy.status?.targets ?? [];
}

// ------------------------------------------------------------ live plan

export function livePlanFor(podName: string, policies: readonly ChaosPolicy[], now: number): LiveFaultPlan {
  return livePlanFromPrepared(podName, prepareAll(policies), now);
}

/**
 * livePlanFor for one proxy's life: each policy validated and defaulted once
 * per generation (generation-memo.ts), so the reconciler's status writes,
 * which the proxy's watch delivers like any change, re-plan without
 * re-validating. `policies` is the namespace's whole current list each call.
 */
export function livePlanner(): (podName: string, policies: readonly ChaosPolicy[], now: number) => LiveFaultPlan {
  const memo = new GenerationMemo<PreparedPolicy | undefined>();
  return (podName, policies, now) => {
    memo.retainOnly(policies);
    const prepared = policies.flatMap((policy) => {
      const p = memo.get(policy, () => preparePolicy(policy));
      // The memo holds this generation's spec; the object (status, deletionTimestamp) is the newest.
      return p ? [{ ...p, policy }] : [];
    });
    return livePlanFromPrepared(podName, prepared, now);
  };
}

function livePlanFromPrepared(podName: string, policies: readonly PreparedPolicy[], now: number): LiveFaultPlan {
  const plan: LiveFaultPlan = { http: [], tcp: [] };
  for (const a of activePolicies(policies, now)) {
    if (!targetsOf(a.policy).includes(podName)) continue;
    (plan.policies ??= []).push({ chaosId: a.chaosId, uid: a.policy.metadata.uid ?? a.chaosId, generation: a.policy.metadata.generation ?? 0 });
    const guard = plannedGuard(a.policy, a.chaosId);
    if (guard) (plan.guards ??= []).push(guard);
    plan.http.push(...a.spec.http.map((f): PlannedHttpFault => ({
      chaosId: a.chaosId,
      expiresAt: a.expiresAt,
      name: `${a.policy.metadata.name}/${f.name}`,
      direction: f.direction,
      match: f.match,
      ...(f.delay ? { delay: { fixedMs: durationMs(f.delay.fixed), jitterMs: durationMs(f.delay.jitter), percent: f.delay.percent } } : {}),
      ...(f.abort ? { abort: { status: f.abort.status, percent: f.abort.percent, ...(f.abort.body !== undefined ? { body: f.abort.body } : {}) } } : {}),
    })));
    plan.http.push(...a.spec.grpc.map((f): PlannedHttpFault => ({
      chaosId: a.chaosId,
      expiresAt: a.expiresAt,
      name: `${a.policy.metadata.name}/${f.name}`,
      direction: f.direction,
      protocol: 'grpc',
      match: { ...(f.match.port !== undefined ? { port: f.match.port } : {}), ...(f.match.host !== undefined ? { host: f.match.host } : {}), ...(f.match.method ? { path: f.match.method } : {}), ...(f.match.headers ? { headers: f.match.headers } : {}) },
      ...(f.delay ? { delay: { fixedMs: durationMs(f.delay.fixed), jitterMs: durationMs(f.delay.jitter), percent: f.delay.percent } } : {}),
      ...(f.abort ? { abort: plannedGrpcAbort(f.abort) } : {}),
    })));
    plan.tcp.push(...a.spec.tcp.map((f): PlannedTcpFault => ({
      chaosId: a.chaosId,
      expiresAt: a.expiresAt,
      direction: f.host === undefined ? 'inbound' : 'outbound',
      port: f.port,
      ...(f.host !== undefined ? { host: f.host } : {}),
      toxics: f.toxics.map((t) => plannedToxic(t, `${a.policy.metadata.name}.`)),
    })));
    if (a.spec.time && plan.time === undefined) {
      plan.time = { chaosId: a.chaosId, expiresAt: a.expiresAt, offsetMs: durationMs(a.spec.time.offset), containers: a.spec.time.containers };
    }
  }
  return plan;
}

/** A toxic in Toxiproxy's units: durations become ms (µs for slicer's delay). */
export function plannedToxic(toxic: DefaultedToxic, namePrefix = ''): PlannedToxic {
  const attributes: Record<string, number> = {};
  const unitMs = TOXIC_ATTRIBUTES[toxic.type].timeUnitMs;
  for (const attr of TOXIC_ATTRIBUTE_NAMES) {
    const v = toxic[attr];
    if (v === undefined) continue;
    const isTime = (TOXIC_TIME_ATTRIBUTES as readonly string[]).includes(attr);
    attributes[attr] = typeof v === 'string' && isTime ? Math.round(durationMs(v) / unitMs) : Number(v);
  }
  return { name: `${namePrefix}${toxic.name}`, type: toxic.type, stream: toxic.stream, toxicity: toxic.toxicity, attributes };
}

// ------------------------------------------------------------ kernel plan

export interface KernelMerge {
  plan: KernelFaultPlan;
  /** Faults dropped by the merge rules, one sentence each. */
  conflicts: string[];
}

/** Whether the pod under admission is in the policy's radius; by default `all` policies and pods in status.targets. */
export type InRadius = (policy: PreparedPolicy) => boolean;

/**
 * The kernel plan from stored objects, prepared as the webhook's cache
 * prepares them (invalid ones skipped), then merged by the live path below:
 * for callers holding raw policies (tests, fuzzing, offline tools).
 */
export function mergeKernelPlan(pod: PodLike, policies: readonly ChaosPolicy[], now: number, inRadius?: InRadius): KernelMerge {
  return mergePreparedKernelPlan(pod, prepareAll(policies), now, inRadius);
}

/** The kernel plan from policies already prepared (the webhook's cache gives them so). */
export function mergePreparedKernelPlan(pod: PodLike, policies: readonly PreparedPolicy[], now: number, inRadius?: InRadius): KernelMerge {
  const labels = pod.metadata?.labels ?? {};
  const podName = pod.metadata?.name;
  const ns = pod.metadata?.namespace;
  const appContainers = (pod.spec?.containers ?? []).map((c) => c.name);
  const plan: KernelFaultPlan = { io: [] };
  const conflicts: string[] = [];
  let networkOwner: ChaosId | undefined;
  let timeOwner: ChaosId | undefined;
  for (const a of activePolicies(policies, now)) {
    if (ns !== undefined && a.policy.metadata.namespace !== undefined && ns !== a.policy.metadata.namespace) continue;
    if (!matchesSelector(a.spec.selector, labels)) continue;
    const listed = podName !== undefined && targetsOf(a.policy).includes(podName);
    if (!listed && !(inRadius ? inRadius(a) : a.spec.mode.type === 'all')) continue;
    const planned = { chaosId: a.chaosId, expiresAt: a.expiresAt, experiment: chaosEventId(a.policy.metadata.uid ?? a.chaosId, a.policy.metadata.generation ?? 0) };
    if (a.spec.network) {
      if (networkOwner === undefined) {
        networkOwner = a.chaosId;
        plan.network = plannedNetwork(a.spec.network, planned);
      } else {
        conflicts.push(`network faults of ${a.chaosId} are not applied: the pod's network faults come from the older policy ${networkOwner}`);
      }
    }
    plan.io.push(...a.spec.io.map((f): PlannedIoFault => ({
      ...planned,
      volumePath: f.volumePath,
      path: f.path,
      methods: f.methods,
      ...(f.errno !== undefined ? { errno: f.errno } : {}),
      delayMs: durationMs(f.delay),
      percent: f.percent,
    })));
    if (a.spec.time) {
      if (timeOwner === undefined) {
        timeOwner = a.chaosId;
        const containers = a.spec.time.containers.length > 0 ? a.spec.time.containers : appContainers;
        plan.time = { ...planned, offsetMs: durationMs(a.spec.time.offset), containers };
      } else {
        conflicts.push(`time offset of ${a.chaosId} is not applied: the pod's clock follows the older policy ${timeOwner}`);
      }
    }
  }
  return { plan, conflicts };
}

/** `mergeKernelPlan` without the conflicts. */
export function kernelPlanFor(pod: PodLike, policies: readonly ChaosPolicy[], now: number, inRadius?: InRadius): KernelFaultPlan {
  return mergeKernelPlan(pod, policies, now, inRadius).plan;
}

function plannedNetwork(net: NonNullable<DefaultedPolicySpec['network']>, planned: { chaosId: ChaosId; expiresAt: number }): PlannedNetworkFault {
  const out: PlannedNetworkFault = { ...planned, device: net.device };
  if (net.delay) out.delay = { latencyMs: durationMs(net.delay.latency), jitterMs: durationMs(net.delay.jitter), correlation: net.delay.correlation };
  if (net.loss) out.loss = net.loss;
  if (net.duplicate) out.duplicate = net.duplicate;
  if (net.corrupt) out.corrupt = net.corrupt;
  if (net.reorder) out.reorder = { percent: net.reorder.percent, correlation: net.reorder.correlation, gap: net.reorder.gap ?? 0 };
  if (net.rate !== undefined) {
    const rate = parseTcRate(net.rate);
    if ('bitsPerSec' in rate) out.rateBitsPerSec = rate.bitsPerSec;
  }
  return out;
}

/** A gRPC abort as the datapath sends it: a grpc-status in a trailers-only HTTP 200, or a bare HTTP status. */
function plannedGrpcAbort(abort: NonNullable<DefaultedGrpcFault['abort']>): NonNullable<PlannedHttpFault['abort']> {
  if (abort.code === undefined) return { status: abort.httpStatus ?? 503, percent: abort.percent };
  return { status: 200, percent: abort.percent, grpcStatus: grpcCodeNumber(abort.code), ...(abort.message !== undefined ? { body: abort.message } : {}) };
}
