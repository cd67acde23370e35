// OpenAPI v3 structural schemas of ChaosPolicy and ChaosTenant: the CRDs in
// manifests/crds are generated from these, and validation walks the same tree,
// so what the apiserver stores and what the webhook checks cannot drift.
// Semantic rules (duration syntax, cross-field rules) live in validate.ts.

import { NOT_APPLIED_REASON_NAMES } from '../contract/applied.ts';
import {
  array, boolean, correlation, duration, integer, intOrDuration, map, number, object, oneOf, percent, port, string, type JSONSchemaProps,
} from './schema-builders.ts';
import {
  DIRECTIONS, ERRNO_NAMES, GRPC_CODES, IO_METHODS, MODE_TYPES, SELECTOR_OPERATORS, STREAMS, SUBJECT_KINDS, TOXIC_TYPES,
} from './vocabulary.ts';

export function labelSelectorSchema(description: string): JSONSchemaProps {
  return object(description, {
    matchLabels: map('Labels a target must carry, each with exactly this value (ANDed with matchExpressions).', string('Label value.', { maxLength: 63 }), 32),
    matchExpressions: array('Label requirements, all of which must hold.', object('A label requirement.', {
      key: string('The label key.', { minLength: 1 }),
      operator: oneOf('In, NotIn, Exists or DoesNotExist. NotIn and DoesNotExist also match objects without the key.', SELECTOR_OPERATORS),
      values: array('Values for In and NotIn (non-empty); must be empty for Exists and DoesNotExist.', string('A label value.', { maxLength: 63 }), 64),
    }, ['key', 'operator']), 16),
  });
}

// ------------------------------------------------------------ ChaosPolicy

/** podReports' texts at most: the reconciler clips to it (webhook/reconciler/applied-status.ts), since one longer would fail the whole status update. */
export const POD_REPORT_TEXT_MAX = 512;

/** Shared with the pod contract: a planned HTTP fault carries the policy's match as written. */
export const httpMatchSchema: JSONSchemaProps = object('Which requests the fault applies to; every field set must match. Empty matches all.', {
  port: port('Inbound: the app\'s container port. Outbound: the upstream\'s port (required for outbound).'),
  host: string('Outbound only (required there): the upstream host as the app addresses it.'),
  path: object('Request path match; set exactly one of exact, prefix, regex.', {
    exact: string('The path equals this.'),
    prefix: string('The path starts with this.'),
    regex: string('The path matches this regular expression (anchored to the whole path).'),
  }),
  methods: array('HTTP methods, e.g. GET, POST; empty matches all.', string('An HTTP method.', { maxLength: 32 }), 16),
  headers: map('Request headers that must equal the given values (names are case-insensitive).', string('Exact header value.'), 16),
});

const httpFault = object('An HTTP fault applied per request by the faultline-proxy sidecar (Istio\'s fault vocabulary).', {
  name: string('Name of the rule, unique within the policy; default "http-<index>".'),
  direction: oneOf('inbound: requests the pod serves; outbound: requests the pod sends to match.host. Default inbound.', DIRECTIONS),
  match: httpMatchSchema,
  delay: object('Delay matching requests before forwarding them.', {
    fixed: duration('Delay added to every delayed request.'),
    jitter: duration('Extra random delay, uniform in [0, jitter]; default 0.'),
    percent: percent('Share of matching requests delayed.'),
  }, ['fixed']),
  abort: object('Answer matching requests with an error instead of forwarding them.', {
    status: integer('HTTP status to answer with, 200–599.', { minimum: 200, maximum: 599 }),
    percent: percent('Share of matching requests aborted.'),
    body: string('Response body; default a short text naming the policy.', { maxLength: 4096 }),
  }, ['status']),
});

