// The Faultline API (chaos.faultline.dev/v1alpha1) and the per-pod plan derived
// from it. Durations in the API are Go-style strings ("200ms", "1m30s") as in
// every Kubernetes API; plans carry plain milliseconds so the datapath never parses.
//
// Vocabulary follows what users already know: Istio's HTTP fault fields,
// Toxiproxy's toxic names and attributes, Chaos Mesh's / netem's network fields.

/** Go-style duration string, e.g. "250ms", "1h30m". */
export type Duration = string;

// ---------------------------------------------------------------- selectors

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
  generation?: number;
  resourceVersion?: string;
  deletionTimestamp?: string;
  finalizers?: string[];
}

// ---------------------------------------------------------------- ChaosPolicy

/** Blast radius among the pods the selector matches. */
export type ModeType = 'one' | 'all' | 'fixed' | 'fixed-percent';
export interface Mode {
  type: ModeType;
  /** Pod count for `fixed`, percent (0,100] for `fixed-percent`. */
  value?: number;
}

export interface StringMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
}

export interface HttpMatch {
  /** Inbound: the app's container port. Outbound: the upstream's port. */
  port?: number;
  /** Outbound only: upstream host as the app addresses it. */
  host?: string;
  path?: StringMatch;
  methods?: string[];
  /** Header name → exact value. */
  headers?: Record<string, string>;
}

export interface HttpDelay {
  fixed: Duration;
  jitter?: Duration;
  /** Share of matching requests, (0,100]; default 100. */
  percent?: number;
}

export interface HttpAbort {
  /** HTTP status 200–599. */
  status: number;
  percent?: number;
  body?: string;
}

export interface HttpFault {
  name?: string;
  direction?: 'inbound' | 'outbound';
  match?: HttpMatch;
  delay?: HttpDelay;
  abort?: HttpAbort;
}

/** gRPC status codes by name, as grpc-status carries them (1–16; 0 OK is no abort). */
export type GrpcCode =
  | 'CANCELLED' | 'UNKNOWN' | 'INVALID_ARGUMENT' | 'DEADLINE_EXCEEDED' | 'NOT_FOUND' | 'ALREADY_EXISTS'
  | 'PERMISSION_DENIED' | 'RESOURCE_EXHAUSTED' | 'FAILED_PRECONDITION' | 'ABORTED' | 'OUT_OF_RANGE'
  | 'UNIMPLEMENTED' | 'INTERNAL' | 'UNAVAILABLE' | 'DATA_LOSS' | 'UNAUTHENTICATED';

export interface GrpcMatch {
  /** Inbound: the app's container port. Outbound: the upstream's port. */
  port?: number;
  /** Outbound only: upstream host as the app addresses it. */
  host?: string;
  /** The call's method path, "/pkg.Service/Method" (a prefix "/pkg.Service/" matches a whole service). */
  method?: StringMatch;
  /** Metadata (request header) name → exact value. */
  headers?: Record<string, string>;
}

export interface GrpcAbort {
  /** End the call with this grpc-status (Istio's grpcStatus) … */
  code?: GrpcCode;
  /** … or answer with this HTTP status instead (the client maps it, e.g. 503 → UNAVAILABLE). */
  httpStatus?: number;
  /** grpc-message sent with `code`. */
  message?: string;
  percent?: number;
}

/** A per-call gRPC fault: gRPC runs over HTTP/2, so these apply on the proxy's HTTP/2 path. */
export interface GrpcFault {
  name?: string;
  direction?: 'inbound' | 'outbound';
  match?: GrpcMatch;
  delay?: HttpDelay;
  abort?: GrpcAbort;
}

/** Toxiproxy's toxic types, spelled as Toxiproxy spells them. */
export type ToxicType =
  | 'latency'
  | 'bandwidth'
  | 'slow_close'
  | 'timeout'
  | 'reset_peer'
  | 'slicer'
  | 'limit_data';

