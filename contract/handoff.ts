// handoff.json, in the run volume: faults pod setup could not apply in
// Linux (tc), which the proxy approximates instead. Today that is a netem delay
// on a node without sch_netem. netem delays every egress packet; the
// proxy can only delay what passes through it, so it holds each inbound
// connection's first bytes (raw and Toxiproxy paths) and each inbound HTTP
// request by latency ± jitter (uniform; netem's correlation is not modelled).

import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../common/files.ts';
import { decodeHandoff, encodeJson, type Handoff } from './codec.ts';
import { HANDOFF_FILE } from './pod-layout.ts';

export type { Handoff };

/**
 * Written on every run, even empty, so a re-run init replaces a stale hand-off
 * and the proxy can tell "init ran, nothing to take over" from "init never ran".
 * Written atomically: the proxy never reads half a file.
 */
export async function writeHandoff(runDir: string, handoff: Handoff): Promise<string> {
  await mkdir(runDir, { recursive: true });
  const path = join(runDir, HANDOFF_FILE);
  await writeFileAtomic(path, `${encodeJson(handoff)}\n`, 0o644);
  return path;
}

/** The handed-off network delay, or undefined when there is no file. Throws a PlanError on a malformed file. */
export async function readHandoff(file: string): Promise<Handoff['networkDelay']> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return decodeHandoff(text, file).networkDelay;
}