const grpcFault = object('A gRPC fault applied per call by the faultline-proxy sidecar on its HTTP/2 path (Istio\'s grpcStatus).', {
  name: string('Name of the rule, unique within the policy; default "grpc-<index>".'),
  direction: oneOf('inbound: calls the pod serves; outbound: calls the pod makes to match.host. Default inbound.', DIRECTIONS),
  match: object('Which calls the fault applies to; every field set must match. Empty matches every gRPC call.', {
    port: port('Inbound: the app\'s container port. Outbound: the upstream\'s port (required for outbound).'),
    host: string('Outbound only (required there): the upstream host as the app addresses it.'),
    method: object('Method path match, e.g. exact "/shop.Cart/AddItem" or prefix "/shop.Cart/"; set exactly one of exact, prefix, regex.', {
      exact: string('The method path equals this ("/pkg.Service/Method").'),
      prefix: string('The method path starts with this, e.g. "/pkg.Service/" for a whole service.'),
      regex: string('The method path matches this regular expression (anchored to the whole path).'),
    }),
    headers: map('Request metadata that must equal the given values (names are case-insensitive).', string('Exact metadata value.'), 16),
  }),
  delay: object('Delay matching calls before forwarding them.', {
    fixed: duration('Delay added to every delayed call.'),
    jitter: duration('Extra random delay, uniform in [0, jitter]; default 0.'),
    percent: percent('Share of matching calls delayed.'),
  }, ['fixed']),
  abort: object('End matching calls with an error instead of forwarding them; set exactly one of code, httpStatus.', {
    code: oneOf('gRPC status to end the call with, e.g. UNAVAILABLE.', GRPC_CODES),
    httpStatus: integer('HTTP status to answer with instead, 200–599 (the client maps it to a gRPC status).', { minimum: 200, maximum: 599 }),
    message: string('grpc-message sent with code; default a short text naming the policy.', { maxLength: 4096 }),
    percent: percent('Share of matching calls aborted.'),
  }),
});

const toxic = object('A Toxiproxy toxic: type and attributes exactly as Toxiproxy names them.', {
  type: oneOf('Toxiproxy toxic type.', TOXIC_TYPES),
  name: string('Toxic name, unique within this port; default "<type>_<stream>".'),
  stream: oneOf('downstream: data towards the client; upstream: data towards the server. Default downstream.', STREAMS),
  toxicity: number('Probability the toxic applies to a connection, [0,1]; default 1.', { minimum: 0, maximum: 1 }),
  latency: intOrDuration('latency: delay added to data, in ms or as a Go duration.'),
  jitter: intOrDuration('latency: random extra delay, ±jitter, in ms or as a Go duration.'),
  rate: integer('bandwidth: rate limit in KB/s.', { minimum: 0 }),
  delay: intOrDuration('slow_close: delay before closing, in ms; slicer: delay between slices, in µs. Or a Go duration.'),
  timeout: intOrDuration('timeout: close the connection after this long without data (0 = never), in ms; reset_peer: reset after this long, in ms. Or a Go duration.'),
  average_size: integer('slicer: average slice size in bytes.', { minimum: 1 }),
  size_variation: integer('slicer: variation of the slice size in bytes.', { minimum: 0 }),
  bytes: integer('limit_data: close the connection after this many bytes.', { minimum: 0 }),
}, ['type']);

const tcpFault = object('TCP faults applied per connection by Toxiproxy in the faultline-proxy sidecar.', {
  port: port('Inbound: the app\'s port. Outbound: the upstream\'s port (with host).'),
  host: string('Set for outbound faults: the upstream host as the app addresses it.'),
  toxics: array('Toxics applied in order.', toxic, 16, { minItems: 1 }),
}, ['port', 'toxics']);

const netemProbability = (what: string, extra: Record<string, JSONSchemaProps> = {}): JSONSchemaProps => object(`${what} (netem).`, {
  percent: percent('Share of packets affected.'),
  correlation: correlation(),
  ...extra,
}, ['percent']);

