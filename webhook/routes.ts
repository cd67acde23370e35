// The admission route table. A new webhook is one line here, e.g.
//   { path: '/validate/chaospolicies', name: 'validate-chaospolicies', handler: createPolicyValidator(ctx) },
// plus its entry in the ValidatingWebhookConfiguration under manifests/.
import type { AdmissionRoute, WebhookContext } from './app.ts';
import type { ClusterView } from './cache/cluster-cache.ts';
import type { InjectionConfig } from './injection-config.ts';
import { createInjector } from './inject.ts';
import { createPolicyPlanner } from './kernel-plans.ts';
import { createMutatePodsHandler } from './mutate.ts';
import { createPolicyValidator } from './validate-policies.ts';
import { createTenantValidator } from './validate-tenants.ts';
import { BoundedLabels } from '../common/bounded-labels.ts';
import { MAX_TENANT_SERIES } from './metrics.ts';

function countDenial(ctx: WebhookContext): (tenant: string, why: string) => void {
  const tenants = new BoundedLabels(MAX_TENANT_SERIES);
  return (tenant, why) => ctx.metrics.policyDenials.labels(tenants.label(tenant), why).inc();
}

/** `cluster` is the informer cache; without one, pods get no policy-driven faults and policy writes are refused. */
export function admissionRoutes(ctx: WebhookContext, injection: InjectionConfig, cluster?: ClusterView): AdmissionRoute[] {
  const planner = cluster ? createPolicyPlanner(cluster) : undefined;
  return [
    {
      path: '/mutate/pods',
      name: 'mutate-pods',
      handler: createMutatePodsHandler({
        injector: createInjector(injection),
        metrics: ctx.metrics,
        log: ctx.log,
        ...(planner ? { planFor: planner.planFor } : {}),
        ...(cluster ? { namespace: (name: string) => cluster.namespace(name) } : {}),
      }),
    },
    { path: '/validate/chaospolicies', name: 'validate-chaospolicies', handler: createPolicyValidator({ cluster, log: ctx.log, denied: countDenial(ctx) }) },
    { path: '/validate/chaostenants', name: 'validate-chaostenants', handler: createTenantValidator({ cluster, log: ctx.log }) },
  ];
}
