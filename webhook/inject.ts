// Pure rendering of an injection: pod in, JSON Patch out (or the reason there is
// none). No I/O, no clock, no randomness: the same pod, config and kernel plan
// always give the same patch, which is what makes reinvocation safe.
import type { V1Container, V1EnvVar, V1Pod, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { Operation } from 'fast-json-patch';
import { decodeInitPlan, encodeJson, PlanError } from '../contract/codec.ts';
import type { InitPlan, KernelFaultPlan, TrafficWiring } from '../contract/plans.ts';
import {
  FAIL_OPEN_COMMAND,
  FAIL_OPEN_CONTAINER_NAME,
  FAKETIME_LIBRARY,
  FAKETIME_TIMESTAMP_FILE,
  HOST_IP_ENV,
  HOST_IPS_ENV,
  INIT_CONTAINER_NAME,
  KERNEL_CONTAINER_NAME,
  KERNEL_READY_FILE,
  PLAN_ENV,
  POD_IP_ENV,
  POD_IPS_ENV,
  POD_NAME_ENV,
  POD_NAMESPACE_ENV,
  POD_UID_ENV,
  PROXY_CONTAINER_NAME,
  PROXY_HEALTH_PORT_NAME,
  PROXY_READY_PATH,
  RUN_MOUNT_PATH,
  RUN_VOLUME_NAME,
  TIME_MOUNT_PATH,
  TIME_VOLUME_NAME,
  TOKEN_MOUNT_PATH,
  TOKEN_VOLUME_NAME,
} from '../contract/pod-layout.ts';
import type { NamespaceInfo } from '../policies/tenancy.ts';
import {
  INJECTED_ANNOTATION,
  INJECT_OPT_OUT,
  MIRROR_POD_ANNOTATION,
  NODE_OS_LABEL,
  OUTBOUND_ANNOTATION,
  PLAN_ANNOTATION,
  POD_SECURITY_ENFORCE_LABEL,
  SYSTEM_NAMESPACE,
} from '../policies/wellknown.ts';
import { VERSION } from '../common/version.ts';
import type { InjectionConfig } from './injection-config.ts';
import { planSummary } from './plan-annotation.ts';
import { meshSidecarOf, wiringRenderer, WiringError } from './wiring.ts';

export type SkipReason =
  | 'system-namespace'
  | 'mirror-pod'
  | 'already-injected'
  | 'opted-out'
  | 'host-network'
  | 'windows-pod'
  | 'pod-security'
  | 'name-collision'
  | 'port-conflict'
  | 'invalid-annotation'
  | 'invalid-plan';

export type InjectionResult =
  | { injected: true; patch: Operation[]; plan: InitPlan; warnings: string[] }
  /**
   * `deny`: the pod asks for something malformed (an exclusion annotation);
   * admitting it uninjected would hide the typo, so admission refuses it.
   * `patch`: a pod we already injected, whose plan must learn of a mesh
   * sidecar another injector added after us (reinvocation).
   */
  | { injected: false; reason: SkipReason; message: string; deny?: boolean; patch?: Operation[] };

/** Renders injections for one config; the static parts are built once, not per review. */
export interface Injector {
  /** `namespace`: the pod's namespace with its labels when the webhook can see them. */
  render(pod: V1Pod, namespace: NamespaceInfo, kernel?: KernelFaultPlan): InjectionResult;
}

/** Namespaces never injected, whatever the MutatingWebhookConfiguration selects. */
export const SYSTEM_NAMESPACES: ReadonlySet<string> = new Set(['kube-system', 'kube-public', 'kube-node-lease', SYSTEM_NAMESPACE]);

/** Pod Security levels that forbid faultline-init (root, NET_ADMIN): the API server would refuse every injected pod. */
const POD_SECURITY_REFUSING = new Set(['baseline', 'restricted']);

const EMPTY_KERNEL_PLAN: KernelFaultPlan = Object.freeze({ io: [] }) as KernelFaultPlan;
const OUR_CONTAINERS = new Set([INIT_CONTAINER_NAME, FAIL_OPEN_CONTAINER_NAME, PROXY_CONTAINER_NAME, KERNEL_CONTAINER_NAME]);
const OUR_VOLUMES = [RUN_VOLUME_NAME, TOKEN_VOLUME_NAME, TIME_VOLUME_NAME];
/** Where faultline-kernel sees each volume it serves IO faults on. */
const IO_MOUNT_ROOT = '/var/run/faultline-io';
/** The file `faultline kernel` writes into faultline-run once it serves, as its container sees it (its startup probe). */
const KERNEL_READY_PATH = `${RUN_MOUNT_PATH}/${KERNEL_READY_FILE}`;

const POD_ENV: readonly V1EnvVar[] = [
  { name: POD_NAME_ENV, valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
  { name: POD_NAMESPACE_ENV, valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
  { name: POD_UID_ENV, valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
];
/** The proxy's view of the network (capture): its pod's addresses, and the node's, whose connections are kubelet probes. */
const PROXY_ENV: readonly V1EnvVar[] = [
  { name: POD_IP_ENV, valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
  { name: POD_IPS_ENV, valueFrom: { fieldRef: { fieldPath: 'status.podIPs' } } },
  { name: HOST_IP_ENV, valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
  { name: HOST_IPS_ENV, valueFrom: { fieldRef: { fieldPath: 'status.hostIPs' } } },
];
const RUN_MOUNT: V1VolumeMount = { name: RUN_VOLUME_NAME, mountPath: RUN_MOUNT_PATH };
const TIME_MOUNT: V1VolumeMount = { name: TIME_VOLUME_NAME, mountPath: TIME_MOUNT_PATH };
/** The proxy's and faultline-kernel's own API token: both watch the pause switches and their policies. */
const TOKEN_MOUNT: V1VolumeMount = { name: TOKEN_VOLUME_NAME, mountPath: TOKEN_MOUNT_PATH, readOnly: true };
const TIME_MOUNT_RO: V1VolumeMount = { ...TIME_MOUNT, readOnly: true };
const TIME_ENV: readonly V1EnvVar[] = [
  { name: 'LD_PRELOAD', value: FAKETIME_LIBRARY },
  { name: 'FAKETIME_TIMESTAMP_FILE', value: FAKETIME_TIMESTAMP_FILE },
  // Re-read the offset file on every call so the proxy can change or end the offset live.
  { name: 'FAKETIME_NO_CACHE', value: '1' },
  // Wall-clock time only. A monotonic clock must never go back, and runtimes
  // rely on it: when an offset starts or grows negative under a running
  // process, a faked CLOCK_MONOTONIC froze Node's timers for the offset's
  // length or failed its `now >= timer_base` assertion (test/netns/init-time.test.ts).
  { name: 'FAKETIME_DONT_FAKE_MONOTONIC', value: '1' },
];

export function createInjector(config: InjectionConfig): Injector {
  const s = staticParts(config);
  const renderWiring = wiringRenderer(config);
  return {
    render(pod, namespace, kernel = EMPTY_KERNEL_PLAN) {
      const skip = skipReason(pod, namespace);
      if (skip) {
        const patch = skip.reason === 'already-injected' ? meshLatePatch(pod) : undefined;
        return { injected: false, ...skip, ...(patch ? { patch } : {}) };
      }
      let wiring: TrafficWiring;
      try {
        wiring = renderWiring(pod);
      } catch (err) {
        if (err instanceof WiringError) return { injected: false, reason: err.reason, message: err.message, ...(err.reason === 'invalid-annotation' ? { deny: true } : {}) };
        throw err;
      }
      const plan: InitPlan = { version: VERSION, wiring, kernel };
      const warnings =
        pod.metadata?.annotations?.[OUTBOUND_ANNOTATION] !== undefined
          ? [`faultline: annotation ${OUTBOUND_ANNOTATION} is no longer needed and is ignored: every outbound connection is captured`]
          : [];
      try {
        return { injected: true, patch: renderPatch(pod, plan, s), plan, warnings };
      } catch (err) {
        if (err instanceof PlanDoesNotFitPod) return { injected: false, reason: 'invalid-plan', message: err.message };
        throw err;
      }
    },
  };
}

/** The first rule that keeps a pod from being injected, checked cheapest first. */
function skipReason(pod: V1Pod, namespace: NamespaceInfo): { reason: SkipReason; message: string } | undefined {
  const annotations = pod.metadata?.annotations ?? {};
  const labels = pod.metadata?.labels ?? {};
  if (SYSTEM_NAMESPACES.has(namespace.name))
    return { reason: 'system-namespace', message: `namespace ${namespace.name} is a system namespace` };
  if (annotations[MIRROR_POD_ANNOTATION] !== undefined)
    return { reason: 'mirror-pod', message: 'mirror (static) pods cannot be changed through the API' };
  const ours = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => OUR_CONTAINERS.has(c.name));
  if (annotations[INJECTED_ANNOTATION] !== undefined || ours)
    return {
      reason: 'already-injected',
      message: ours ? `pod already has container ${ours.name}` : `pod already carries ${INJECTED_ANNOTATION}=${annotations[INJECTED_ANNOTATION]}`,
    };
  for (const [where, map] of [['label', labels], ['annotation', annotations]] as const)
    if (map[INJECT_OPT_OUT] === 'false') return { reason: 'opted-out', message: `pod ${where} ${INJECT_OPT_OUT}=false` };
  if (pod.spec?.hostNetwork === true) return {
      reason: 'host-network',
      message: "hostNetwork pods share the node's network namespace; redirecting their traffic would redirect the node's",
    };
  const windows = windowsSkip(pod);
  if (windows) return { reason: 'windows-pod', message: windows };
  const level = namespace.labels?.[POD_SECURITY_ENFORCE_LABEL];
  if (level !== undefined && POD_SECURITY_REFUSING.has(level))
    return {
      reason: 'pod-security',
      message:
        `namespace ${namespace.name} enforces Pod Security "${level}", which refuses faultline-init (root, NET_ADMIN), so every injected pod would be rejected; ` +
        `to inject, label it ${POD_SECURITY_ENFORCE_LABEL}=privileged`,
    };
  const clash = (pod.spec?.volumes ?? []).find((v) => OUR_VOLUMES.includes(v.name));
  if (clash) return { reason: 'name-collision', message: `pod already has a volume named ${clash.name}` };
  return undefined;
}

/**
 * Faultline's containers are Linux programs (nftables, tc, FUSE). For a pod
 * with spec.os.name windows the API server also forbids the Linux
 * securityContext fields they carry (runAsUser, runAsGroup, capabilities,
 * privileged, allowPrivilegeEscalation, readOnlyRootFilesystem,
 * seccompProfile), after this webhook has patched it, so failurePolicy Ignore
 * would not save the pod. A pod that only selects Windows nodes passes that
 * validation but could not run them either.
 */
function windowsSkip(pod: V1Pod): string | undefined {
  if (pod.spec?.os?.name === 'windows')
    return "Windows pod (spec.os.name: windows): Faultline's containers are Linux-only, and the API server rejects their Linux securityContext on Windows pods";
  if (pod.spec?.nodeSelector?.[NODE_OS_LABEL] === 'windows')
    return `pod selects Windows nodes (nodeSelector ${NODE_OS_LABEL}: windows); Faultline's containers are Linux-only`;
  return undefined;
}

/**
 * Mutating webhooks run in the order of their configurations' names, so
 * "faultline" runs before Istio's and Linkerd's injectors and sees no mesh
 * sidecar yet; the API server then calls it again (reinvocationPolicy:
 * IfNeeded). When a mesh sidecar has appeared since, this patch tells the
 * plan in our containers, so inbound capture goes mesh first. Undefined when
 * there is nothing to change (or a plan it cannot read: that pod fails in
 * faultline-init, loudly).
 */
function meshLatePatch(pod: V1Pod): Operation[] | undefined {
  const mesh = meshSidecarOf(pod);
  if (!mesh) return undefined;
  const ops: Operation[] = [];
  for (const list of ['initContainers', 'containers'] as const)
    (pod.spec?.[list] ?? []).forEach((c, i) => {
      if (!OUR_CONTAINERS.has(c.name)) return;
      const j = (c.env ?? []).findIndex((e) => e.name === PLAN_ENV && e.value !== undefined);
      if (j < 0) return;
      let plan: InitPlan;
      try {
        plan = decodeInitPlan(c.env![j]!.value!, `${c.name} ${PLAN_ENV}`);
      } catch (err) {
        if (err instanceof PlanError) return;
        throw err;
      }
      const capture = plan.wiring.capture;
      if (!capture || capture.mesh !== undefined || mesh.uid === plan.wiring.proxyUid) return;
      const value = encodeJson({ ...plan, wiring: { ...plan.wiring, capture: { ...capture, mesh } } });
      ops.push({ op: 'replace', path: `/spec/${list}/${i}/env/${j}/value`, value });
    });
  return ops.length > 0 ? ops : undefined;
}

/** A kernel plan that cannot be rendered into this pod. */
class PlanDoesNotFitPod extends Error {}

interface StaticParts {
  init: V1Container;
  failOpen: V1Container;
  proxy: V1Container;
  kernelNet: V1Container;
  kernelIo: V1Container;
  runVolume: V1Volume;
  tokenVolume: V1Volume;
  timeVolume: V1Volume;
}

/** Everything that depends only on the config, frozen so per-review code can share it safely. */
function staticParts(config: InjectionConfig): StaticParts {
  const dropAll = { drop: ['ALL'] };
  const init: V1Container = {
    name: INIT_CONTAINER_NAME,
    image: config.initImage,
    imagePullPolicy: config.imagePullPolicy,
    // args, not command: the images' entrypoint is tini → faultline, so PID 1
    // reaps children (Toxiproxy, FUSE helpers) and forwards SIGTERM.
    args: ['init'],
    resources: config.initResources,
    securityContext: {
      // Root for nftables/tc; runAsNonRoot false overrides a pod-level runAsNonRoot: true.
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      // nft and tc speak netlink, which needs NET_ADMIN and nothing else; FUSE
      // (SYS_ADMIN) lives in faultline-kernel, so the init container never mounts.
      capabilities: { add: ['NET_ADMIN'], ...dropAll },
      seccompProfile: { type: 'RuntimeDefault' },
    },
  };
  // Root for nft and tc, NET_ADMIN and nothing else (both long-lived NET_ADMIN sidecars).
  const rootNetAdminOnly = {
    runAsUser: 0,
    runAsGroup: 0,
    runAsNonRoot: false,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { add: ['NET_ADMIN'], ...dropAll },
    seccompProfile: { type: 'RuntimeDefault' },
  };
  // A native sidecar ahead of the proxy: while the proxy is dead it opens the
  // fail-open gate init wrote (pod-setup/redirect/fail-open-gate.ts). bash, no
  // Node; the same privilege as faultline-kernel's network variant and no
  // more: root for nft, NET_ADMIN alone, the run volume alone, no args, no env.
  const failOpen: V1Container = {
    name: FAIL_OPEN_CONTAINER_NAME,
    image: config.initImage,
    imagePullPolicy: config.imagePullPolicy,
    command: [...FAIL_OPEN_COMMAND],
    restartPolicy: 'Always',
    resources: config.failOpenResources,
    volumeMounts: [RUN_MOUNT],
    securityContext: rootNetAdminOnly,
  };
  const healthProbe = { httpGet: { path: PROXY_READY_PATH, port: config.ports.health } };
  const proxy: V1Container = {
    name: PROXY_CONTAINER_NAME,
    image: config.proxyImage,
    imagePullPolicy: config.imagePullPolicy,
    args: ['sidecar'],
    // A native sidecar: starts before the app, and the app starts only once the startup probe passes.
    restartPolicy: 'Always',
    // Port names are IANA service names: at most 15 characters, or the API
    // server rejects the pod (test/e2e caught 'faultline-metrics').
    ports: [
      { name: 'fl-metrics', containerPort: config.ports.metrics, protocol: 'TCP' },
      { name: PROXY_HEALTH_PORT_NAME, containerPort: config.ports.health, protocol: 'TCP' },
    ],
    startupProbe: { ...healthProbe, periodSeconds: 1, failureThreshold: 60, timeoutSeconds: 1 },
    readinessProbe: { ...healthProbe, periodSeconds: 5, failureThreshold: 3, timeoutSeconds: 1 },
    resources: config.proxyResources,
    securityContext: {
      runAsUser: config.proxyUid,
      runAsGroup: config.proxyUid,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: dropAll,
      seccompProfile: { type: 'RuntimeDefault' },
    },
  };
  const kernelNet: V1Container = {
    name: KERNEL_CONTAINER_NAME,
    image: config.initImage,
    imagePullPolicy: config.imagePullPolicy,
    args: ['kernel'],
    restartPolicy: 'Always',
    // The app starts only once every FUSE layer is mounted over its volumes.
    startupProbe: { exec: { command: ['test', '-f', KERNEL_READY_PATH] }, periodSeconds: 1, failureThreshold: 60 },
    resources: config.kernelResources,
    // Only removes the pod's qdisc when the network fault expires (tc has no expiry of its own).
    securityContext: rootNetAdminOnly,
  };
  const kernelIo: V1Container = {
    ...kernelNet,
    // FUSE mounts must propagate to the app's view of the volume: only a privileged
    // container may use Bidirectional propagation.
    securityContext: { privileged: true, runAsUser: 0, runAsGroup: 0, runAsNonRoot: false },
  };
  const tokenSource: Record<string, unknown> = { expirationSeconds: config.tokenExpirationSeconds, path: 'token' };
  if (config.tokenAudience !== undefined) tokenSource.audience = config.tokenAudience;
  const tokenVolume: V1Volume = {
    name: TOKEN_VOLUME_NAME,
    projected: {
      // The same shape as Kubernetes' own kube-api-access-* volume.
      defaultMode: 0o644,
      sources: [
        { serviceAccountToken: tokenSource as { path: string } },
        { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
      ],
    },
  };
  return deepFreeze({
    init,
    failOpen,
    proxy,
    kernelNet,
    kernelIo,
    runVolume: { name: RUN_VOLUME_NAME, emptyDir: { medium: 'Memory', sizeLimit: config.runVolumeSizeLimit } },
    tokenVolume,
    timeVolume: { name: TIME_VOLUME_NAME, emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } },
  });
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** RFC 6901 escaping of one path segment (annotation keys contain '/'). */
export function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * Appends `items` to the array at `path`: one `add` of the whole array when it is
 * absent, else one `add .../-` per item. Only adds; never replaces user content.
 */
function appendAll(ops: Operation[], path: string, existing: unknown[] | undefined, items: unknown[]): void {
  if (items.length === 0) return;
  if (existing === undefined) ops.push({ op: 'add', path, value: items });
  else for (const value of items) ops.push({ op: 'add', path: `${path}/-`, value });
}

const INJECTED_ANNOTATION_PATH = `/metadata/annotations/${escapePointer(INJECTED_ANNOTATION)}`;
const PLAN_ANNOTATION_PATH = `/metadata/annotations/${escapePointer(PLAN_ANNOTATION)}`;

function renderPatch(pod: V1Pod, plan: InitPlan, s: StaticParts): Operation[] {
  const { kernel } = plan;
  const ops: Operation[] = [];
  const planEnv: V1EnvVar[] = [{ name: PLAN_ENV, value: encodeJson(plan) }, ...POD_ENV];
  const timed = kernel.time !== undefined;
  const io = kernel.io.length > 0;

  const ioVolumes = io ? ioVolumesOf(pod, kernel) : [];
  const init: V1Container = { ...s.init, env: planEnv, volumeMounts: timed ? [RUN_MOUNT, TIME_MOUNT] : [RUN_MOUNT] };
  // The proxy gets a token only where the app got one (issue 13 M6). The
  // ServiceAccount admission plugin runs before mutating webhooks and weighs
  // the pod's automountServiceAccountToken over its ServiceAccount's: its
  // kube-api-access-* mount is that decision, so an opt-out on either the pod
  // or the ServiceAccount leaves the proxy without a token (and live faults).
  const saMount = serviceAccountTokenMount(pod);
  const token = saMount !== undefined;
  const proxy: V1Container = {
    ...s.proxy,
    env: [...planEnv, ...PROXY_ENV],
    volumeMounts: [RUN_MOUNT, ...(token ? [TOKEN_MOUNT] : []), ...(timed ? [TIME_MOUNT] : [])],
  };
  const ours: V1Container[] = [init, { ...s.failOpen }, proxy];
  if (io)
    ours.push({
      ...s.kernelIo,
      args: ['kernel', ...ioVolumes.flatMap(({ name, volumePath }) => ['--volume', `${volumePath}=${IO_MOUNT_ROOT}/${name}`])],
      env: planEnv,
      volumeMounts: [
        RUN_MOUNT,
        ...(token ? [TOKEN_MOUNT] : []),
        ...ioVolumes.map(({ name }) => ({ name, mountPath: `${IO_MOUNT_ROOT}/${name}`, mountPropagation: 'Bidirectional' })),
      ],
    });
  // Any network fault may end up in a qdisc (netem where the node has it, tbf for
  // a rate) and tc has no expiry of its own: faultline-kernel takes it off on time.
  else if (kernel.network) ours.push({ ...s.kernelNet, env: planEnv, volumeMounts: [RUN_MOUNT, ...(token ? [TOKEN_MOUNT] : [])] });

  // The ServiceAccount admission plugin mounts the API token into every container
  // that lacks it, and re-runs after a webhook added containers; that change would
  // then make the apiserver call this webhook a second time (reinvocationPolicy:
  // IfNeeded) for nothing. Carrying the mount the plugin already gave the app
  // containers leaves it nothing to add: one call per pod, same resulting spec.
  if (saMount) for (const c of ours) c.volumeMounts = [...(c.volumeMounts ?? []), saMount];

  // Ours go first, in order, ahead of the pod's own init containers: those may
  // already make network calls that faults should apply to.
  const initContainers = pod.spec?.initContainers;
  if (initContainers === undefined) ops.push({ op: 'add', path: '/spec/initContainers', value: ours });
  else ours.forEach((c, i) => ops.push({ op: 'add', path: `/spec/initContainers/${i}`, value: c }));

  appendAll(ops, '/spec/volumes', pod.spec?.volumes, [s.runVolume, ...(token ? [s.tokenVolume] : []), ...(timed ? [s.timeVolume] : [])]);

  const containers = pod.spec?.containers ?? [];
  if (timed) {
    const names = kernel.time!.containers;
    for (const name of names)
      if (!containers.some((c) => c.name === name)) throw new PlanDoesNotFitPod(`time fault names container ${name}, which the pod does not have`);
    containers.forEach((c, i) => {
      if (names.length > 0 && !names.includes(c.name)) return;
      const clash = (c.env ?? []).find((e) => TIME_ENV.some((t) => t.name === e.name));
      if (clash) throw new PlanDoesNotFitPod(`container ${c.name} already sets ${clash.name}; a time fault would override it`);
      appendAll(ops, `/spec/containers/${i}/env`, c.env, [...TIME_ENV]);
      appendAll(ops, `/spec/containers/${i}/volumeMounts`, c.volumeMounts, [TIME_MOUNT_RO]);
    });
  }
  if (io)
    containers.forEach((c, i) =>
      (c.volumeMounts ?? []).forEach((m, j) => {
        if (!ioVolumes.some((v) => v.name === m.name) || m.mountPropagation === 'HostToContainer' || m.mountPropagation === 'Bidirectional') return;
        if (m.mountPropagation !== undefined)
          throw new PlanDoesNotFitPod(`container ${c.name} mounts ${m.name} with mountPropagation ${m.mountPropagation}; IO faults need HostToContainer`);
        // Lets the FUSE mount faultline-kernel stacks on the volume show up in the app.
        ops.push({ op: 'add', path: `/spec/containers/${i}/volumeMounts/${j}/mountPropagation`, value: 'HostToContainer' });
      }),
    );

  const summary = JSON.stringify(planSummary(plan));
  if (pod.metadata?.annotations === undefined) {
    const annotations: Record<string, string> = { [INJECTED_ANNOTATION]: VERSION, [PLAN_ANNOTATION]: summary };
    ops.push({ op: 'add', path: pod.metadata ? '/metadata/annotations' : '/metadata', value: pod.metadata ? annotations : { annotations } });
  } else
    ops.push({ op: 'add', path: INJECTED_ANNOTATION_PATH, value: VERSION }, { op: 'add', path: PLAN_ANNOTATION_PATH, value: summary });
  return ops;
}

/** Where Kubernetes mounts the service-account token unless a container mounts something there. */
const SERVICE_ACCOUNT_MOUNT_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The token mount the ServiceAccount admission plugin gave the app containers, if it did. */
function serviceAccountTokenMount(pod: V1Pod): V1VolumeMount | undefined {
  // Loops, not flatMap and a Set: this runs on every injection.
  for (const c of pod.spec?.containers ?? [])
    for (const m of c.volumeMounts ?? [])
      if (m.mountPath === SERVICE_ACCOUNT_MOUNT_PATH && m.name.startsWith('kube-api-access-') && pod.spec?.volumes?.some((v) => v.name === m.name))
        return { name: m.name, mountPath: SERVICE_ACCOUNT_MOUNT_PATH, readOnly: true };
  return undefined;
}

/** The pod volumes an IO plan targets, found by the mount path in the app containers. */
function ioVolumesOf(pod: V1Pod, kernel: KernelFaultPlan): Array<{ name: string; volumePath: string }> {
  const volumes: Array<{ name: string; volumePath: string }> = [];
  for (const fault of kernel.io) {
    const mount = (pod.spec?.containers ?? []).flatMap((c) => c.volumeMounts ?? []).find((m) => m.mountPath === fault.volumePath);
    if (!mount) throw new PlanDoesNotFitPod(`IO fault volumePath ${fault.volumePath} is not a volume mount of any container`);
    if (!volumes.some((v) => v.name === mount.name)) volumes.push({ name: mount.name, volumePath: fault.volumePath });
  }
  return volumes;
}


