// The admission verdict on a ChaosPolicy: the one function the validating
// webhook and `faultline check` share, so both print the same words.

import { checkAllowlist, formatDenial, type UserInfo, type Violation } from './allowlist.ts';
import type { DefaultedPolicySpec } from './defaults.ts';
import { formatFieldErrors, type FieldError } from './field-error.ts';
import { faultSummary, hasKernelFaults } from './faults.ts';
import { prepareValidPolicy, type PreparedPolicy } from './planner.ts';
import { tenantForNamespace, type NamespaceInfo, type Ownership } from './tenancy.ts';
import type { ChaosPolicy, ChaosTenant } from './types.ts';
import { inspectPolicy, validateTenant, type Inspection } from './validate.ts';
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

/** For callers without the webhook's cache (`faultline check`, tests): the policy and every tenant are validated here. */
export function admissionVerdict(input: VerdictInput): Verdict {
  return reviewVerdict(reviewPolicy(input.policy), input.namespace, ownerAmongValid(input.namespace, input.tenants), input.user);
}

/** A ChaosPolicy inspected once: its field errors and unknown fields, and its prepared form when it has no error. */
export interface PolicyReview {
  inspection: Inspection;
  prepared: PreparedPolicy | undefined;
}

/** Validates and defaults once; the verdict and every later check of the same review read the result. */
export function reviewPolicy(object: unknown): PolicyReview {
  const inspection = inspectPolicy(object);
  return { inspection, prepared: inspection.errors.length === 0 ? prepareValidPolicy(object as ChaosPolicy) : undefined };
}

/** The namespace's owner among the tenants that validate: an invalid tenant never grants anything, so its namespaces fail closed. */
export function ownerAmongValid(ns: NamespaceInfo, tenants: readonly ChaosTenant[]): Ownership {
  return tenantForNamespace(ns, tenants.filter((t) => validateTenant(t).length === 0));
}

/** The verdict on a reviewed policy, given the namespace's owner among the valid tenants (the webhook's cache keeps it). */
export function reviewVerdict(review: PolicyReview, ns: NamespaceInfo, owner: Ownership, user: UserInfo | undefined): Verdict {
  const { errors, unknownFields } = review.inspection;
  const warnings = unknownFields.map((path) => `unknown field "${path}"`);
  if (review.prepared === undefined) {
    return { allowed: false, message: `ChaosPolicy is invalid: ${formatFieldErrors(errors)}`, warnings, fieldErrors: errors, violations: [] };
  }
  const judged = judgeValidPolicy(review.prepared.spec, ns, owner, user);
  return { ...judged, warnings: [...warnings, ...judged.warnings] };
}

/**
 * The verdict on a policy already validated and defaulted, against the
 * namespace's owner among tenants already validated: what the webhook's cache
 * keeps per policy, so a pod review decides from the tenant's current
 * allowlist without re-validating.
 */
export function judgeValidPolicy(spec: DefaultedPolicySpec, ns: NamespaceInfo, owner: Ownership, user: UserInfo | undefined): Verdict {
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
  if ('error' in owner) return deny(owner.error);

  const tenantName = owner.tenant.metadata.name ?? '';
  const violations = checkAllowlist(spec, owner.tenant, user, ns.name);
  const faults = faultSummary(spec);
  if (hasKernelFaults(spec)) {
    warnings.push('network, io and time faults are fixed at pod start: running pods get them only when restarted');
  }
  if (violations.length > 0) return deny(formatDenial(tenantName, violations), { tenant: tenantName, faults, violations });
  return { allowed: true, message: '', warnings, tenant: tenantName, faults, fieldErrors: [], violations: [] };
}
