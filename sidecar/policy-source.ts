import type { LiveFaultPlan } from '../contract/plans.ts';
import type { Breach } from './guard.ts';

/**
 * Where the sidecar learns its live plan. A source pushes a complete plan on
 * every change; expiry is not its job (the sidecar enforces expiresAt itself,
 * so faults end on time even when the source is gone). On trouble a source
 * keeps quiet and the last plan stays, expiring on schedule.
 */
export interface PolicySource {
  readonly name: string;
  start(onPlan: (plan: LiveFaultPlan) => void): Promise<void>;
  /** A guard tripped in this pod: tell the policy's other pods and the reconciler (best effort). */
  reportAbort?(breach: Breach): void;
  close(): Promise<void>;
}
