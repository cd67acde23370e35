// Tenant-independent validation of ChaosPolicy and ChaosTenant objects: the
// shapes via the structural schema, then the rules a schema cannot say.
// Accepts anything (an AdmissionReview's object, a YAML document) and never
// throws; every problem comes back as a FieldError with a kubectl-style path.

import { abortWhenErrors } from './abort-when.ts';
import { DEFAULT_DIRECTION } from './defaults.ts';
import { durationMs, parseDuration } from './duration.ts';
import { child, forbidden, index, invalid, required, unsupported, type FieldError } from './field-error.ts';
import { parseTcRate } from './rate.ts';
import { backtrackingRisk } from './regex-safety.ts';
import type { JSONSchemaProps } from './schema-builders.ts';
import { chaosPolicySchema, chaosTenantSchema } from './schema.ts';
import { checkSchema, pruneNulls } from './schema-check.ts';
import type {
  ChaosPolicySpec, ChaosTenantSpec, GrpcFault, HttpDelay, HttpFault, StringMatch, IoFault, LabelSelector, Mode, NetworkFault, TcpFault, TimeFault, Toxic,
} from './types.ts';
import { DEVICE_NAME, FAULT_KINDS, TOXIC_ATTRIBUTE_NAMES, TOXIC_ATTRIBUTES, TOXIC_TIME_ATTRIBUTES } from './vocabulary.ts';

export interface Inspection {
  errors: FieldError[];
  /** Fields the schema does not know; the apiserver drops them silently, so `faultline check` warns. */
  unknownFields: string[];
}

/** The schema check, plus metadata, which the apiserver always sets but a YAML file may lack. */
function checkShape(schema: JSONSchemaProps, value: unknown): Inspection {
  const shape = checkSchema(schema, value, '');
  const metadata = (value as { metadata?: unknown } | null)?.metadata;
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && metadata === undefined) shape.errors.unshift(required('metadata'));
  return shape;
}

export function inspectPolicy(object: unknown): Inspection {
  const value = pruneNulls(object);
  const shape = checkShape(chaosPolicySchema, value);
  if (shape.errors.length > 0) return shape;
  const spec = (value as { spec: ChaosPolicySpec }).spec;
  return { errors: policySpecErrors(spec, 'spec'), unknownFields: shape.unknownFields };
}

export function validatePolicy(object: unknown): FieldError[] {
  return inspectPolicy(object).errors;
}

export function inspectTenant(object: unknown): Inspection {
  const value = pruneNulls(object);
  const shape = checkShape(chaosTenantSchema, value);
  if (shape.errors.length > 0) return shape;
  const spec = (value as { spec: ChaosTenantSpec }).spec;
  return { errors: tenantSpecErrors(spec, 'spec'), unknownFields: shape.unknownFields };
}

export function validateTenant(object: unknown): FieldError[] {
  return inspectTenant(object).errors;
}

// ------------------------------------------------------------ shared rules

/** Errors of a Go duration field; `signed` allows negative values. */
function durationErrors(value: string, path: string, opts: { signed?: boolean; positive?: boolean } = {}): FieldError[] {
  const parsed = parseDuration(value);
  if ('error' in parsed) return [invalid(path, value, parsed.error)];
  if (!opts.signed && parsed.ms < 0) return [invalid(path, value, 'must not be negative')];
  if (opts.positive && parsed.ms === 0) return [invalid(path, value, 'must be greater than zero')];
  return [];
}

export function labelSelectorErrors(selector: LabelSelector | undefined, path: string): FieldError[] {
  const errors: FieldError[] = [];
  (selector?.matchExpressions ?? []).forEach((req, i) => {
    const at = child(index(child(path, 'matchExpressions'), i), 'values');
    const values = req.values ?? [];
    if ((req.operator === 'In' || req.operator === 'NotIn') && values.length === 0) {
      errors.push(invalid(at, values, `must be non-empty when operator is ${req.operator}`));
    }
    if ((req.operator === 'Exists' || req.operator === 'DoesNotExist') && values.length > 0) {
      errors.push(invalid(at, values, `must be empty when operator is ${req.operator}`));
    }
  });
  return errors;
}

function duplicates(names: readonly string[]): string[] {
  return [...new Set(names.filter((n, i) => names.indexOf(n) !== i))];
}

