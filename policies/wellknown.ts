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

export const INIT_CONTAINER_NAME = 'faultline-init';
export const PROXY_CONTAINER_NAME = 'faultline-proxy';
/** Privileged native sidecar, added only when a pod gets IO faults or expiring kernel faults. */
export const KERNEL_CONTAINER_NAME = 'faultline-kernel';

export const SYSTEM_NAMESPACE = 'faultline-system';

/** Webhook names as kubectl prints them in denials. */
export const WEBHOOK_NAMES = {
  mutatePods: 'pods.faultline.dev',
  validatePolicies: 'chaospolicies.faultline.dev',
  validateTenants: 'chaostenants.faultline.dev',
} as const;

export const WEBHOOK_CONFIGURATION_NAME = 'faultline';

// ---------------------------------------------------------------- injected pod layout
// The webhook renders these and the init program / proxy rely on them.

/** Pod annotation: app ports never redirected to the proxy ("8081,9090"). */
export const EXCLUDE_INBOUND_PORTS_ANNOTATION = 'faultline.dev/exclude-inbound-ports';

/** Env var carrying the JSON InitPlan into faultline-init, -proxy and -kernel. */
export const PLAN_ENV = 'FAULTLINE_PLAN';

/** Shared emptyDir between init, proxy and kernel containers (handoff.json lives here). */
export const RUN_VOLUME_NAME = 'faultline-run';
export const RUN_MOUNT_PATH = '/var/run/faultline';

/** emptyDir holding libfaketime and the offset file, for time faults only. */
export const TIME_VOLUME_NAME = 'faultline-time';
export const TIME_MOUNT_PATH = '/var/run/faultline-time';
export const FAKETIME_LIBRARY = `${TIME_MOUNT_PATH}/libfaketime.so.1`;
export const FAKETIME_TIMESTAMP_FILE = `${TIME_MOUNT_PATH}/faketime.rc`;

/**
 * The proxy's own projected service-account token (token, ca.crt, namespace),
 * mounted apart from Kubernetes' default path so it works even when the pod
 * sets automountServiceAccountToken: false.
 */
export const TOKEN_VOLUME_NAME = 'faultline-token';
export const TOKEN_MOUNT_PATH = '/var/run/secrets/faultline.dev/serviceaccount';

/** Default proxy UID/GID; excluded from redirection so the proxy's own traffic never loops. */
export const DEFAULT_PROXY_UID = 1337;

/** Default proxy ports (the webhook's injection config can move them). */
export const DEFAULT_PROXY_PORTS = {
  admin: 15000,
  metrics: 15020,
  health: 15021,
  toxiproxy: 15474,
  inboundBase: 15100,
  outboundBase: 15200,
} as const;

/** Path of the proxy's readiness endpoint on the health port (startup probe). */
export const PROXY_READY_PATH = '/healthz/ready';
