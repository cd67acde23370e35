// The admission route table. A new webhook is one line here, e.g.
//   { path: '/validate/chaospolicies', name: 'validate-chaospolicies', handler: createPolicyValidator(ctx) },
// plus its entry in the ValidatingWebhookConfiguration under manifests/.
import type { AdmissionRoute, WebhookContext } from './app.ts';
import type { InjectionConfig } from './config.ts';
import { createInjector } from './inject.ts';
import { createMutatePodsHandler } from './mutate.ts';

export function admissionRoutes(ctx: WebhookContext, injection: InjectionConfig): AdmissionRoute[] {
  return [
    {
      path: '/mutate/pods',
      name: 'mutate-pods',
      handler: createMutatePodsHandler({ injector: createInjector(injection), metrics: ctx.metrics, log: ctx.log }),
    },
  ];
}