// ------------------------------------------------------------ ChaosPolicy

function policySpecErrors(spec: ChaosPolicySpec, path: string): FieldError[] {
  const errors = [
    ...durationErrors(spec.duration, child(path, 'duration'), { positive: true }),
    ...labelSelectorErrors(spec.selector, child(path, 'selector')),
    ...(spec.mode ? modeErrors(spec.mode, child(path, 'mode')) : []),
    ...(spec.http ?? []).flatMap((f, i) => httpErrors(f, index(child(path, 'http'), i))),
    ...(spec.grpc ?? []).flatMap((f, i) => grpcErrors(f, index(child(path, 'grpc'), i))),
    ...tcpErrors(spec.tcp ?? [], child(path, 'tcp')),
    ...(spec.network ? networkErrors(spec.network, child(path, 'network')) : []),
    ...(spec.io ?? []).flatMap((f, i) => ioErrors(f, index(child(path, 'io'), i))),
    ...(spec.time ? timeErrors(spec.time, child(path, 'time')) : []),
    ...(spec.abortWhen ? abortWhenErrors(spec.abortWhen, child(path, 'abortWhen')) : []),
  ];
  for (const family of ['http', 'grpc'] as const) {
    const names = (spec[family] ?? []).flatMap((f) => (f.name ? [f.name] : []));
    for (const name of duplicates(names)) errors.push(invalid(child(path, family), name, 'rule names must be unique'));
  }
  const hasFault = (spec.http?.length ?? 0) > 0 || (spec.grpc?.length ?? 0) > 0 || (spec.tcp?.length ?? 0) > 0 || spec.network !== undefined || (spec.io?.length ?? 0) > 0 || spec.time !== undefined;
  if (!hasFault) errors.push(required(`${path}.http|grpc|tcp|network|io|time`));
  return errors;
}

function modeErrors(mode: Mode, path: string): FieldError[] {
  const at = child(path, 'value');
  switch (mode.type) {
    case 'one':
    case 'all':
      return mode.value === undefined ? [] : [forbidden(at, `mode ${mode.type} takes no value`)];
    case 'fixed':
      if (mode.value === undefined) return [required(at)];
      return Number.isInteger(mode.value) && mode.value >= 1 ? [] : [invalid(at, mode.value, 'must be a whole number of pods, at least 1')];
    case 'fixed-percent':
      if (mode.value === undefined) return [required(at)];
      return mode.value > 0 && mode.value <= 100 ? [] : [invalid(at, mode.value, 'must be a percent in (0,100]')];
  }
}

const HTTP_METHOD = /^[A-Z]+$/;

/** What HTTP and gRPC faults share: a delay or an abort, the direction's host/port rule, a delay's durations. */
function requestFaultErrors(fault: HttpFault | GrpcFault, path: string): FieldError[] {
  const errors: FieldError[] = [];
  const match = fault.match ?? {};
  const matchPath = child(path, 'match');
  if (!fault.delay && !fault.abort) errors.push(required(`${path}.delay|abort`));
  if ((fault.direction ?? DEFAULT_DIRECTION) === 'outbound') {
    if (!match.host) errors.push({ ...required(child(matchPath, 'host')), message: 'Required value: outbound faults name the upstream host' });
    if (match.port === undefined) errors.push({ ...required(child(matchPath, 'port')), message: 'Required value: outbound faults name the upstream port' });
  } else if (match.host !== undefined) {
    errors.push(forbidden(child(matchPath, 'host'), 'host applies to outbound faults only'));
  }
  if (fault.delay) errors.push(...delayErrors(fault.delay, child(path, 'delay')));
  return errors;
}

function delayErrors(delay: HttpDelay, path: string): FieldError[] {
  return [...durationErrors(delay.fixed, child(path, 'fixed')), ...(delay.jitter !== undefined ? durationErrors(delay.jitter, child(path, 'jitter')) : [])];
}

function stringMatchErrors(m: StringMatch, path: string): FieldError[] {
  const errors: FieldError[] = [];
  const set = (['exact', 'prefix', 'regex'] as const).filter((k) => m[k] !== undefined);
  if (set.length !== 1) errors.push(invalid(path, m, 'set exactly one of exact, prefix, regex'));
  if (m.regex !== undefined) {
    const at = child(path, 'regex');
    try {
      new RegExp(m.regex);
      const risk = backtrackingRisk(m.regex);
      if (risk !== undefined) errors.push(invalid(at, m.regex, risk));
    } catch (err) {
      errors.push(invalid(at, m.regex, `does not compile: ${(err as Error).message}`));
    }
  }
  return errors;
}

