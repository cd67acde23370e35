// Structural schemas of the plans that cross the webhook→pod boundary, written
// with the same builders as the CRDs and checked by the same checkSchema. What
// a structural schema cannot say (device names, absolute paths, regexes,
// cross-field rules) is codec.ts's semantic rules.

import { DEFAULT_MIN_REQUESTS, MAX_WINDOW_MS } from '../policies/abort-when.ts';
import { MAX_DURATION_MS } from '../policies/duration.ts';
import { array, integer, map, number, object, oneOf, port, string, type JSONSchemaProps } from '../policies/schema-builders.ts';
import { httpMatchSchema } from '../policies/schema.ts';
import { DIRECTIONS, ERRNO_NAMES, IO_METHODS, STREAMS, TOXIC_TYPES } from '../policies/vocabulary.ts';

// The webhook renders plans from admitted policies, so the API's bounds hold
// already; these bounds only keep a hand-written or corrupt plan from being
// unbounded: strings fit a "<namespace>/<name>/<rule>" id, lists a pod's ports.
const PLAN_MAX_STRING = 1024;
const PLAN_MAX_ITEMS = 65_536;
const text = (description: string): JSONSchemaProps => string(description, { minLength: 1, maxLength: PLAN_MAX_STRING });
const list = (description: string, items: JSONSchemaProps): JSONSchemaProps => array(description, items, PLAN_MAX_ITEMS);
const percent = (description: string): JSONSchemaProps => number(`${description} Percent in [0,100]; default 100.`, { minimum: 0, maximum: 100 });
const correlation = (): JSONSchemaProps => number('Correlation with the previous packet, percent in [0,100]; default 0.', { minimum: 0, maximum: 100 });
const ms = (description: string, maximum?: number): JSONSchemaProps => number(`${description} Milliseconds.`, { minimum: 0, ...(maximum !== undefined ? { maximum } : {}) });
/** An hour bounds kernel delays: netem and FUSE hold packets and calls that long at most. */
const KERNEL_MAX_MS = 3_600_000;

