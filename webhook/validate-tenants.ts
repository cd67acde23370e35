// POST /validate/chaostenants: a tenant must be valid on its own and must not
// claim a namespace another tenant owns — a policy's limits come from exactly
// one tenant.
import type { Logger } from '../common/log.ts';
import { formatFieldErrors } from '../policies/field-error.ts';
import { formatTenantConflicts, tenantConflicts } from '../policies/tenancy.ts';
import type { ChaosTenant } from '../policies/types.ts';
import { validateTenant } from '../policies/validate.ts';
import type { Handler } from './admission.ts';
import type { ClusterView } from './cache/cluster-cache.ts';
import { deny, NO_CLUSTER_VIEW, outOfScope } from './validate-policies.ts';

export function createTenantValidator(deps: { cluster: ClusterView | undefined; log: Logger }): Handler {
  return async (request) => {
    if (outOfScope(request, 'chaostenants')) return { allowed: true, result: 'ignored' };
    const errors = validateTenant(request.object);
    const name = request.name ?? '';
    const context = { tenant: name, user: request.userInfo.username, operation: request.operation, uid: request.uid };
    if (errors.length > 0) {
      deps.log.info({ ...context, errors: errors.length }, 'tenant denied: invalid');
      return deny(`ChaosTenant is invalid: ${formatFieldErrors(errors)}`);
    }
    const cluster = deps.cluster;
    if (!cluster) return deny(NO_CLUSTER_VIEW);
    const candidate = request.object as ChaosTenant;
    const conflicts = tenantConflicts(candidate, cluster.tenants(), cluster.namespaces());
    if (conflicts.length > 0) {
      const message = formatTenantConflicts(candidate.metadata?.name ?? name, conflicts);
      deps.log.info({ ...context, conflicts }, 'tenant denied: namespace overlap');
      return deny(message);
    }
    deps.log.info(context, 'tenant admitted');
    return { allowed: true };
  };
}