function httpErrors(fault: HttpFault, path: string): FieldError[] {
  const errors = requestFaultErrors(fault, path);
  const match = fault.match ?? {};
  const matchPath = child(path, 'match');
  if (match.path) errors.push(...stringMatchErrors(match.path, child(matchPath, 'path')));
  (match.methods ?? []).forEach((m, i) => {
    if (!HTTP_METHOD.test(m)) errors.push(invalid(index(child(matchPath, 'methods'), i), m, 'must be an upper-case HTTP method such as GET'));
  });
  return errors;
}

/** "/pkg.Service/Method": one leading slash, a service name, a slash, a method name. */
const GRPC_METHOD_PATH = /^\/[^/\s]+\/[^/\s]+$/;

function grpcErrors(fault: GrpcFault, path: string): FieldError[] {
  const errors = requestFaultErrors(fault, path);
  const method = fault.match?.method;
  const methodPath = child(child(path, 'match'), 'method');
  if (method) {
    errors.push(...stringMatchErrors(method, methodPath));
    if (method.exact !== undefined && !GRPC_METHOD_PATH.test(method.exact)) {
      errors.push(invalid(child(methodPath, 'exact'), method.exact, 'must be a method path such as /pkg.Service/Method'));
    }
    if (method.prefix !== undefined && !method.prefix.startsWith('/')) {
      errors.push(invalid(child(methodPath, 'prefix'), method.prefix, 'must start with "/", e.g. /pkg.Service/'));
    }
  }
  const abort = fault.abort;
  if (abort && (abort.code === undefined) === (abort.httpStatus === undefined)) {
    errors.push(invalid(child(path, 'abort'), abort, 'set exactly one of code, httpStatus'));
  }
  if (abort?.message !== undefined && abort.code === undefined) {
    errors.push(forbidden(child(child(path, 'abort'), 'message'), 'message goes with code (grpc-message)'));
  }
  return errors;
}

function tcpErrors(faults: readonly TcpFault[], path: string): FieldError[] {
  const errors: FieldError[] = [];
  const seen = new Map<string, number>();
  faults.forEach((fault, i) => {
    const at = index(path, i);
    const key = `${fault.host ?? ''}:${fault.port}`;
    const first = seen.get(key);
    if (first !== undefined) {
      errors.push(invalid(child(at, 'port'), fault.port, `${path}[${first}] already faults this ${fault.host ? 'upstream' : 'port'}; list all its toxics there`));
    } else {
      seen.set(key, i);
    }
    if (fault.host !== undefined && fault.host.trim() === '') errors.push(invalid(child(at, 'host'), fault.host, 'must not be empty'));
    fault.toxics.forEach((toxic, j) => errors.push(...toxicErrors(toxic, index(child(at, 'toxics'), j))));
    const names = fault.toxics.flatMap((t) => (t.name ? [t.name] : []));
    for (const name of duplicates(names)) errors.push(invalid(child(at, 'toxics'), name, 'toxic names must be unique per port'));
  });
  return errors;
}

function toxicErrors(toxic: Toxic, path: string): FieldError[] {
  const errors: FieldError[] = [];
  const spec = TOXIC_ATTRIBUTES[toxic.type];
  for (const attr of spec.required) {
    if (toxic[attr] === undefined) errors.push({ ...required(child(path, attr)), message: `Required value: toxic ${toxic.type} needs ${attr}` });
  }
  for (const attr of TOXIC_ATTRIBUTE_NAMES) {
    if (toxic[attr] !== undefined && !spec.required.includes(attr) && !spec.optional.includes(attr)) {
      const accepted = [...spec.required, ...spec.optional];
      errors.push(forbidden(child(path, attr), `${attr} is not an attribute of toxic ${toxic.type} (it takes ${accepted.length ? accepted.join(', ') : 'no attributes'})`));
    }
  }
  for (const attr of TOXIC_TIME_ATTRIBUTES) {
    const v = toxic[attr];
    if (typeof v === 'string') errors.push(...durationErrors(v, child(path, attr)));
    else if (typeof v === 'number' && v < 0) errors.push(invalid(child(path, attr), v, 'must not be negative'));
  }
  return errors;
}

