import { constants as osConstants } from 'node:os';
import type {
  InitPlan,
  IoMethod,
  KernelFaultPlan,
  PlannedIoFault,
  PlannedNetworkFault,
  PlannedTimeFault,
  TrafficWiring,
} from '../../policies/types.ts';
import { DEVICE_NAME, IO_METHODS } from '../../policies/vocabulary.ts';

/** A plan that cannot be applied as written; the message names the field. */
export class PlanError extends Error {}

type Obj = Record<string, unknown>;

function fail(path: string, want: string, got: unknown): never {
  throw new PlanError(`${path} must be ${want}, got ${JSON.stringify(got) ?? String(got)}`);
}
function obj(v: unknown, path: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, 'an object', v);
  return v as Obj;
}
function arr(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) fail(path, 'an array', v);
  return v;
}
function num(v: unknown, path: string, min: number, max: number, integer = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    fail(path, `${integer ? 'an integer' : 'a number'} in [${min}, ${max}]`, v);
  }
  return v;
}
function text(v: unknown, path: string): string {
  if (typeof v !== 'string' || v === '') fail(path, 'a non-empty string', v);
  return v;
}
const port = (v: unknown, path: string): number => num(v, path, 1, 65535, true);
const percent = (v: unknown, path: string): number => num(v, path, 0, 100);
const epochMs = (v: unknown, path: string): number => num(v, path, 0, Number.MAX_SAFE_INTEGER, true);
const optional = <T>(o: Obj, key: string, path: string, parse: (v: unknown, p: string) => T): T | undefined =>
  o[key] === undefined ? undefined : parse(o[key], `${path}.${key}`);

function wiring(v: unknown): TrafficWiring {
  const w = obj(v, 'wiring');
  const inbound = arr(w.inbound ?? [], 'wiring.inbound').map((e, i) => {
    const o = obj(e, `wiring.inbound[${i}]`);
    return { port: port(o.port, `wiring.inbound[${i}].port`), listenPort: port(o.listenPort, `wiring.inbound[${i}].listenPort`) };
  });
  const outbound = arr(w.outbound ?? [], 'wiring.outbound').map((e, i) => {
    const o = obj(e, `wiring.outbound[${i}]`);
    return {
      host: text(o.host, `wiring.outbound[${i}].host`),
      port: port(o.port, `wiring.outbound[${i}].port`),
      listenPort: port(o.listenPort, `wiring.outbound[${i}].listenPort`),
    };
  });
  const excludeInboundPorts = arr(w.excludeInboundPorts ?? [], 'wiring.excludeInboundPorts').map((p, i) =>
    port(p, `wiring.excludeInboundPorts[${i}]`),
  );
  // One listener per redirected port is the whole wiring contract: a listen
  // port shared by two targets would send traffic to the wrong place.
  const listeners = [...inbound, ...outbound].map((e) => e.listenPort);
  const dup = listeners.find((p, i) => listeners.indexOf(p) !== i);
  if (dup !== undefined) throw new PlanError(`wiring: listenPort ${dup} is used twice; every redirected port needs its own listener`);
  const inPorts = inbound.map((e) => e.port);
  const dupIn = inPorts.find((p, i) => inPorts.indexOf(p) !== i);
  if (dupIn !== undefined) throw new PlanError(`wiring.inbound: port ${dupIn} is wired twice`);
  const out: TrafficWiring = { proxyUid: num(w.proxyUid, 'wiring.proxyUid', 0, 2 ** 32 - 2, true), inbound, outbound, excludeInboundPorts };
  if (w.toxiproxyPort !== undefined) out.toxiproxyPort = port(w.toxiproxyPort, 'wiring.toxiproxyPort');
  return out;
}

function correlated(v: unknown, path: string): { percent: number; correlation: number } {
  const o = obj(v, path);
  return { percent: percent(o.percent, `${path}.percent`), correlation: percent(o.correlation ?? 0, `${path}.correlation`) };
}

