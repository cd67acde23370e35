// handoff.json: faults the init program could not apply in the kernel, which
// the proxy approximates instead. Today that is a netem delay on a node whose
// kernel lacks sch_netem. netem delays every egress packet; the proxy can only
// delay what passes through it, so it holds each inbound connection's first
// bytes (raw and Toxiproxy paths) and each inbound HTTP request by latency ±
// jitter (uniform; netem's correlation is not modelled). Requests on one
// keep-alive connection are each delayed, as packets of each would be.

import { readFile } from 'node:fs/promises';
import type { LiveFaultPlan } from '../policies/types.ts';
import { jitteredMs } from './http-faults.ts';
import { parsePlan } from './plan.ts';

/** The handed-off network delay, or undefined when there is no file. Throws on a malformed file. */
export async function readHandoff(file: string): Promise<LiveFaultPlan['networkDelay']> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not JSON: ${(err as Error).message}`);
  }
  const networkDelay = (json as { networkDelay?: unknown } | null)?.networkDelay;
  if (networkDelay === undefined) return undefined;
  try {
    return parsePlan({ networkDelay }).networkDelay;
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
}

export function sampleDelayMs(d: NonNullable<LiveFaultPlan['networkDelay']>, random: () => number = Math.random): number {
  return jitteredMs(d.latencyMs, d.jitterMs, random);
}