const networkFault = object('Kernel network faults (tc netem) applied at pod start by the privileged init container; changing them needs a pod restart.', {
  delay: object('Delay every outgoing packet.', {
    latency: duration('Added latency.'),
    jitter: duration('Random variation of the latency; default 0.'),
    correlation: correlation(),
  }, ['latency']),
  loss: netemProbability('Drop packets'),
  duplicate: netemProbability('Duplicate packets'),
  corrupt: netemProbability('Corrupt packets'),
  reorder: netemProbability('Reorder packets (needs delay)', {
    gap: integer('Reorder every gap-th packet.', { minimum: 1 }),
  }),
  rate: string('Egress rate limit in tc syntax: "500kbit", "1mbit" (bits/s), "10mbps" (BYTES/s).'),
  device: string('Interface inside the pod; default eth0.'),
});

const ioFault = object('A filesystem fault on a volume, served through FUSE by the privileged faultline-kernel sidecar.', {
  volumePath: string('Mount path of the volume in the app container, e.g. /data.', { minLength: 1 }),
  path: string('Glob of affected paths, e.g. "/data/**/*.db"; default every path under volumePath.'),
  methods: array('Filesystem operations affected; default all.', oneOf('A filesystem operation.', IO_METHODS), IO_METHODS.length),
  errno: oneOf('Error the operation fails with; absent means delay only.', ERRNO_NAMES),
  delay: duration('Delay added to affected operations.'),
  percent: percent('Share of matching operations affected.'),
}, ['volumePath']);

const timeFault = object('Shift the clock the app\'s containers see (libfaketime), fixed at pod start.', {
  offset: string('Signed Go duration added to the clock, e.g. "-2h", "+30m".'),
  containers: array('Container names; default every app container.', string('A container name.', { maxLength: 63 }), 64),
});

const minRequests = integer('Fewer responses than this in the window are never judged (one bad request must not abort); default 10.', { minimum: 1 });
const abortWhen = object('Steady-state guard: judged by each targeted pod\'s proxy on the traffic it sees; a breach ends the policy\'s faults on every pod within 1 s and marks it Aborted until a person changes it.', {
  errorRate: object('Abort when error responses (HTTP 5xx, gRPC non-OK) exceed a share of all responses.', {
    percent: number('Error percent that trips the guard, in (0,100].', { minimum: 0, exclusiveMinimum: true, maximum: 100 }),
    window: duration('Sliding window the ratio is taken over.'),
    minRequests,
  }, ['percent', 'window']),
  latency: object('Abort when a latency percentile exceeds a threshold.', {
    percentile: number('Percentile, in (0,100), e.g. 99.', { minimum: 0, exclusiveMinimum: true, maximum: 100 }),
    threshold: duration('Response time that trips the guard.'),
    window: duration('Sliding window the percentile is taken over.'),
    minRequests,
  }, ['percentile', 'threshold', 'window']),
  prometheus: object('Abort when a PromQL instant query, evaluated by the reconciler, returns a sample above a threshold.', {
    url: string('Prometheus base URL (http or https), one the tenant allows (allow.prometheusUrls).', { maxLength: 2048 }),
    query: string('PromQL instant query.', { minLength: 1, maxLength: 4096 }),
    above: number('Any sample above this value trips the guard.'),
    interval: duration('How often the query runs, 5s to 10m; default 30s.'),
  }, ['url', 'query', 'above']),
});

export const chaosPolicySpecSchema: JSONSchemaProps = object('What to break, where, and for how long.', {
  abortWhen,
  selector: labelSelectorSchema('Pods in the policy\'s namespace to target; empty selects every pod.'),
  mode: object('Blast radius among the selected pods; default all.', {
    type: oneOf('one, all, fixed (value pods) or fixed-percent (value percent of the pods, at least one).', MODE_TYPES),
    value: number('Pod count for fixed; percent in (0,100] for fixed-percent.'),
  }, ['type']),
  duration: duration('How long the faults last from the policy\'s start; they end by themselves.'),
  paused: boolean('Suspend the live faults without deleting the policy.'),
  http: array('HTTP faults, per request, applied live by the sidecar.', httpFault, 32),
  grpc: array('gRPC faults, per call, applied live by the sidecar.', grpcFault, 32),
  tcp: array('TCP faults, per connection, applied live by the sidecar through Toxiproxy.', tcpFault, 32),
  network: networkFault,
  io: array('Filesystem faults, fixed at pod start.', ioFault, 16),
  time: timeFault,
}, ['duration']);

