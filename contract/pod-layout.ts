// The injected pod's layout: container names, volumes, mount paths, files,
// env and ports. The webhook renders these into the pod; pod setup
// (pod-setup/) and the proxy (sidecar/) rely on them. Nothing else crosses
// the webhook→pod boundary except the plans (plans.ts, codec.ts).

export const INIT_CONTAINER_NAME = 'faultline-init';
export const PROXY_CONTAINER_NAME = 'faultline-proxy';
/** Privileged native sidecar, added only when a pod gets IO faults or expiring kernel faults. */
export const KERNEL_CONTAINER_NAME = 'faultline-kernel';

/** Env var carrying the JSON InitPlan into faultline-init, -proxy and -kernel. */
export const PLAN_ENV = 'FAULTLINE_PLAN';
/** Downward-API env var names the webhook sets in every container of ours: the pod's identity. */
export const POD_NAME_ENV = 'POD_NAME';
export const POD_NAMESPACE_ENV = 'POD_NAMESPACE';
export const POD_UID_ENV = 'POD_UID';
/** Downward-API env var names set in the proxy only: its pod's addresses and the node's (capture). */
export const POD_IP_ENV = 'POD_IP';
export const POD_IPS_ENV = 'POD_IPS';
export const HOST_IP_ENV = 'HOST_IP';
export const HOST_IPS_ENV = 'HOST_IPS';

/** Shared emptyDir between init, proxy and kernel containers (handoff.json lives here). */
export const RUN_VOLUME_NAME = 'faultline-run';
export const RUN_MOUNT_PATH = '/var/run/faultline';

/**
 * emptyDir holding libfaketime and the offset file, for time faults only. Its
 * root and the library are root-owned 0755; only the `offset` directory is
 * writable, so the proxy can change the offset but never the preloaded code.
 */
export const TIME_VOLUME_NAME = 'faultline-time';
export const TIME_MOUNT_PATH = '/var/run/faultline-time';
export const FAKETIME_LIBRARY = `${TIME_MOUNT_PATH}/libfaketime.so.1`;
export const FAKETIME_TIMESTAMP_FILE = `${TIME_MOUNT_PATH}/offset/faketime.rc`;

/**
 * The proxy's own projected service-account token (token, ca.crt, namespace),
 * mounted apart from Kubernetes' default path so it works even when the pod
 * sets automountServiceAccountToken: false.
 */
export const TOKEN_VOLUME_NAME = 'faultline-token';
export const TOKEN_MOUNT_PATH = '/var/run/secrets/faultline.dev/serviceaccount';

/**
 * Default proxy UID/GID; excluded from capture so the proxy's own traffic never
 * loops. It differs from the mesh proxies' (Istio 1337, Linkerd 2102): a pod
 * carrying one of them must tell the two proxies' connections apart.
 */
export const DEFAULT_PROXY_UID = 16337;

/**
 * Default proxy ports (the webhook's injection config can move them): one
 * inbound and one outbound capture listener (pod-setup/redirect/capture-rules.ts,
 * sidecar/capture/) plus admin, metrics, health and Toxiproxy's API. All sit
 * outside Istio's 15000–15090 and Linkerd's 4140–4191, so a pod already
 * carrying a mesh sidecar can take ours.
 */
export const DEFAULT_PROXY_PORTS = { inbound: 16006, outbound: 16001, admin: 16000, metrics: 16020, health: 16021, toxiproxy: 16474 } as const;

/** Path of the proxy's readiness endpoint on the health port (startup probe). */
export const PROXY_READY_PATH = '/healthz/ready';
/** The proxy's health port, by its container port name, and the read-only datapath report on it (contract/applied.ts). */
export const PROXY_HEALTH_PORT_NAME = 'fl-health';
export const PROXY_STATUS_PATH = '/status';

/** In the run volume: the faults pod setup hands to the proxy (handoff.ts). */
export const HANDOFF_FILE = 'handoff.json';
/** In the run volume: written once faultline-kernel serves every volume (its startup probe). */
export const KERNEL_READY_FILE = 'kernel-ready';
/**
 * In the run volume: a FIFO faultline-init creates; the proxy holds it open for
 * its whole life (once its listeners are bound) and faultline-failopen reads it,
 * seeing EOF the moment the proxy's process is gone (pod-setup/redirect/fail-open-gate.ts).
 */
export const PROXY_ALIVE_FILE = 'proxy-alive';
/** Native sidecar that opens the fail-open gate while the proxy is dead. */
export const FAIL_OPEN_CONTAINER_NAME = 'faultline-failopen';
/** Where the init image carries the watcher bash script (images/build.ts renders it next to the bundle). */
export const FAIL_OPEN_SCRIPT_PATH = '/app/dist/fail-open-watch.sh';
/**
 * faultline-failopen's whole command line: bash, no Node (a few MiB, not tens);
 * tini forwards SIGTERM to bash, which that ends. Pinned by manifests/base/pod-security.yaml.
 */
export const FAIL_OPEN_COMMAND: readonly string[] = ['/usr/bin/tini', '--', '/bin/bash', FAIL_OPEN_SCRIPT_PATH];
