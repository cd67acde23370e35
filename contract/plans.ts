// The plans the webhook renders for a pod: what crosses the webhook→pod
// boundary in FAULTLINE_PLAN (PodPlan: wiring + kernel faults), in the
// proxy's live plan (LiveFaultPlan), and in the hand-off file. codec.ts is
// their one parser.

import type { HttpMatch, IoMethod, ToxicType } from '../policies/types.ts';


/** Identifies the policy a planned fault came from: "<namespace>/<name>". */
export type ChaosId = string;

interface Planned {
  chaosId: ChaosId;
  /** Epoch milliseconds; the fault is inert from then on, whatever else happens. */
  expiresAt: number;
  /** Kernel faults: the chaos id of their events, "<policy uid>/<generation>" (the live plan names it in `policies`). */
  experiment?: string;
}

export interface PlannedHttpFault extends Planned {
  name: string;
  direction: 'inbound' | 'outbound';
  /** 'grpc': matches gRPC calls only (content-type application/grpc…), match.path being the method path. */
  protocol?: 'grpc';
  match: HttpMatch;
  delay?: { fixedMs: number; jitterMs: number; percent: number };
  /** grpcStatus set: the call ends with HTTP 200 and this grpc-status (a trailers-only response). */
  abort?: { status: number; percent: number; body?: string; grpcStatus?: number };
}

export interface PlannedToxic {
  name: string;
  type: ToxicType;
  stream: 'upstream' | 'downstream';
  toxicity: number;
  /** Toxiproxy attribute names and units. */
  attributes: Record<string, number>;
}

export interface PlannedTcpFault extends Planned {
  direction: 'inbound' | 'outbound';
  port: number;
  host?: string;
  toxics: PlannedToxic[];
}

export interface PlannedNetworkFault extends Planned {
  device: string;
  delay?: { latencyMs: number; jitterMs: number; correlation: number };
  loss?: { percent: number; correlation: number };
  duplicate?: { percent: number; correlation: number };
  corrupt?: { percent: number; correlation: number };
  reorder?: { percent: number; correlation: number; gap: number };
  rateBitsPerSec?: number;
}

export interface PlannedIoFault extends Planned {
  volumePath: string;
  path: string;
  methods: IoMethod[];
  errno?: string;
  delayMs: number;
  percent: number;
}

export interface PlannedTimeFault extends Planned {
  offsetMs: number;
  containers: string[];
}

/** A policy's steady-state guard as the proxy judges it (ms, ratios). */
export interface PlannedGuard {
  chaosId: ChaosId;
  /** The policy's uid and generation: an abort holds this generation only. */
  uid: string;
  generation: number;
  errorRate?: { ratio: number; windowMs: number; minRequests: number };
  latency?: { percentile: number; thresholdMs: number; windowMs: number; minRequests: number };
}

/** A policy whose faults reach the pod: the chaos id of its events is uid/generation (chaos-event.ts). */
export interface PlannedPolicy {
  chaosId: ChaosId;
  uid: string;
  generation: number;
}

/** Live faults the sidecar applies; recomputed whenever policies change. */
export interface LiveFaultPlan {
  /** The policies this plan's faults come from (absent in hand-written plans: events then carry the chaosId alone). */
  policies?: PlannedPolicy[];
  /** Steady-state guards of the policies in this plan. */
  guards?: PlannedGuard[];
  http: PlannedHttpFault[];
  tcp: PlannedTcpFault[];
  /** netem delay Linux cannot apply here (no sch_netem), handed to the proxy. */
  networkDelay?: PlannedNetworkFault['delay'] & Planned;
  /** Time offset the proxy writes to the pod's faketime.rc (changed or ended live). */
  time?: PlannedTimeFault;
}

/** Kernel-level faults fixed at pod start (rendered by the webhook for the init program). */
export interface KernelFaultPlan {
  network?: PlannedNetworkFault;
  io: PlannedIoFault[];
  time?: PlannedTimeFault;
}

/** An injected pod's mesh sidecar (Istio's istio-proxy, Linkerd's linkerd-proxy), whose traffic Faultline must not steal. */
export interface MeshSidecar {
  kind: 'istio' | 'linkerd';
  /** The mesh proxy's UID: its inbound hop to the app is captured (mesh first), its own outbound never is. */
  uid: number;
}

/**
 * Transparent capture (pod-setup/redirect/capture-rules.ts, sidecar/capture/):
 * every inbound TCP connection goes to one listener and every outbound one to
 * another; the proxy reads each connection's original destination and decides
 * per connection. Nothing about the app's ports is fixed at admission.
 */
export interface CaptureWiring {
  inboundPort: number;
  outboundPort: number;
  /** Every other port the proxy binds (admin, metrics, health, Toxiproxy): never captured. */
  proxyPorts: number[];
  /** Annotation-driven exclusions; inbound CIDRs are sources, outbound CIDRs destinations. */
  excludeInboundPorts: number[];
  excludeInboundCidrs: string[];
  excludeOutboundPorts: number[];
  excludeOutboundCidrs: string[];
  /** Set when the pod carries a mesh sidecar: inbound is captured after it (mesh first). */
  mesh?: MeshSidecar;
}

/** How a pod's traffic reaches the proxy, fixed at admission: always transparent capture. */
export interface TrafficWiring {
  proxyUid: number;
  capture: CaptureWiring;
  /** Toxiproxy's API port, closed to every UID but proxyUid (absent: the default). */
  toxiproxyPort?: number;
}

/** Everything the init program needs, rendered into its environment. */
export interface InitPlan {
  version: string;
  wiring: TrafficWiring;
  kernel: KernelFaultPlan;
}