const conditionSchema = object('A condition (metav1.Condition).', {
  type: string('Condition type, e.g. Admitted, Active, Expired.'),
  status: oneOf('True, False or Unknown.', ['True', 'False', 'Unknown']),
  reason: string('Machine-readable CamelCase reason.'),
  message: string('Human-readable detail.', { maxLength: 32768 }),
  lastTransitionTime: string('When the status last changed.', { format: 'date-time' }),
  observedGeneration: integer('metadata.generation the condition was computed from.', { minimum: 0 }),
}, ['type', 'status']);

export const chaosPolicyStatusSchema: JSONSchemaProps = object('Observed state, written by the Faultline controller.', {
  abort: object('The steady-state breach that aborted the policy (condition Aborted).', {
    generation: integer('metadata.generation aborted; a newer generation runs again.', { minimum: 0 }),
    condition: oneOf('Which abortWhen condition tripped.', ['errorRate', 'latency', 'prometheus']),
    observed: number('Observed value: percent (errorRate) or milliseconds (latency).'),
    threshold: number('The threshold it crossed, in the same unit.'),
    requests: integer('Responses in the window.', { minimum: 0 }),
    window: string('The window, as the policy gives it.'),
    pod: string('The pod whose proxy saw the breach.'),
    at: string('When the breach was seen.', { format: 'date-time' }),
  }),
  conditions: { ...array('Current conditions.', conditionSchema, 16), 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] },
  tenant: string('The ChaosTenant that admitted the policy.'),
  targets: array('Names of the pods the blast radius picked; sidecars apply live faults only while listed here.', string('A pod name.', { maxLength: 253 }), 10000),
  targetedPods: integer('Number of targeted pods.', { minimum: 0 }),
  appliedPods: integer('Targeted pods whose proxy confirms at least one of the policy\'s faults applied.', { minimum: 0 }),
  podReports: array('What each targeted pod\'s datapath applies, problem pods first; at most 20 pods.', object('One pod, as its proxy reports the policy.', {
    pod: string('The pod.', { maxLength: 253 }),
    state: oneOf('Applied (every fault), Partial, NotApplied, Pending (no report for this generation yet) or Unreachable.', ['Applied', 'Partial', 'NotApplied', 'Pending', 'Unreachable']),
    applied: array('Faults applied: kind and target.', string('A fault.', { maxLength: POD_REPORT_TEXT_MAX }), 8),
    notApplied: array('Faults that cannot apply on this pod, and why.', object('A fault not applied.', {
      fault: string('Kind and target.', { maxLength: POD_REPORT_TEXT_MAX }),
      reason: oneOf('Why, from a closed vocabulary.', NOT_APPLIED_REASON_NAMES),
      message: string('The explanation.', { maxLength: POD_REPORT_TEXT_MAX }),
    }, ['fault', 'reason']), 8),
    message: string('Detail (why there is no report, …).', { maxLength: POD_REPORT_TEXT_MAX }),
  }, ['pod', 'state']), 20),
  podReportsOmitted: integer('Targeted pods left out of podReports.', { minimum: 0 }),
  startedAt: string('When the faults started.', { format: 'date-time' }),
  expiresAt: string('When the faults end: start + duration.', { format: 'date-time' }),
  faults: string('Summary of the fault kinds, e.g. "http.delay,tcp.latency".', { maxLength: 4096 }),
  observedGeneration: integer('metadata.generation this status describes.', { minimum: 0 }),
});

// ------------------------------------------------------------ ChaosTenant

