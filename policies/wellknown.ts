// Names that cross process boundaries (labels, annotations, API group, ports).
// Every module imports them from here so the webhook, sidecar, init program,
// manifests and tests can never drift apart.

export const API_GROUP = 'chaos.faultline.dev';
export const API_VERSION = 'v1alpha1';
export const API_GROUP_VERSION = `${API_GROUP}/${API_VERSION}`;

/** Namespace label that opts a namespace into chaos (injection + policies). */
export const CHAOS_LABEL = 'faultline.dev/chaos';
export const CHAOS_LABEL_ENABLED = 'enabled';

/** Faultline's ValidatingAdmissionPolicy: baseline for every container but Faultline's own. */
export const POD_SECURITY_POLICY_NAME = 'faultline-pod-security';

/** Pod label or annotation; the value "false" opts a pod out of injection. */
export const INJECT_OPT_OUT = 'faultline.dev/inject';

/** Annotation set on injected pods; its value is Faultline's version. */
export const INJECTED_ANNOTATION = 'faultline.dev/injected';

/**
 * Retired pod annotation: it listed outbound upstreams to wire when each
 * upstream needed a listener of its own. Capture takes every outbound
 * connection now; a pod still carrying it gets an admission warning.
 */
export const OUTBOUND_ANNOTATION = 'faultline.dev/outbound';

/** Annotation carrying the rendered kernel plan summary on an injected pod. */
export const PLAN_ANNOTATION = 'faultline.dev/plan';

export const MIRROR_POD_ANNOTATION = 'kubernetes.io/config.mirror';
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';
/** Pod Security Admission's enforced level on a namespace: privileged, baseline or restricted. */
export const POD_SECURITY_ENFORCE_LABEL = 'pod-security.kubernetes.io/enforce';
/** The well-known node label a pod selects its OS with. */
export const NODE_OS_LABEL = 'kubernetes.io/os';

export const SYSTEM_NAMESPACE = 'faultline-system';

/** Webhook names as kubectl prints them in denials. */
export const WEBHOOK_NAMES = {
  mutatePods: 'pods.faultline.dev',
  validatePolicies: 'chaospolicies.faultline.dev',
  validateTenants: 'chaostenants.faultline.dev',
} as const;

export const WEBHOOK_CONFIGURATION_NAME = 'faultline';

/**
 * Capture exclusions, as Istio's traffic.sidecar.istio.io/* annotations:
 * comma-separated ports or CIDRs never sent through the proxy. A malformed
 * value denies the pod at admission, naming the annotation and the entry.
 */
export const EXCLUDE_INBOUND_PORTS_ANNOTATION = 'faultline.dev/exclude-inbound-ports';
export const EXCLUDE_OUTBOUND_PORTS_ANNOTATION = 'faultline.dev/exclude-outbound-ports';
/** Source CIDRs whose connections into the pod are never captured. */
export const EXCLUDE_INBOUND_CIDRS_ANNOTATION = 'faultline.dev/exclude-inbound-cidrs';
/** Destination CIDRs the pod's connections to are never captured. */
export const EXCLUDE_OUTBOUND_CIDRS_ANNOTATION = 'faultline.dev/exclude-outbound-cidrs';
