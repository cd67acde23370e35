import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../common/files.ts';
import type { LiveFaultPlan } from '../../policies/types.ts';

export const HANDOFF_FILE = 'handoff.json';

/** Faults the kernel could not apply here, for the proxy to apply instead. */
export interface Handoff {
  networkDelay?: LiveFaultPlan['networkDelay'];
}

/**
 * Written on every run, even empty, so a re-run init replaces a stale hand-off
 * and the proxy can tell "init ran, nothing to take over" from "init never ran".
 * Written atomically: the proxy never reads half a file.
 */
export async function writeHandoff(runDir: string, handoff: Handoff): Promise<string> {
  await mkdir(runDir, { recursive: true });
  const path = join(runDir, HANDOFF_FILE);
  await writeFileAtomic(path, `${JSON.stringify(handoff)}\n`, 0o644);
  return path;
}