/**
 * A toxic as Toxiproxy defines it. Attribute names are Toxiproxy's; values are
 * Toxiproxy's units (latency/jitter/delay/timeout in ms, rate in KB/s, sizes in
 * bytes, slicer delay in µs). Time attributes also accept a Go duration string.
 */
export interface Toxic {
  type: ToxicType;
  name?: string;
  stream?: 'upstream' | 'downstream';
  /** Probability the toxic applies to a connection, [0,1]; default 1. */
  toxicity?: number;
  latency?: number | Duration;
  jitter?: number | Duration;
  rate?: number;
  delay?: number | Duration;
  timeout?: number | Duration;
  average_size?: number;
  size_variation?: number;
  bytes?: number;
}

export interface TcpFault {
  /** Inbound: the app's port. Outbound: the upstream's port (with host). */
  port: number;
  /** Set for outbound faults: the upstream as the app addresses it. */
  host?: string;
  toxics: Toxic[];
}

export interface NetworkFault {
  delay?: { latency: Duration; jitter?: Duration; correlation?: number };
  loss?: { percent: number; correlation?: number };
  duplicate?: { percent: number; correlation?: number };
  corrupt?: { percent: number; correlation?: number };
  reorder?: { percent: number; correlation?: number; gap?: number };
  /** tc rate, e.g. "1mbit", "500kbit". */
  rate?: string;
  /** Interface inside the pod; default eth0. */
  device?: string;
}

export type IoMethod = 'read' | 'write' | 'open' | 'getattr' | 'readdir' | 'create' | 'unlink' | 'mkdir' | 'rename' | 'truncate' | 'fsync';

export interface IoFault {
  /** Mount path of the volume in the app container. */
  volumePath: string;
  /** Glob of affected paths (under volumePath); default all. */
  path?: string;
  methods?: IoMethod[];
  /** errno name (EIO, ENOSPC, EACCES, …); absent = delay only. */
  errno?: string;
  delay?: Duration;
  percent?: number;
}

export interface TimeFault {
  /** Signed Go duration, e.g. "-2h", "+30m". */
  offset: Duration;
  /** Container names; default every app container. */
  containers?: string[];
}

/**
 * The steady-state guard (policies/abort-when.ts): conditions on the traffic
 * each targeted pod's proxy sees; a breach ends the policy's faults on every
 * pod until a person resumes it (a new generation).
 */
export interface AbortWhen {
  /** Error responses (HTTP 5xx, gRPC non-OK) as a percent of all responses over the window. */
  errorRate?: { percent: number; window: Duration; minRequests?: number };
  /** The pNN response time over the window. */
  latency?: { percentile: number; threshold: Duration; window: Duration; minRequests?: number };
  /**
   * A PromQL instant query the reconciler evaluates every `interval` (default 30s)
   * against a Prometheus the tenant allows (allow.prometheusUrls): any sample above
   * `above` aborts the policy.
   */
  prometheus?: PrometheusCondition;
}

export interface PrometheusCondition {
  /** Prometheus' base URL, e.g. http://prometheus.monitoring:9090 (the query goes to <url>/api/v1/query). */
  url: string;
  query: string;
  above: number;
  interval?: Duration;
}

export interface ChaosPolicySpec {
  /** Steady-state guard; a tenant may require one (allow.requireAbortWhen). */
  abortWhen?: AbortWhen;
  selector?: LabelSelector;
  mode?: Mode;
  duration: Duration;
  paused?: boolean;
  http?: HttpFault[];
  grpc?: GrpcFault[];
  tcp?: TcpFault[];
  network?: NetworkFault;
  io?: IoFault[];
  time?: TimeFault;
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  observedGeneration?: number;
}

/** Why a policy was aborted: the breach a sidecar saw (status.abort, condition Aborted). */
export interface PolicyAbort {
  /** metadata.generation aborted; a newer generation (a person's edit) runs again. */
  generation: number;
  condition: 'errorRate' | 'latency' | 'prometheus';
  /** Percent (errorRate), milliseconds (latency) or the query's value (prometheus). */
  observed: number;
  threshold: number;
  requests: number;
  window: Duration;
  /** The pod whose proxy saw the breach. */
  pod: string;
  at: string;
}