function network(v: unknown): PlannedNetworkFault {
  const p = 'kernel.network';
  const o = obj(v, p);
  const device = o.device === undefined ? 'eth0' : text(o.device, `${p}.device`);
  // Interface names end up inside nft string literals and tc argv: keeping them
  // to DEVICE_NAME's characters means a plan can never smuggle a quote into a ruleset.
  if (!DEVICE_NAME.test(device)) fail(`${p}.device`, 'an interface name (letters, digits, _ . -, at most 15)', device);
  const fault: PlannedNetworkFault = { chaosId: text(o.chaosId, `${p}.chaosId`), expiresAt: epochMs(o.expiresAt, `${p}.expiresAt`), device };
  const delay = optional(o, 'delay', p, (d, dp) => {
    const dd = obj(d, dp);
    return {
      latencyMs: num(dd.latencyMs, `${dp}.latencyMs`, 0, 3_600_000),
      jitterMs: num(dd.jitterMs ?? 0, `${dp}.jitterMs`, 0, 3_600_000),
      correlation: percent(dd.correlation ?? 0, `${dp}.correlation`),
    };
  });
  if (delay) fault.delay = delay;
  const loss = optional(o, 'loss', p, correlated);
  if (loss) fault.loss = loss;
  const duplicate = optional(o, 'duplicate', p, correlated);
  if (duplicate) fault.duplicate = duplicate;
  const corrupt = optional(o, 'corrupt', p, correlated);
  if (corrupt) fault.corrupt = corrupt;
  const reorder = optional(o, 'reorder', p, (r, rp) => ({
    ...correlated(r, rp),
    gap: num(obj(r, rp).gap ?? 0, `${rp}.gap`, 0, 2 ** 31 - 1, true),
  }));
  if (reorder) fault.reorder = reorder;
  const rate = optional(o, 'rateBitsPerSec', p, (r, rp) => num(r, rp, 8, 2 ** 53, true));
  if (rate !== undefined) fault.rateBitsPerSec = rate;
  return fault;
}

function io(v: unknown, i: number): PlannedIoFault {
  const p = `kernel.io[${i}]`;
  const o = obj(v, p);
  const volumePath = text(o.volumePath, `${p}.volumePath`);
  if (!volumePath.startsWith('/')) fail(`${p}.volumePath`, 'an absolute path', volumePath);
  const methods = arr(o.methods ?? IO_METHODS, `${p}.methods`).map((m, j) => {
    if (!IO_METHODS.includes(m as IoMethod)) fail(`${p}.methods[${j}]`, `one of ${IO_METHODS.join(', ')}`, m);
    return m as IoMethod;
  });
  const fault: PlannedIoFault = {
    chaosId: text(o.chaosId, `${p}.chaosId`),
    expiresAt: epochMs(o.expiresAt, `${p}.expiresAt`),
    volumePath: volumePath.replace(/\/+$/, '') || '/',
    path: o.path === undefined ? '**' : text(o.path, `${p}.path`),
    methods,
    delayMs: num(o.delayMs ?? 0, `${p}.delayMs`, 0, 3_600_000),
    percent: percent(o.percent ?? 100, `${p}.percent`),
  };
  if (o.errno !== undefined) {
    const errno = text(o.errno, `${p}.errno`);
    if (!(errno in osConstants.errno)) fail(`${p}.errno`, 'an errno name such as EIO or ENOSPC', errno);
    fault.errno = errno;
  }
  if (fault.errno === undefined && fault.delayMs === 0) throw new PlanError(`${p}: needs an errno, a delayMs, or both`);
  return fault;
}

function time(v: unknown): PlannedTimeFault {
  const o = obj(v, 'kernel.time');
  return {
    chaosId: text(o.chaosId, 'kernel.time.chaosId'),
    expiresAt: epochMs(o.expiresAt, 'kernel.time.expiresAt'),
    // ±100 years bounds typos in units (ms vs s) without limiting real use.
    offsetMs: num(o.offsetMs, 'kernel.time.offsetMs', -3.2e12, 3.2e12),
    containers: arr(o.containers ?? [], 'kernel.time.containers').map((c, i) => text(c, `kernel.time.containers[${i}]`)),
  };
}

function kernel(v: unknown): KernelFaultPlan {
  const k = obj(v ?? {}, 'kernel');
  const plan: KernelFaultPlan = { io: arr(k.io ?? [], 'kernel.io').map(io) };
  if (k.network !== undefined) plan.network = network(k.network);
  if (k.time !== undefined) plan.time = time(k.time);
  return plan;
}

/** Parses and validates an InitPlan (the FAULTLINE_PLAN JSON the webhook renders). */
export function parseInitPlan(json: string, source = 'FAULTLINE_PLAN'): InitPlan {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new PlanError(`${source} is not valid JSON: ${(err as Error).message}`);
  }
  try {
    const o = obj(raw, 'plan');
    return { version: text(o.version, 'version'), wiring: wiring(o.wiring), kernel: kernel(o.kernel) };
  } catch (err) {
    if (err instanceof PlanError) throw new PlanError(`invalid plan in ${source}: ${err.message}`);
    throw err;
  }
}
