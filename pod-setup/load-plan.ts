import { readFile } from 'node:fs/promises';
import type { InitPlan } from '../contract/plans.ts';
import { PLAN_ENV } from '../contract/pod-layout.ts';
import { decodeInitPlan, PlanError } from '../contract/codec.ts';

/**
 * The plan from --plan-file or $FAULTLINE_PLAN (the webhook's contract), as a
 * PlanError naming the source for every way it can be missing or wrong.
 */
export async function loadInitPlan(planFile: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<InitPlan> {
  let text: string | undefined;
  if (planFile !== undefined) {
    try {
      text = await readFile(planFile, 'utf8');
    } catch (err) {
      throw new PlanError(`cannot read --plan-file ${planFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  } else {
    text = env[PLAN_ENV];
  }
  if (text === undefined || text.trim() === '') throw new PlanError(`no plan: set ${PLAN_ENV} or pass --plan-file`);
  return decodeInitPlan(text, planFile ?? PLAN_ENV);
}