/** One targeted pod as its datapath reports the policy (contract/applied.ts), cut for status. */
export interface PodApplyStatus {
  pod: string;
  /** Applied: every fault; Partial: some; NotApplied: none; Pending: not reported for this generation yet; Unreachable: no report could be read. */
  state: 'Applied' | 'Partial' | 'NotApplied' | 'Pending' | 'Unreachable';
  applied?: string[];
  notApplied?: Array<{ fault: string; reason: string; message: string }>;
  message?: string;
}

export interface ChaosPolicyStatus {
  conditions?: Condition[];
  /** Targeted pods whose datapath confirms at least one of the policy's faults (the APPLIED column). */
  appliedPods?: number;
  /** Per-pod detail, problems first, at most 20 pods. */
  podReports?: PodApplyStatus[];
  /** Targeted pods left out of podReports. */
  podReportsOmitted?: number;
  abort?: PolicyAbort;
  tenant?: string;
  /** Names of the pods the blast radius picked (the sidecars read this). */
  targets?: string[];
  targetedPods?: number;
  startedAt?: string;
  expiresAt?: string;
  /** Short summary for printer columns, e.g. "http.delay,tcp.latency". */
  faults?: string;
  observedGeneration?: number;
}

export interface ChaosPolicy {
  apiVersion: string;
  kind: 'ChaosPolicy';
  metadata: ObjectMeta;
  spec: ChaosPolicySpec;
  status?: ChaosPolicyStatus;
}

// ---------------------------------------------------------------- ChaosTenant

/**
 * Fault kinds as the allowlist names them: `<family>.<fault>`.
 * http.delay, http.abort, tcp.<toxic type>, network.{delay,loss,duplicate,
 * corrupt,reorder,rate}, io.{error,delay}, time.offset.
 */
export type FaultKind = string;

export interface TenantSubject {
  kind: 'User' | 'Group' | 'ServiceAccount';
  name: string;
  /** ServiceAccount only. */
  namespace?: string;
}

export interface TenantLimits {
  maxDelay?: Duration;
  maxLossPercent?: number;
  /** Allowed abort status codes; absent = any valid code. */
  abortCodes?: number[];
  /** Allowed gRPC abort codes; absent = any. */
  grpcAbortCodes?: GrpcCode[];
  /** Highest `percent` any fault may use. */
  maxPercent?: number;
  maxDuration?: Duration;
  /** Highest share of a namespace's selected pods a policy may target. */
  maxPodPercent?: number;
  maxTimeOffset?: Duration;
  /** Lowest bandwidth (KB/s for tcp.bandwidth) a policy may throttle to. */
  minBandwidthKBps?: number;
  /** Longest abortWhen window a policy may use (a long window reacts late). */
  maxAbortWindow?: Duration;
}

export interface ChaosTenantSpec {
  /** Namespaces owned by the tenant, by name … */
  namespaces?: string[];
  /** … or by label selector (either or both). */
  namespaceSelector?: LabelSelector;
  /** Who may author policies; empty = anyone RBAC lets through. */
  subjects?: TenantSubject[];
  /** The tenant's brake: every policy of its namespaces is held off while true (policies/switches.ts). */
  paused?: boolean;
  allow: {
    kinds: FaultKind[];
    /** Families that need a privileged container: network, io, time. */
    privileged?: boolean;
    /** Every policy must carry a steady-state guard (spec.abortWhen). */
    requireAbortWhen?: boolean;
    /** Prometheus base URLs a policy's abortWhen.prometheus may query (the reconciler calls them); absent: none. */
    prometheusUrls?: string[];
    limits?: TenantLimits;
  };
}

export interface ChaosTenant {
  apiVersion: string;
  kind: 'ChaosTenant';
  metadata: ObjectMeta;
  spec: ChaosTenantSpec;
}
