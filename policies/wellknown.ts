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
 * Pod annotation listing outbound upstreams to wire through the proxy even when
 * no policy names them yet ("host:port,host:port"), so later policies can fault
 * them live without a pod restart.
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

/** Pod annotation: app ports never redirected to the proxy ("8081,9090"). */
export const EXCLUDE_INBOUND_PORTS_ANNOTATION = 'faultline.dev/exclude-inbound-ports';