/** Every planned fault names its policy and ends by itself. */
const planned = {
  chaosId: text('The policy the fault comes from: "<namespace>/<name>".'),
  expiresAt: integer('When the fault ends: epoch milliseconds, as the planner renders it.', { minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  experiment: text('The chaos id of the fault\'s events: "<policy uid>/<generation>".'),
};
const plannedRequired = ['chaosId', 'expiresAt'];

const timeFault = object('Clock offset for the app containers (libfaketime).', {
  ...planned,
  offsetMs: number('Signed offset added to the clock, in ms; bounded like a Go duration, as the API bounds it.', { minimum: -MAX_DURATION_MS, maximum: MAX_DURATION_MS }),
  containers: list('App containers that see the offset; empty means all.', text('A container name.')),
}, [...plannedRequired, 'offsetMs']);

// ------------------------------------------------------------ live plan (the proxy)

const httpFault = object('An HTTP fault the proxy applies per request.', {
  ...planned,
  name: text('The rule\'s name within its policy.'),
  direction: oneOf('inbound or outbound.', DIRECTIONS),
  protocol: oneOf('grpc: the rule matches gRPC calls only, match.path being the method path. Absent: any HTTP request.', ['grpc']),
  match: httpMatchSchema,
  delay: object('Delay before forwarding.', {
    fixedMs: ms('Delay of every delayed request.'),
    jitterMs: ms('Extra random delay, uniform in [0, jitterMs]; default 0.'),
    percent: percent('Share of matching requests delayed.'),
  }, ['fixedMs']),
  abort: object('Answer with an error instead of forwarding.', {
    status: integer('HTTP status.', { minimum: 200, maximum: 599 }),
    percent: percent('Share of matching requests aborted.'),
    body: string('Response body (with grpcStatus: the grpc-message).', { maxLength: 4096 }),
    grpcStatus: integer('gRPC rules: end the call with HTTP 200 and this grpc-status (trailers-only).', { minimum: 1, maximum: 16 }),
  }, ['status']),
}, [...plannedRequired, 'name', 'direction']);

const toxic = object('A Toxiproxy toxic with its attributes in Toxiproxy\'s units.', {
  name: text('Toxic name, unique within its port.'),
  type: oneOf('Toxiproxy toxic type.', TOXIC_TYPES),
  stream: oneOf('upstream or downstream; default downstream.', STREAMS),
  toxicity: number('Probability the toxic applies to a connection, [0,1]; default 1.', { minimum: 0, maximum: 1 }),
  attributes: map('Toxiproxy attributes.', number('An attribute value.', { minimum: 0 }), 16),
}, ['name', 'type']);

const tcpFault = object('TCP toxics on one port.', {
  ...planned,
  direction: oneOf('inbound or outbound.', DIRECTIONS),
  port: port('Inbound: the app\'s port. Outbound: the upstream\'s.'),
  host: text('Outbound: the upstream host (required there).'),
  toxics: list('Toxics, applied in order.', toxic),
}, [...plannedRequired, 'direction', 'port']);

const networkDelay = object('A network delay Linux could not apply (no sch_netem), approximated by the proxy.', {
  ...planned,
  latencyMs: ms('Added latency.'),
  jitterMs: ms('Random variation; default 0.'),
  correlation: correlation(),
}, [...plannedRequired, 'latencyMs']);

// The proxy keeps one bucket per second of window, so the window is bounded as the API bounds abortWhen.
const guardWindow = (): JSONSchemaProps => number('Window the condition is judged over, in ms.', { minimum: 1_000, maximum: MAX_WINDOW_MS });
const minRequests = (): JSONSchemaProps => number(`Fewer responses in the window are never judged; default ${DEFAULT_MIN_REQUESTS}.`, { minimum: 1 });

const guard = object('A policy\'s steady-state guard, judged by the proxy on the responses it sees.', {
  chaosId: text('The policy: "<namespace>/<name>".'),
  uid: text('The policy\'s metadata.uid.'),
  generation: integer('The policy generation an abort holds; default 0.', { minimum: 0 }),
  errorRate: object('Abort when error responses exceed this share.', {
    ratio: number('Error responses over all responses, [0,1].', { minimum: 0, maximum: 1 }),
    windowMs: guardWindow(),
    minRequests: minRequests(),
  }, ['ratio', 'windowMs']),
  latency: object('Abort when the response time percentile exceeds a threshold.', {
    percentile: number('Percentile, [0,100].', { minimum: 0, maximum: 100 }),
    thresholdMs: ms('Threshold.'),
    windowMs: guardWindow(),
    minRequests: minRequests(),
  }, ['percentile', 'thresholdMs', 'windowMs']),
}, ['chaosId', 'uid']);

const plannedPolicy = object('A policy whose faults reach the pod.', {
  chaosId: text('The policy: "<namespace>/<name>".'),
  uid: text('The policy\'s metadata.uid.'),
  generation: integer('The policy\'s metadata.generation.', { minimum: 0 }),
}, ['chaosId', 'uid', 'generation']);

export const livePlanSchema: JSONSchemaProps = object('The faults the proxy applies now.', {
  policies: list('The policies of the plan\'s faults.', plannedPolicy),
  guards: list('Steady-state guards of the plan\'s policies.', guard),
  http: list('HTTP faults.', httpFault),
  tcp: list('TCP faults.', tcpFault),
  networkDelay,
  time: timeFault,
});

/** handoff.json: what pod setup could not apply in Linux (tc), for the proxy to approximate. */
export const handoffSchema: JSONSchemaProps = object('Faults handed from pod setup to the proxy.', { networkDelay });

// ------------------------------------------------------------ pod plan (FAULTLINE_PLAN)

const probability = (what: string, extra: Record<string, JSONSchemaProps> = {}): JSONSchemaProps =>
  object(what, { percent: percent('Share of packets.'), correlation: correlation(), ...extra }, ['percent']);

const networkFault = object('netem faults on the pod\'s interface.', {
  ...planned,
  device: text('Interface inside the pod; default eth0.'),
  delay: object('Delay every outgoing packet.', {
    latencyMs: ms('Added latency.', KERNEL_MAX_MS),
    jitterMs: ms('Random variation; default 0.', KERNEL_MAX_MS),
    correlation: correlation(),
  }, ['latencyMs']),
  loss: probability('Drop packets.'),
  duplicate: probability('Duplicate packets.'),
  corrupt: probability('Corrupt packets.'),
  reorder: probability('Reorder packets.', { gap: integer('Reorder every gap-th packet; default 0.', { minimum: 0, maximum: 2 ** 31 - 1 }) }),
  rateBitsPerSec: integer('Egress rate limit in bits/s.', { minimum: 8, maximum: 2 ** 53 }),
}, plannedRequired);

const ioFault = object('A filesystem fault served through FUSE.', {
  ...planned,
  volumePath: text('The volume\'s mount path in the app container.'),
  path: text('Glob of affected paths; default every path under volumePath.'),
  methods: list('Filesystem operations affected; default all.', oneOf('A filesystem operation.', IO_METHODS)),
  errno: oneOf('Error the operation fails with.', ERRNO_NAMES),
  delayMs: ms('Delay added to each affected operation; default 0.', KERNEL_MAX_MS),
  percent: percent('Share of matching operations affected.'),
}, [...plannedRequired, 'volumePath']);

const ports = (description: string): JSONSchemaProps => list(description, port('A port.'));
const cidrs = (description: string): JSONSchemaProps => list(description, string('An address or address/prefix.', { minLength: 2, maxLength: 43 }));

const captureSchema = object('Transparent capture: every TCP connection to one listener per direction.', {
  inboundPort: port('The proxy\'s inbound listener.'),
  outboundPort: port('The proxy\'s outbound listener.'),
  proxyPorts: ports('The proxy\'s other ports (admin, metrics, health, Toxiproxy): never captured.'),
  excludeInboundPorts: ports('App ports never captured inbound.'),
  excludeInboundCidrs: cidrs('Source CIDRs never captured inbound.'),
  excludeOutboundPorts: ports('Destination ports never captured outbound.'),
  excludeOutboundCidrs: cidrs('Destination CIDRs never captured outbound.'),
  mesh: object('The pod\'s mesh sidecar: inbound is captured after it.', {
    kind: oneOf('The mesh.', ['istio', 'linkerd']),
    uid: integer('The mesh proxy\'s UID.', { minimum: 0, maximum: 2 ** 32 - 2 }),
  }, ['kind', 'uid']),
}, ['inboundPort', 'outboundPort']);

export const wiringSchema = object('How the pod\'s traffic is wired through the proxy.', {
  proxyUid: integer('The proxy\'s UID, whose traffic is never redirected.', { minimum: 0, maximum: 2 ** 32 - 2 }),
  capture: captureSchema,
  toxiproxyPort: port('Toxiproxy\'s API port, closed to every UID but proxyUid (absent: the default).'),
}, ['proxyUid', 'capture']);

export const podPlanSchema: JSONSchemaProps = object('FAULTLINE_PLAN: everything pod setup and the proxy are told at admission.', {
  version: text('Faultline version of the webhook that rendered the plan.'),
  wiring: wiringSchema,
  kernel: object('Kernel-level faults, fixed at pod start.', {
    network: networkFault,
    io: list('IO faults.', ioFault),
    time: timeFault,
  }),
}, ['version', 'wiring']);
