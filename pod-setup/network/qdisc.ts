import type { PlannedNetworkFault } from '../../contract/plans.ts';
import { run, runOrThrow } from '../exec.ts';

/** tc time: whole milliseconds stay readable, fractions go to microseconds. */
export function tcTime(ms: number): string {
  return Number.isInteger(ms) ? `${ms}ms` : `${Math.round(ms * 1000)}us`;
}

function tcPercent(p: number): string {
  return `${p}%`;
}

/** `P% [C%]`: netem's correlation is optional and 0 means "independent". */
function correlated(p: { percent: number; correlation: number }): string[] {
  return p.correlation > 0 ? [tcPercent(p.percent), tcPercent(p.correlation)] : [tcPercent(p.percent)];
}

/** Does the fault need netem at all (rate alone is served by tbf everywhere)? */
export function needsNetem(f: PlannedNetworkFault): boolean {
  return f.delay !== undefined || f.loss !== undefined || f.duplicate !== undefined || f.corrupt !== undefined || f.reorder !== undefined;
}

/** The one netem root qdisc carrying every network fault, in Chaos Mesh's / tc's vocabulary. */
export function netemArgv(f: PlannedNetworkFault): string[] {
  const argv = ['tc', 'qdisc', 'replace', 'dev', f.device, 'root', 'netem'];
  if (f.delay) {
    argv.push('delay', tcTime(f.delay.latencyMs));
    // tc reads the third value as correlation only after a jitter, so the
    // jitter is spelled out (as 0ms) whenever a correlation is set.
    if (f.delay.jitterMs > 0 || f.delay.correlation > 0) argv.push(tcTime(f.delay.jitterMs));
    if (f.delay.correlation > 0) argv.push(tcPercent(f.delay.correlation));
  }
  if (f.loss) argv.push('loss', ...correlated(f.loss));
  if (f.duplicate) argv.push('duplicate', ...correlated(f.duplicate));
  if (f.corrupt) argv.push('corrupt', ...correlated(f.corrupt));
  if (f.reorder) {
    argv.push('reorder', ...correlated(f.reorder));
    if (f.reorder.gap > 0) argv.push('gap', String(f.reorder.gap));
  }
  if (f.rateBitsPerSec !== undefined) argv.push('rate', `${f.rateBitsPerSec}bit`);
  return argv;
}

/** Largest Ethernet frame tbf must always be able to pass in one go. */
const MAX_FRAME_BYTES = 1514;
/**
 * One timer tick at HZ=100, the coarsest Linux builds use: the bucket must hold
 * at least what the link drains between two refills, or tbf under-delivers.
 */
const TICK_SECONDS = 0.01;
/** Queue allowed to build before tbf drops: bounds added latency, leaves TCP room. */
export const TBF_LATENCY_MS = 50;

/** burst = max(rate × one tick, two full frames), in bytes. */
export function tbfBurstBytes(rateBitsPerSec: number): number {
  return Math.max(Math.ceil((rateBitsPerSec / 8) * TICK_SECONDS), 2 * MAX_FRAME_BYTES);
}

export function tbfArgv(device: string, rateBitsPerSec: number): string[] {
  return [
    'tc', 'qdisc', 'replace', 'dev', device, 'root', 'tbf',
    'rate', `${rateBitsPerSec}bit`,
    'burst', String(tbfBurstBytes(rateBitsPerSec)),
    'latency', tcTime(TBF_LATENCY_MS),
  ];
}

/**
 * The kernel's answer when sch_netem is neither built in nor loadable: iproute2
 * with extack prints "Specified qdisc kind is unknown.", older ones only the
 * ENOENT from RTNETLINK.
 */
export function isQdiscKindUnknown(stderr: string): boolean {
  return /Specified qdisc kind is unknown|RTNETLINK answers: No such file or directory/i.test(stderr);
}

export type NetemOutcome = { applied: true } | { applied: false; reason: string };

/**
 * Applies netem, telling "the kernel has no sch_netem" (a fallback case) apart
 * from every other failure (a bad plan or a missing device: an error).
 * Trying is the only reliable probe: netem may be built in (absent from
 * /proc/modules) or loadable on demand.
 */
export async function applyNetem(f: PlannedNetworkFault): Promise<NetemOutcome> {
  const argv = netemArgv(f);
  const result = await run(argv);
  if (result.code === 0) return { applied: true };
  if (isQdiscKindUnknown(result.stderr)) return { applied: false, reason: 'kernel lacks sch_netem' };
  throw new Error(`${argv.join(' ')} failed (exit ${result.code}): ${result.stderr.trim()}`);
}

export async function applyTbf(device: string, rateBitsPerSec: number): Promise<void> {
  await runOrThrow(tbfArgv(device, rateBitsPerSec));
}

/** Root qdisc kind on a device ("noqueue", "tbf", "netem", …). */
export async function rootQdiscKind(device: string): Promise<string | undefined> {
  const { stdout } = await runOrThrow(['tc', 'qdisc', 'show', 'dev', device, 'root']);
  return /^qdisc (\S+)/m.exec(stdout)?.[1];
}

/** Removes Faultline's root qdisc at expiry; leaves anyone else's alone. */
export async function removeOwnRootQdisc(device: string): Promise<boolean> {
  const kind = await rootQdiscKind(device);
  if (kind !== 'tbf' && kind !== 'netem') return false;
  await runOrThrow(['tc', 'qdisc', 'del', 'dev', device, 'root']);
  return true;
}
