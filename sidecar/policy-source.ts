import type { LiveFaultPlan } from '../contract/plans.ts';

/**
 * Where the sidecar learns its live plan. A source pushes a complete plan on
 * every change; expiry is not its job (the sidecar enforces expiresAt itself,
 * so faults end on time even when the source is gone). On trouble a source
 * keeps quiet and the last plan stays, expiring on schedule.
 */
export interface PolicySource {
  readonly name: string;
  start(onPlan: (plan: LiveFaultPlan) => void): Promise<void>;
  close(): Promise<void>;
}
