// The one parser of everything the webhook hands a pod: FAULTLINE_PLAN (pod
// setup and the proxy's wiring), the live plan (the proxy, from a file or the
// planner) and handoff.json. Shapes are checked by the structural schemas in
// plan-schema.ts with checkSchema, semantics by the rules below, and gaps are
// filled with policies/defaults.ts's values; every error is a PlanError that
// names the field, in the apiserver's wording.

import { DEFAULT_MIN_REQUESTS } from '../policies/abort-when.ts';
import {
  DEFAULT_CORRELATION, DEFAULT_DEVICE, DEFAULT_PERCENT, DEFAULT_STREAM, DEFAULT_TOXICITY, defaultIoPath,
} from '../policies/defaults.ts';
import { child, formatFieldErrors, index, invalid, required, type FieldError } from '../policies/field-error.ts';
import { checkDocument, type Checked } from '../policies/schema-check.ts';
import type { JSONSchemaProps } from '../policies/schema-builders.ts';
import type { IoMethod } from '../policies/types.ts';
import { DEVICE_NAME, IO_METHODS } from '../policies/vocabulary.ts';
import { handoffSchema, livePlanSchema, podPlanSchema, wiringSchema } from './plan-schema.ts';
import { parseCidr } from './cidr.ts';
import type {
  CaptureWiring, InitPlan, LiveFaultPlan, PlannedGuard, PlannedHttpFault, PlannedIoFault, PlannedNetworkFault, PlannedTcpFault, PlannedTimeFault, PlannedToxic, TrafficWiring,
} from './plans.ts';

/** A plan that cannot be used as written; the message names every offending field. */
export class PlanError extends Error {}

/** Faults pod setup could not apply in Linux (tc), for the proxy to apply instead. */
export interface Handoff {
  networkDelay?: LiveFaultPlan['networkDelay'];
}

/** Schema first, then the semantic rules (checkDocument); every error in one PlanError. */
function check(schema: JSONSchemaProps, value: unknown, root: string, rules: (v: Checked) => FieldError[]): Checked {
  const checked = checkDocument(schema, value, root, rules);
  if (checked.errors.length > 0) throw new PlanError(formatFieldErrors(checked.errors));
  return checked.value;
}

