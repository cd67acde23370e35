// Defaulting of a VALID ChaosPolicy spec (validate first): every optional knob
// gets the value the API documents, so the allowlist check and the plans
// never re-derive a default and cannot disagree about one.

import { pruneNulls } from './schema-check.ts';
import type {
  AbortWhen, ChaosPolicySpec, Duration, GrpcAbort, GrpcFault, GrpcMatch, HttpAbort, HttpDelay, HttpFault, HttpMatch, IoFault, IoMethod, LabelSelector, Mode, ModeType, NetworkFault, TcpFault, TimeFault, Toxic,
} from './types.ts';
import { IO_METHODS } from './vocabulary.ts';

type NetemProbability = { percent: number; correlation: number };

// The documented defaults, named: the pod contract's codec (contract/codec.ts)
// fills the same gaps in a plan with these same values.
export const DEFAULT_PERCENT = 100;
export const DEFAULT_CORRELATION = 0;
export const DEFAULT_DIRECTION = 'inbound';
export const DEFAULT_STREAM = 'downstream';
export const DEFAULT_TOXICITY = 1;
export const DEFAULT_DEVICE = 'eth0';
export const DEFAULT_MODE_TYPE = 'all';
/** An IO fault without a path glob affects every path under its volume. */
export function defaultIoPath(volumePath: string): string {
  return `${volumePath.replace(/\/+$/, '')}/**`;
}

/**
 * A mode, defaulted: fixed and fixed-percent always carry their value (the API
 * has no default for it; validation requires one), so no reader supplies its own.
 */
export type DefaultedMode = { type: Exclude<ModeType, 'fixed' | 'fixed-percent'> } | { type: 'fixed' | 'fixed-percent'; value: number };

/** An HTTP or gRPC fault, defaulted: they differ only in their match and abort. */
export interface DefaultedRequestFault<M, A> {
  name: string;
  direction: 'inbound' | 'outbound';
  match: M;
  delay?: { fixed: Duration; jitter: Duration; percent: number };
  abort?: A & { percent: number };
}
export type DefaultedHttpFault = DefaultedRequestFault<HttpMatch, HttpAbort>;
export type DefaultedGrpcFault = DefaultedRequestFault<GrpcMatch, GrpcAbort>;
export type DefaultedToxic = Toxic & Required<Pick<Toxic, 'name' | 'stream' | 'toxicity'>>;
export interface DefaultedTcpFault extends Omit<TcpFault, 'toxics'> {
  toxics: DefaultedToxic[];
}
export interface DefaultedNetworkFault {
  device: string;
  delay?: { latency: Duration; jitter: Duration; correlation: number };
  loss?: NetemProbability;
  duplicate?: NetemProbability;
  corrupt?: NetemProbability;
  reorder?: NetemProbability & { gap?: number };
  rate?: string;
}
export interface DefaultedIoFault {
  volumePath: string;
  path: string;
  methods: IoMethod[];
  errno?: string;
  delay: Duration;
  percent: number;
}
export interface DefaultedTimeFault {
  offset: Duration;
  /** Empty means every app container (resolved against the pod by the plan). */
  containers: string[];
}
export interface DefaultedPolicySpec {
  selector: LabelSelector;
  mode: DefaultedMode;
  duration: Duration;
  paused: boolean;
  http: DefaultedHttpFault[];
  grpc: DefaultedGrpcFault[];
  tcp: DefaultedTcpFault[];
  network?: DefaultedNetworkFault;
  io: DefaultedIoFault[];
  time?: DefaultedTimeFault;
  abortWhen?: AbortWhen;
}

export function applyDefaults(input: ChaosPolicySpec): DefaultedPolicySpec {
  const spec = pruneNulls(input) as ChaosPolicySpec;
  return {
    selector: spec.selector ?? {},
    mode: defaultMode(spec.mode),
    duration: spec.duration,
    paused: spec.paused ?? false,
    http: (spec.http ?? []).map(defaultHttp),
    grpc: (spec.grpc ?? []).map(defaultGrpc),
    tcp: (spec.tcp ?? []).map(defaultTcp),
    ...(spec.network ? { network: defaultNetwork(spec.network) } : {}),
    io: (spec.io ?? []).map(defaultIo),
    ...(spec.time ? { time: defaultTime(spec.time) } : {}),
    ...(spec.abortWhen ? { abortWhen: spec.abortWhen } : {}),
  };
}

