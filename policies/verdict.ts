// The admission verdict on a ChaosPolicy: the one function the validating
// webhook and `faultline check` share, so both print the same words.

import { checkAllowlist, formatDenial, type UserInfo, type Violation } from './allowlist.ts';
import { applyDefaults, type DefaultedPolicySpec } from './defaults.ts';
import { formatFieldErrors, type FieldError } from './field-error.ts';
import { faultSummary } from './faults.ts';
import { tenantForNamespace, type NamespaceInfo } from './tenancy.ts';
import type { ChaosPolicySpec, ChaosTenant } from './types.ts';
import { inspectPolicy, validateTenant } from './validate.ts';
import { CHAOS_LABEL, CHAOS_LABEL_ENABLED, POD_SECURITY_ENFORCE_LABEL, POD_SECURITY_POLICY_NAME } from './wellknown.ts';

export interface VerdictInput {
  /** The ChaosPolicy as received (AdmissionReview object or YAML document); any shape. */
  policy: unknown;
  /** The policy's namespace with its labels (the opt-in label is required). */
  namespace: NamespaceInfo;
  /** Every ChaosTenant; the namespace's owner is resolved here. */
  tenants: readonly ChaosTenant[];
  /** The author (AdmissionReview userInfo); undefined skips the author check, for offline use. */
  user: UserInfo | undefined;
}

export interface Verdict {
  allowed: boolean;
  /** Empty when allowed; otherwise the denial, ready for AdmissionResponse.status.message. */
  message: string;
  /** For AdmissionResponse.warnings (kubectl prints them as "Warning: …"). */
  warnings: string[];
  /** The owning tenant's name, when one was found. */
  tenant?: string;
  /** Fault kinds used, as for .status.faults, when the policy is valid. */
  faults?: string;
  fieldErrors: FieldError[];
  violations: Violation[];
}

export function admissionVerdict(input: VerdictInput): Verdict {
  const inspection = inspectPolicy(input.policy);
  const warnings = inspection.unknownFields.map((path) => `unknown field "${path}"`);
  if (inspection.errors.length > 0) {
    return { allowed: false, message: `ChaosPolicy is invalid: ${formatFieldErrors(inspection.errors)}`, warnings, fieldErrors: inspection.errors, violations: [] };
  }
  // An invalid tenant never grants anything: it is left out, so its namespaces fail closed.
  const tenants = input.tenants.filter((t) => validateTenant(t).length === 0);
  const judged = judgeValidPolicy(applyDefaults((input.policy as { spec: ChaosPolicySpec }).spec), input.namespace, tenants, input.user);
  return { ...judged, warnings: [...warnings, ...judged.warnings] };
}

/**
 * The verdict on a policy already validated and defaulted, against tenants
 * already validated: what the webhook's cache keeps per policy, so a pod
 * review decides from the tenant's current allowlist without re-validating.
 */
export function judgeValidPolicy(spec: DefaultedPolicySpec, ns: NamespaceInfo, validTenants: readonly ChaosTenant[], user: UserInfo | undefined): Verdict {
  const warnings: string[] = [];
  const deny = (message: string, extra: Partial<Verdict> = {}): Verdict => ({ allowed: false, message, warnings, fieldErrors: [], violations: [], ...extra });
  if (ns.labels?.[CHAOS_LABEL] !== CHAOS_LABEL_ENABLED) {
    return deny(`namespace "${ns.name}" is not opted in to chaos (label it ${CHAOS_LABEL}=${CHAOS_LABEL_ENABLED})`);
  }
  const enforced = ns.labels?.[POD_SECURITY_ENFORCE_LABEL];
  if (enforced === 'baseline' || enforced === 'restricted') {
    return deny(
      `namespace "${ns.name}" enforces Pod Security "${enforced}" (label ${POD_SECURITY_ENFORCE_LABEL}), which forbids the NET_ADMIN capability ` +
        `Faultline's init container needs, so its pods are not injected and no policy can take effect there; set ${POD_SECURITY_ENFORCE_LABEL}=privileged ` +
        `(Faultline's ValidatingAdmissionPolicy "${POD_SECURITY_POLICY_NAME}" still holds every other container to baseline), or run chaos in another namespace`,
    );
  }
  const ownership = tenantForNamespace(ns, validTenants);
  if ('error' in ownership) return deny(ownership.error);

  const tenantName = ownership.tenant.metadata.name ?? '';
  const violations = checkAllowlist(spec, ownership.tenant, user, ns.name);
  const faults = faultSummary(spec);
  if (spec.network || spec.io.length > 0 || spec.time) {
    warnings.push('network, io and time faults are fixed at pod start: running pods get them only when restarted');
  }
  if (violations.length > 0) return deny(formatDenial(tenantName, violations), { tenant: tenantName, faults, violations });
  return { allowed: true, message: '', warnings, tenant: tenantName, faults, fieldErrors: [], violations: [] };
}
