import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LiveFaultPlan } from '../../policies/types.ts';

export const HANDOFF_FILE = 'handoff.json';

/** Faults the kernel could not apply here, for the proxy to apply instead. */
export interface Handoff {
  networkDelay?: LiveFaultPlan['networkDelay'];
}

/**
 * Written on every run, even empty, so a re-run init replaces a stale hand-off
 * and the proxy can tell "init ran, nothing to take over" from "init never ran".
 * Write-then-rename: the proxy never reads half a file.
 */
export async function writeHandoff(runDir: string, handoff: Handoff): Promise<string> {
  await mkdir(runDir, { recursive: true });
  const path = join(runDir, HANDOFF_FILE);
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(handoff)}\n`, { mode: 0o644 });
  await rename(tmp, path);
  return path;
}