function defaultMode(mode: Mode | undefined): DefaultedMode {
  if (mode === undefined) return { type: DEFAULT_MODE_TYPE };
  // A valid spec has the value exactly when the type takes one.
  return mode.type === 'fixed' || mode.type === 'fixed-percent' ? { type: mode.type, value: mode.value! } : { type: mode.type };
}

/** HTTP and gRPC faults default alike: a name from the rule's index, inbound, 100%, an empty match (every field of M is optional). */
function defaultRequestFault<M extends object, A extends { percent?: number }>(
  fault: { name?: string; direction?: 'inbound' | 'outbound'; match?: M; delay?: HttpDelay; abort?: A },
  name: string,
): DefaultedRequestFault<M, A> {
  return {
    name: fault.name ?? name,
    direction: fault.direction ?? DEFAULT_DIRECTION,
    match: fault.match ?? ({} as M),
    ...(fault.delay ? { delay: defaultDelay(fault.delay) } : {}),
    ...(fault.abort ? { abort: { ...fault.abort, percent: fault.abort.percent ?? DEFAULT_PERCENT } } : {}),
  };
}

const defaultHttp = (fault: HttpFault, i: number): DefaultedHttpFault => defaultRequestFault(fault, `http-${i}`);
const defaultGrpc = (fault: GrpcFault, i: number): DefaultedGrpcFault => defaultRequestFault(fault, `grpc-${i}`);

function defaultDelay(delay: HttpDelay): NonNullable<DefaultedHttpFault['delay']> {
  return { fixed: delay.fixed, jitter: delay.jitter ?? '0s', percent: delay.percent ?? DEFAULT_PERCENT };
}

/** Unnamed toxics get Toxiproxy's own default name, "<type>_<stream>", made unique with a counter. */
function defaultTcp(fault: TcpFault): DefaultedTcpFault {
  const taken = new Set(fault.toxics.flatMap((t) => (t.name ? [t.name] : [])));
  const toxics = fault.toxics.map((toxic): DefaultedToxic => {
    const stream = toxic.stream ?? DEFAULT_STREAM;
    let name = toxic.name;
    if (name === undefined) {
      const base = `${toxic.type}_${stream}`;
      name = base;
      for (let n = 2; taken.has(name); n++) name = `${base}_${n}`;
      taken.add(name);
    }
    return { ...toxic, name, stream, toxicity: toxic.toxicity ?? DEFAULT_TOXICITY };
  });
  return { ...fault, toxics };
}

function probability(p: { percent: number; correlation?: number } | undefined): NetemProbability | undefined {
  return p && { percent: p.percent, correlation: p.correlation ?? DEFAULT_CORRELATION };
}

function defaultNetwork(net: NetworkFault): DefaultedNetworkFault {
  const out: DefaultedNetworkFault = { device: net.device ?? DEFAULT_DEVICE };
  if (net.delay) out.delay = { latency: net.delay.latency, jitter: net.delay.jitter ?? '0s', correlation: net.delay.correlation ?? DEFAULT_CORRELATION };
  for (const key of ['loss', 'duplicate', 'corrupt'] as const) {
    const p = probability(net[key]);
    if (p) out[key] = p;
  }
  if (net.reorder) out.reorder = { ...probability(net.reorder)!, ...(net.reorder.gap !== undefined ? { gap: net.reorder.gap } : {}) };
  if (net.rate !== undefined) out.rate = net.rate;
  return out;
}

function defaultIo(fault: IoFault): DefaultedIoFault {
  return {
    volumePath: fault.volumePath,
    path: fault.path ?? defaultIoPath(fault.volumePath),
    methods: fault.methods ?? [...IO_METHODS],
    ...(fault.errno !== undefined ? { errno: fault.errno } : {}),
    delay: fault.delay ?? '0s',
    percent: fault.percent ?? DEFAULT_PERCENT,
  };
}

function defaultTime(time: TimeFault): DefaultedTimeFault {
  return { offset: time.offset, containers: time.containers ?? [] };
}