function networkErrors(net: NetworkFault, path: string): FieldError[] {
  const errors: FieldError[] = [];
  const faults = [net.delay, net.loss, net.duplicate, net.corrupt, net.reorder, net.rate];
  if (faults.every((f) => f === undefined)) errors.push(required(`${path}.delay|loss|duplicate|corrupt|reorder|rate`));
  if (net.delay) {
    errors.push(...durationErrors(net.delay.latency, child(child(path, 'delay'), 'latency')));
    if (net.delay.jitter !== undefined) errors.push(...durationErrors(net.delay.jitter, child(child(path, 'delay'), 'jitter')));
  }
  if (net.reorder && !net.delay) errors.push(invalid(child(path, 'reorder'), net.reorder, 'netem reorders only delayed packets: set network.delay too'));
  if (net.rate !== undefined) {
    const rate = parseTcRate(net.rate);
    if ('error' in rate) errors.push(invalid(child(path, 'rate'), net.rate, rate.error));
  }
  if (net.device !== undefined && !DEVICE_NAME.test(net.device)) {
    errors.push(invalid(child(path, 'device'), net.device, 'must be a network interface name (1-15 of A-Z a-z 0-9 _ . -)'));
  }
  return errors;
}

function ioErrors(fault: IoFault, path: string): FieldError[] {
  const errors: FieldError[] = [];
  if (!fault.volumePath.startsWith('/')) errors.push(invalid(child(path, 'volumePath'), fault.volumePath, 'must be an absolute path'));
  const root = fault.volumePath.replace(/\/+$/, '');
  if (fault.path !== undefined && fault.path !== root && !fault.path.startsWith(`${root}/`)) {
    errors.push(invalid(child(path, 'path'), fault.path, `must be a glob under volumePath ${fault.volumePath}`));
  }
  if (fault.delay !== undefined) errors.push(...durationErrors(fault.delay, child(path, 'delay')));
  if (fault.errno === undefined && (fault.delay === undefined || durationMs(fault.delay) === 0)) {
    errors.push({ ...required(`${path}.errno|delay`), message: 'Required value: an IO fault returns an errno, adds a delay, or both' });
  }
  return errors;
}

function timeErrors(time: TimeFault, path: string): FieldError[] {
  const errors = durationErrors(time.offset, child(path, 'offset'), { signed: true, positive: true });
  for (const name of duplicates(time.containers ?? [])) errors.push(invalid(child(path, 'containers'), name, 'container names must be unique'));
  return errors;
}

// ------------------------------------------------------------ ChaosTenant

function tenantSpecErrors(spec: ChaosTenantSpec, path: string): FieldError[] {
  const errors: FieldError[] = [];
  if ((spec.namespaces?.length ?? 0) === 0 && spec.namespaceSelector === undefined) {
    errors.push({ ...required(`${path}.namespaces|namespaceSelector`), message: 'Required value: a tenant owns namespaces by name, by selector, or both' });
  }
  for (const ns of duplicates(spec.namespaces ?? [])) errors.push(invalid(child(path, 'namespaces'), ns, 'listed twice'));
  errors.push(...labelSelectorErrors(spec.namespaceSelector, child(path, 'namespaceSelector')));
  (spec.subjects ?? []).forEach((s, i) => {
    const at = child(index(child(path, 'subjects'), i), 'namespace');
    if (s.kind !== 'ServiceAccount' && s.namespace !== undefined) errors.push(forbidden(at, `namespace applies to ServiceAccount subjects only, not ${s.kind}`));
  });
  const allow = child(path, 'allow');
  spec.allow.kinds.forEach((kind, i) => {
    if (!FAULT_KINDS.includes(kind)) errors.push(unsupported(index(child(allow, 'kinds'), i), kind, FAULT_KINDS));
  });
  const limits = spec.allow.limits ?? {};
  const limitsPath = child(allow, 'limits');
  for (const key of ['maxDelay', 'maxDuration', 'maxTimeOffset', 'maxAbortWindow'] as const) {
    const v = limits[key];
    if (v !== undefined) errors.push(...durationErrors(v, child(limitsPath, key)));
  }
  return errors;
}
