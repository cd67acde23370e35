// Builders for ChaosPolicy / ChaosTenant objects in tests: a valid minimal
// object, with the parts under test overridden.

import type { ChaosPolicy, ChaosPolicySpec, ChaosTenant, ChaosTenantSpec } from '../../policies/types.ts';
import { API_GROUP_VERSION } from '../../policies/wellknown.ts';

export const T0 = Date.parse('2025-01-01T00:00:00Z');

export function policy(spec: Partial<ChaosPolicySpec>, meta: Partial<ChaosPolicy['metadata']> = {}, status?: ChaosPolicy['status']): ChaosPolicy {
  return {
    apiVersion: API_GROUP_VERSION,
    kind: 'ChaosPolicy',
    metadata: { name: 'p', namespace: 'shop', uid: 'uid-p', creationTimestamp: new Date(T0).toISOString(), ...meta },
    spec: { duration: '10m', ...spec },
    ...(status ? { status } : {}),
  };
}

export function tenant(allow: Partial<ChaosTenantSpec['allow']> = {}, spec: Partial<ChaosTenantSpec> = {}, name = 'shop'): ChaosTenant {
  return {
    apiVersion: API_GROUP_VERSION,
    kind: 'ChaosTenant',
    metadata: { name },
    spec: { namespaces: ['shop'], ...spec, allow: { kinds: [], ...allow } },
  };
}