export const chaosTenantSpecSchema: JSONSchemaProps = object('Which namespaces belong to the tenant, who may author policies there, and which faults they may run.', {
  namespaces: array('Namespaces owned by the tenant, by name.', string('A namespace name.', { minLength: 1, maxLength: 63 }), 1000),
  namespaceSelector: labelSelectorSchema('Namespaces owned by the tenant, by label (either or both with namespaces).'),
  subjects: array('Who may author policies; empty means anyone RBAC lets through.', object('A user, group or service account.', {
    kind: oneOf('User, Group or ServiceAccount.', SUBJECT_KINDS),
    name: string('User, group or service account name.', { minLength: 1 }),
    namespace: string('ServiceAccount only: its namespace; default the namespace of the policy being authored.'),
  }, ['kind', 'name']), 256),
  paused: boolean('The tenant\'s brake: while true every live and kernel fault of its namespaces is off and new or changed policies are denied; set false to resume.'),
  allow: object('The allowlist.', {
    kinds: array('Fault kinds allowed: http.delay, http.abort, grpc.delay, grpc.abort, tcp.<toxic type>, network.{delay,loss,duplicate,corrupt,reorder,rate}, io.error, io.delay, time.offset.', string('A fault kind.', { maxLength: 64 }), 64),
    privileged: boolean('Allow the families that need a privileged container (network, io, time); default false.'),
    requireAbortWhen: boolean('Every policy must carry a steady-state guard (spec.abortWhen); default false.'),
    prometheusUrls: array('Prometheus base URLs a policy\'s abortWhen.prometheus may query (the reconciler calls them, so only admins choose them); absent allows none.', string('A base URL, e.g. http://prometheus.monitoring:9090.', { maxLength: 2048 }), 16),
    limits: object('Ceilings every policy must stay within.', {
      maxDelay: string('Longest delay (HTTP and gRPC fixed+jitter, TCP latency+jitter summed over the toxics chained on one upstream by every policy that can reach a pod, slow_close and slicer delays, a timeout toxic\'s stall, network latency+jitter, IO delay), a Go duration.'),
      maxLossPercent: number('Highest network.loss percent.', { minimum: 0, maximum: 100 }),
      abortCodes: array('HTTP statuses an abort may use (http abort.status, grpc abort.httpStatus); absent allows any.', integer('An HTTP status.', { minimum: 200, maximum: 599 }), 400),
      grpcAbortCodes: array('gRPC statuses a grpc abort.code may use; absent allows any.', oneOf('A gRPC status name.', GRPC_CODES), 16),
      maxPercent: number('Highest share any fault may apply to (every percent field; TCP toxicity × 100).', { minimum: 0, maximum: 100 }),
      maxDuration: string('Longest policy duration, a Go duration.'),
      maxPodPercent: number('Highest share of the selected pods a policy may target.', { minimum: 0, maximum: 100 }),
      maxTimeOffset: string('Largest clock offset either way, a Go duration.'),
      minBandwidthKBps: number('Lowest bandwidth a policy may throttle to, in KB/s (tcp bandwidth, network rate).', { minimum: 0 }),
      maxAbortWindow: string('Longest spec.abortWhen window, a Go duration.'),
    }),
  }, ['kinds']),
}, ['allow']);

/** The whole object's schema, as a CRD version's openAPIV3Schema. */
export function rootSchema(kind: string, description: string, spec: JSONSchemaProps, status?: JSONSchemaProps): JSONSchemaProps {
  return object(description, {
    apiVersion: string('APIVersion of this object (chaos.faultline.dev/v1alpha1).'),
    kind: string(`${kind}.`),
    metadata: { type: 'object' },
    spec,
    ...(status ? { status } : {}),
  }, ['spec']);
}

export const chaosPolicySchema = rootSchema('ChaosPolicy', 'ChaosPolicy describes faults to inject into the pods of its namespace for a bounded time, within the limits of the namespace\'s ChaosTenant.', chaosPolicySpecSchema, chaosPolicyStatusSchema);
export const chaosTenantSchema = rootSchema('ChaosTenant', 'ChaosTenant is written by cluster admins: which namespaces form a tenant, who may author ChaosPolicies there, and which faults they may run.', chaosTenantSpecSchema);
