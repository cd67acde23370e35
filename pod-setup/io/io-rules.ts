import { constants as osConstants } from 'node:os';
import picomatch from 'picomatch';
import type { IoMethod } from '../../policies/types.ts';
import type { PlannedIoFault } from '../../contract/plans.ts';

export interface IoRule {
  fault: PlannedIoFault;
  matches: (relativePath: string) => boolean;
  /** Negative errno, as FUSE answers; undefined = delay only. */
  errno?: number;
}

/** What one filesystem call suffers: an added delay and/or an error. */
export interface IoDecision {
  delayMs: number;
  errno?: number;
}

/**
 * The policy's glob may be written relative to the volume ("logs/*.log") or
 * as the app sees it ("/data/logs/*.log" for volumePath /data); both mean the
 * same files. Matching is on the path relative to the volume root.
 */
export function relativeGlob(volumePath: string, glob: string): string {
  const prefix = `${volumePath.replace(/\/+$/, '')}/`;
  if (glob === volumePath) return '';
  if (glob.startsWith(prefix)) return glob.slice(prefix.length);
  return glob.replace(/^\/+/, '');
}

export function compileRules(faults: readonly PlannedIoFault[]): IoRule[] {
  return faults.map((fault) => {
    const glob = relativeGlob(fault.volumePath, fault.path);
    // `dot`: a chaos glob of "**" means every file, hidden ones included.
    const isMatch = glob === '' ? (p: string) => p === '' : picomatch(glob, { dot: true });
    const rule: IoRule = { fault, matches: isMatch };
    if (fault.errno !== undefined) {
      const n = osConstants.errno[fault.errno as keyof typeof osConstants.errno];
      if (n === undefined) throw new Error(`unknown errno ${fault.errno}`);
      rule.errno = -n;
    }
    return rule;
  });
}

/** FUSE paths are "/a/b" from the mount root; rules see "a/b" ("" is the root). */
export function toRelative(fusePath: string): string {
  return fusePath.replace(/^\/+/, '');
}

/**
 * Decides a call's fate. Every live rule matching the method and path rolls
 * its own percent; the delays of the rules that fire add up (two policies
 * delaying the same file both count) and the first firing rule with an errno
 * supplies the error. Expired rules are inert: the mount stays, but passes
 * everything through once the policy's time is up.
 */
export function decideIoCall(
  rules: readonly IoRule[],
  method: IoMethod,
  fusePath: string,
  now: number,
  random: () => number = Math.random,
): IoDecision | undefined {
  let decision: IoDecision | undefined;
  const rel = toRelative(fusePath);
  for (const rule of rules) {
    const f = rule.fault;
    if (f.expiresAt <= now || !f.methods.includes(method) || !rule.matches(rel)) continue;
    if (random() * 100 >= f.percent) continue;
    decision ??= { delayMs: 0 };
    decision.delayMs += f.delayMs;
    if (decision.errno === undefined && rule.errno !== undefined) decision.errno = rule.errno;
  }
  return decision;
}