function parseJson(text: string, source: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new PlanError(`${source} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new PlanError(`${source} must be a JSON object`);
  return value;
}

// ------------------------------------------------------------ semantic rules

function firstDuplicate<T>(values: readonly T[]): T | undefined {
  return values.find((v, i) => values.indexOf(v) !== i);
}

function httpRules(f: Checked, path: string): FieldError[] {
  const errors: FieldError[] = [];
  const p = f.match?.path as Checked | undefined;
  if (p !== undefined) {
    const kinds = ['exact', 'prefix', 'regex'].filter((k) => p[k] !== undefined);
    const at = child(child(path, 'match'), 'path');
    if (kinds.length !== 1) errors.push(invalid(at, p, 'set exactly one of exact, prefix, regex'));
    if (p.regex !== undefined) {
      try {
        new RegExp(p.regex as string);
      } catch (err) {
        errors.push(invalid(child(at, 'regex'), p.regex, (err as Error).message));
      }
    }
  }
  if (f.delay === undefined && f.abort === undefined) errors.push(invalid(path, f.name, 'needs a delay or an abort'));
  if (f.abort?.grpcStatus !== undefined && f.protocol !== 'grpc') {
    errors.push(invalid(child(child(path, 'abort'), 'grpcStatus'), f.abort.grpcStatus, 'a grpc-status abort needs protocol: grpc'));
  }
  return errors;
}

function tcpRules(f: Checked, path: string): FieldError[] {
  const errors: FieldError[] = [];
  if (f.direction === 'outbound' && f.host === undefined) errors.push({ ...required(child(path, 'host')), message: 'Required value: outbound faults name their upstream host' });
  const dup = firstDuplicate(((f.toxics ?? []) as Checked[]).map((t) => t.name as string));
  if (dup !== undefined) errors.push(invalid(child(path, 'toxics'), dup, `duplicate toxic name "${dup}"`));
  return errors;
}

function liveRules(plan: Checked, root: string): FieldError[] {
  return [
    ...((plan.guards ?? []) as Checked[]).flatMap((g, i) => (g.errorRate === undefined && g.latency === undefined ? [invalid(index(child(root, 'guards'), i), g.chaosId, 'needs errorRate or latency')] : [])),
    ...((plan.http ?? []) as Checked[]).flatMap((f, i) => httpRules(f, index(child(root, 'http'), i))),
    ...((plan.tcp ?? []) as Checked[]).flatMap((f, i) => tcpRules(f, index(child(root, 'tcp'), i))),
  ];
}

function wiringRules(w: Checked): FieldError[] {
  const errors: FieldError[] = [];
  // Fixed listeners are gone: a plan that still wires ports that way would be
  // captured with none of them, so it is refused rather than half-read. (Plans
  // from before the removal carry the fields empty, and those still decode.)
  for (const key of ['inbound', 'outbound'])
    if (Array.isArray(w[key]) && w[key].length > 0) errors.push(invalid(child('wiring', key), `${w[key].length} listeners`, 'fixed listeners were removed: every pod is captured (wiring.capture)'));
  const c = w.capture as Checked;
  if (c.inboundPort === c.outboundPort) errors.push(invalid('wiring.capture.outboundPort', c.outboundPort, 'must differ from inboundPort'));
  if (c.mesh !== undefined && c.mesh.uid === w.proxyUid) errors.push(invalid('wiring.capture.mesh.uid', c.mesh.uid, 'must differ from proxyUid, or the mesh proxy\'s traffic would pass as the Faultline proxy\'s'));
  for (const key of ['excludeInboundCidrs', 'excludeOutboundCidrs'])
    for (const [i, cidr] of ((c[key] ?? []) as string[]).entries())
      if (parseCidr(cidr) === undefined) errors.push(invalid(index(child('wiring.capture', key), i), cidr, 'must be an IP address or CIDR (address/prefix)'));
  return errors;
}

function kernelRules(k: Checked): FieldError[] {
  const errors: FieldError[] = [];
  // Interface names end up inside nft string literals and tc argv: keeping them
  // to DEVICE_NAME's characters means a plan can never smuggle a quote into a ruleset.
  const device = k.network?.device as string | undefined;
  if (device !== undefined && !DEVICE_NAME.test(device)) {
    errors.push(invalid('kernel.network.device', device, 'must be an interface name (letters, digits, _ . -, at most 15)'));
  }
  for (const [i, f] of ((k.io ?? []) as Checked[]).entries()) {
    const at = index('kernel.io', i);
    if (!(f.volumePath as string).startsWith('/')) errors.push(invalid(child(at, 'volumePath'), f.volumePath, 'must be an absolute path'));
    if (f.errno === undefined && !f.delayMs) errors.push(invalid(at, f.volumePath, 'needs an errno, a delayMs, or both'));
  }
  return errors;
}

// ------------------------------------------------------------ defaults

const planned = (f: Checked): { chaosId: string; expiresAt: number; experiment?: string } => ({ chaosId: f.chaosId, expiresAt: f.expiresAt, ...(f.experiment !== undefined ? { experiment: f.experiment } : {}) });

function httpFault(f: Checked): PlannedHttpFault {
  const out: PlannedHttpFault = { ...planned(f), name: f.name, direction: f.direction, ...(f.protocol !== undefined ? { protocol: f.protocol } : {}), match: f.match ?? {} };
  if (f.delay) out.delay = { fixedMs: f.delay.fixedMs, jitterMs: f.delay.jitterMs ?? 0, percent: f.delay.percent ?? DEFAULT_PERCENT };
  if (f.abort) {
    const { status, body, grpcStatus } = f.abort;
    out.abort = { status, percent: f.abort.percent ?? DEFAULT_PERCENT, ...(body !== undefined ? { body } : {}), ...(grpcStatus !== undefined ? { grpcStatus } : {}) };
  }
  return out;
}

function toxic(t: Checked): PlannedToxic {
  return { name: t.name, type: t.type, stream: t.stream ?? DEFAULT_STREAM, toxicity: t.toxicity ?? DEFAULT_TOXICITY, attributes: { ...t.attributes } };
}

function tcpFault(f: Checked): PlannedTcpFault {
  return { ...planned(f), direction: f.direction, port: f.port, ...(f.host !== undefined ? { host: f.host } : {}), toxics: (f.toxics ?? []).map(toxic) };
}

function networkDelay(d: Checked): NonNullable<LiveFaultPlan['networkDelay']> {
  return { ...planned(d), latencyMs: d.latencyMs, jitterMs: d.jitterMs ?? 0, correlation: d.correlation ?? DEFAULT_CORRELATION };
}

function timeFault(t: Checked): PlannedTimeFault {
  return { ...planned(t), offsetMs: t.offsetMs, containers: t.containers ?? [] };
}

const probability = (p: Checked): { percent: number; correlation: number } => ({ percent: p.percent, correlation: p.correlation ?? DEFAULT_CORRELATION });

function networkFault(n: Checked): PlannedNetworkFault {
  const out: PlannedNetworkFault = { ...planned(n), device: n.device ?? DEFAULT_DEVICE };
  if (n.delay) out.delay = { latencyMs: n.delay.latencyMs, jitterMs: n.delay.jitterMs ?? 0, correlation: n.delay.correlation ?? DEFAULT_CORRELATION };
  for (const key of ['loss', 'duplicate', 'corrupt'] as const) if (n[key]) out[key] = probability(n[key]);
  if (n.reorder) out.reorder = { ...probability(n.reorder), gap: n.reorder.gap ?? 0 };
  if (n.rateBitsPerSec !== undefined) out.rateBitsPerSec = n.rateBitsPerSec;
  return out;
}

function ioFault(f: Checked): PlannedIoFault {
  const volumePath = (f.volumePath as string).replace(/\/+$/, '') || '/';
  return {
    ...planned(f),
    volumePath,
    path: f.path ?? defaultIoPath(volumePath),
    methods: (f.methods ?? [...IO_METHODS]) as IoMethod[],
    ...(f.errno !== undefined ? { errno: f.errno } : {}),
    delayMs: f.delayMs ?? 0,
    percent: f.percent ?? DEFAULT_PERCENT,
  };
}

function guard(g: Checked): PlannedGuard {
  const out: PlannedGuard = { chaosId: g.chaosId, uid: g.uid, generation: g.generation ?? 0 };
  if (g.errorRate) out.errorRate = { ratio: g.errorRate.ratio, windowMs: g.errorRate.windowMs, minRequests: g.errorRate.minRequests ?? DEFAULT_MIN_REQUESTS };
  if (g.latency) {
    const l = g.latency;
    out.latency = { percentile: l.percentile, thresholdMs: l.thresholdMs, windowMs: l.windowMs, minRequests: l.minRequests ?? DEFAULT_MIN_REQUESTS };
  }
  return out;
}

function capture(c: Checked): CaptureWiring {
  return {
    inboundPort: c.inboundPort,
    outboundPort: c.outboundPort,
    proxyPorts: [...(c.proxyPorts ?? [])],
    excludeInboundPorts: [...(c.excludeInboundPorts ?? [])],
    excludeInboundCidrs: [...(c.excludeInboundCidrs ?? [])],
    excludeOutboundPorts: [...(c.excludeOutboundPorts ?? [])],
    excludeOutboundCidrs: [...(c.excludeOutboundCidrs ?? [])],
    ...(c.mesh !== undefined ? { mesh: { kind: c.mesh.kind, uid: c.mesh.uid } } : {}),
  };
}

function wiring(w: Checked): TrafficWiring {
  return {
    proxyUid: w.proxyUid,
    capture: capture(w.capture),
    ...(w.toxiproxyPort !== undefined ? { toxiproxyPort: w.toxiproxyPort } : {}),
  };
}

// ------------------------------------------------------------ decoders

/** The live plan, from a parsed JSON value (a plan file, or a test's literal). */
export function decodeLivePlan(value: unknown): LiveFaultPlan {
  const p = check(livePlanSchema, value, 'plan', (v) => liveRules(v, 'plan'));
  const plan: LiveFaultPlan = { http: (p.http ?? []).map(httpFault), tcp: (p.tcp ?? []).map(tcpFault) };
  if (p.guards !== undefined) plan.guards = (p.guards as Checked[]).map(guard);
  if (p.policies !== undefined) plan.policies = (p.policies as Checked[]).map((x) => ({ chaosId: x.chaosId, uid: x.uid, generation: x.generation }));
  if (p.networkDelay) plan.networkDelay = networkDelay(p.networkDelay);
  if (p.time) plan.time = timeFault(p.time);
  return plan;
}

/** FAULTLINE_PLAN's JSON text; `source` names where it came from in every error. */
export function decodeInitPlan(json: string, source = 'FAULTLINE_PLAN'): InitPlan {
  const raw = parseJson(json, source);
  let p: Checked;
  try {
    p = check(podPlanSchema, raw, '', (v) => [...wiringRules(v.wiring), ...kernelRules(v.kernel ?? {})]);
  } catch (err) {
    if (err instanceof PlanError) throw new PlanError(`invalid plan in ${source}: ${err.message}`);
    throw err;
  }
  const k = (p.kernel ?? {}) as Checked;
  const kernel: InitPlan['kernel'] = { io: (k.io ?? []).map(ioFault) };
  if (k.network) kernel.network = networkFault(k.network);
  if (k.time) kernel.time = timeFault(k.time);
  return { version: p.version, wiring: wiring(p.wiring), kernel };
}

/**
 * A wiring on its own (the proxy's --wiring-file), or the wiring of a whole
 * FAULTLINE_PLAN, by the same rules pod setup applies to it.
 */
export function decodeWiring(json: string, source: string): TrafficWiring {
  const raw = parseJson(json, source) as Checked;
  if (raw.wiring !== undefined) return decodeInitPlan(json, source).wiring;
  try {
    return wiring(check(wiringSchema, raw, 'wiring', wiringRules));
  } catch (err) {
    if (err instanceof PlanError) throw new PlanError(`invalid wiring in ${source}: ${err.message}`);
    throw err;
  }
}

/** handoff.json's text; `source` (the file) names it in every error. */
export function decodeHandoff(json: string, source: string): Handoff {
  const raw = parseJson(json, source);
  try {
    const h = check(handoffSchema, raw, 'handoff', () => []);
    return h.networkDelay ? { networkDelay: networkDelay(h.networkDelay) } : {};
  } catch (err) {
    if (err instanceof PlanError) throw new PlanError(`${source}: ${err.message}`);
    throw err;
  }
}

/** The JSON text every encoder writes: one line, so env vars and files stay greppable. */
export function encodeJson(value: InitPlan | LiveFaultPlan | Handoff): string {
  return JSON.stringify(value);
}
