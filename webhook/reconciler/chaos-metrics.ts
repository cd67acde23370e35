// Metrics by policy from the reconciler, which sees every policy's status:
// pods targeted, pods whose datapath confirms the faults, and whether it is
// active. The policy label is bounded (common/bounded-labels.ts): past
// MAX_POLICY_SERIES policies, the rest are summed under policy="other".
import { Gauge, type Registry } from 'prom-client';
import { BoundedLabels, OTHER } from '../../common/bounded-labels.ts';
import type { ChaosPolicyStatus } from '../../policies/types.ts';

export const MAX_POLICY_SERIES = 200;

interface Values {
  targeted: number;
  applied: number;
  active: number;
}

export class ChaosMetrics {
  readonly #labels = new BoundedLabels(MAX_POLICY_SERIES);
  readonly #values = new Map<string, Values>();
  readonly #other: Values = { targeted: 0, applied: 0, active: 0 };
  readonly #gauges: Record<keyof Values, Gauge<'policy'>>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.#gauges = {
      targeted: new Gauge({ name: 'faultline_policy_targeted_pods', help: 'Pods a ChaosPolicy targets, by policy (namespace/name; "other" past the series cap)', labelNames: ['policy'], registers }),
      applied: new Gauge({ name: 'faultline_policy_applied_pods', help: 'Targeted pods whose datapath confirms the policy\'s faults, by policy', labelNames: ['policy'], registers }),
      active: new Gauge({ name: 'faultline_policy_active', help: '1 while the policy\'s faults are on (condition Active), by policy; "other" counts them', labelNames: ['policy'], registers }),
    };
  }

  policyStatus(key: string, status: ChaosPolicyStatus): void {
    const v: Values = {
      targeted: status.targetedPods ?? 0,
      applied: status.appliedPods ?? 0,
      active: status.conditions?.find((c) => c.type === 'Active')?.status === 'True' ? 1 : 0,
    };
    this.#set(key, v);
  }

  forget(key: string): void {
    this.#set(key, undefined);
  }

  #set(key: string, v: Values | undefined): void {
    const before = this.#values.get(key);
    if (v) this.#values.set(key, v);
    else this.#values.delete(key);
    const kinds = Object.keys(this.#gauges) as Array<keyof Values>;
    // A policy summed under "other" stays there until it goes: series never jump between labels.
    const own = this.#labels.has(key) || (before === undefined && v !== undefined && this.#labels.label(key) === key);
    if (own) {
      if (v) for (const k of kinds) this.#gauges[k].labels(key).set(v[k]);
      else if (this.#labels.release(key)) for (const g of Object.values(this.#gauges)) g.remove(key);
      return;
    }
    for (const k of kinds) {
      this.#other[k] += (v?.[k] ?? 0) - (before?.[k] ?? 0);
      this.#gauges[k].labels(OTHER).set(this.#other[k]);
    }
  }
}
