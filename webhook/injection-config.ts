// Injection configuration: what the webhook puts into pods (images, proxy UID,
// ports, resources, token settings). Read once at start from flags and env and
// validated there, so a typo fails the rollout of the webhook instead of every
// injected pod.
import { IMAGES } from '../common/images.ts';
import { DEFAULT_PROXY_PORTS, DEFAULT_PROXY_UID } from '../contract/pod-layout.ts';

export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';

export interface ResourceRequirements {
  requests: Record<string, string>;
  limits: Record<string, string>;
}

export interface ProxyPorts {
  admin: number;
  metrics: number;
  health: number;
  toxiproxy: number;
  /** The capture listener every inbound TCP connection is redirected to. */
  inbound: number;
  /** The capture listener every outbound TCP connection of the app is redirected to. */
  outbound: number;
}

export interface InjectionConfig {
  proxyImage: string;
  initImage: string;
  imagePullPolicy: PullPolicy;
  proxyUid: number;
  ports: ProxyPorts;
  proxyResources: ResourceRequirements;
  initResources: ResourceRequirements;
  /** faultline-kernel, the native sidecar for network/IO faults: sized on its own, it stays for the pod's lifetime. */
  kernelResources: ResourceRequirements;
  /** faultline-failopen, the bash watcher that opens the fail-open gate while the proxy is dead. */
  failOpenResources: ResourceRequirements;
  /** Audience of the proxy's projected token; undefined = the API server's own audience. */
  tokenAudience: string | undefined;
  tokenExpirationSeconds: number;
  /** sizeLimit of the in-memory faultline-run emptyDir. */
  runVolumeSizeLimit: string;
}

/** Thrown for an invalid setting; the message names the flag and env var. */
export class ConfigError extends Error {}

type Kind = 'image' | 'pullPolicy' | 'uid' | 'port' | 'quantity' | 'audience' | 'seconds';

interface Setting {
  flag: string;
  env: string;
  kind: Kind;
  default: string | undefined;
  help: string;
}

/**
 * Every setting once: the CLI builds its options and help from this table and
 * `loadInjectionConfig` reads it, so a flag can never exist without its env var.
 */
export const INJECTION_SETTINGS = {
  proxyImage: { flag: 'proxy-image', env: 'FAULTLINE_PROXY_IMAGE', kind: 'image', default: IMAGES.proxy, help: 'faultline-proxy image' },
  initImage: { flag: 'init-image', env: 'FAULTLINE_INIT_IMAGE', kind: 'image', default: IMAGES.init, help: 'faultline-init and faultline-kernel image' },
  imagePullPolicy: { flag: 'image-pull-policy', env: 'FAULTLINE_IMAGE_PULL_POLICY', kind: 'pullPolicy', default: 'IfNotPresent', help: 'Always | IfNotPresent | Never' },
  proxyUid: { flag: 'proxy-uid', env: 'FAULTLINE_PROXY_UID', kind: 'uid', default: String(DEFAULT_PROXY_UID), help: 'UID/GID the proxy runs as (excluded from redirection)' },
  adminPort: { flag: 'proxy-admin-port', env: 'FAULTLINE_PROXY_ADMIN_PORT', kind: 'port', default: String(DEFAULT_PROXY_PORTS.admin), help: 'proxy admin API port (127.0.0.1)' },
  metricsPort: { flag: 'proxy-metrics-port', env: 'FAULTLINE_PROXY_METRICS_PORT', kind: 'port', default: String(DEFAULT_PROXY_PORTS.metrics), help: 'proxy /metrics port' },
  healthPort: { flag: 'proxy-health-port', env: 'FAULTLINE_PROXY_HEALTH_PORT', kind: 'port', default: String(DEFAULT_PROXY_PORTS.health), help: 'proxy health port (startup/readiness probes)' },
  toxiproxyPort: { flag: 'proxy-toxiproxy-port', env: 'FAULTLINE_PROXY_TOXIPROXY_PORT', kind: 'port', default: String(DEFAULT_PROXY_PORTS.toxiproxy), help: 'Toxiproxy API port (127.0.0.1)' },
  inboundPort: { flag: 'proxy-inbound-port', env: 'FAULTLINE_PROXY_INBOUND_PORT', kind: 'port', default: String(DEFAULT_PROXY_PORTS.inbound), help: 'capture listener for all inbound TCP' },
  outboundPort: { flag: 'proxy-outbound-port', env: 'FAULTLINE_PROXY_OUTBOUND_PORT', kind: 'port', default: String(DEFAULT_PROXY_PORTS.outbound), help: 'capture listener for all outbound TCP' },
  proxyCpuRequest: { flag: 'proxy-cpu-request', env: 'FAULTLINE_PROXY_CPU_REQUEST', kind: 'quantity', default: '50m', help: 'proxy CPU request' },
  proxyMemoryRequest: { flag: 'proxy-memory-request', env: 'FAULTLINE_PROXY_MEMORY_REQUEST', kind: 'quantity', default: '64Mi', help: 'proxy memory request' },
  proxyCpuLimit: { flag: 'proxy-cpu-limit', env: 'FAULTLINE_PROXY_CPU_LIMIT', kind: 'quantity', default: undefined, help: 'proxy CPU limit (default none: throttling would distort injected latency)' },
  proxyMemoryLimit: { flag: 'proxy-memory-limit', env: 'FAULTLINE_PROXY_MEMORY_LIMIT', kind: 'quantity', default: '256Mi', help: 'proxy memory limit' },
  initCpu: { flag: 'init-cpu', env: 'FAULTLINE_INIT_CPU', kind: 'quantity', default: '10m', help: 'faultline-init, faultline-kernel and faultline-failopen CPU request' },
  // Measured peaks (npm run bench:init, bench:pod-memory) and the headroom chosen are in docs/operations.md.
  initMemory: { flag: 'init-memory', env: 'FAULTLINE_INIT_MEMORY', kind: 'quantity', default: '160Mi', help: 'init container memory request and limit' },
  kernelMemory: { flag: 'kernel-memory', env: 'FAULTLINE_KERNEL_MEMORY', kind: 'quantity', default: '128Mi', help: 'faultline-kernel memory request and limit' },
  failOpenMemory: { flag: 'failopen-memory', env: 'FAULTLINE_FAILOPEN_MEMORY', kind: 'quantity', default: '16Mi', help: 'faultline-failopen memory request and limit' },
  tokenAudience: { flag: 'token-audience', env: 'FAULTLINE_TOKEN_AUDIENCE', kind: 'audience', default: undefined, help: "audience of the proxy's projected token (default: the API server's)" },
  tokenExpiration: { flag: 'token-expiration-seconds', env: 'FAULTLINE_TOKEN_EXPIRATION_SECONDS', kind: 'seconds', default: '3600', help: "lifetime of the proxy's projected token (>= 600)" },
  runVolumeSize: { flag: 'run-volume-size', env: 'FAULTLINE_RUN_VOLUME_SIZE', kind: 'quantity', default: '4Mi', help: 'sizeLimit of the faultline-run emptyDir' },
} as const satisfies Record<string, Setting>;

type SettingKey = keyof typeof INJECTION_SETTINGS;

const PULL_POLICIES: readonly PullPolicy[] = ['Always', 'IfNotPresent', 'Never'];
// A Kubernetes resource.Quantity in the forms people write (no exponent forms).
const QUANTITY = /^(\d+(\.\d+)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
// registry/path:tag or @sha256:…, no whitespace; the API server accepts little more.
const IMAGE = /^[a-z0-9]([a-z0-9._\-/:]*[a-z0-9])?(@sha256:[a-f0-9]{64})?$/i;

/**
 * Builds the injection config from CLI flag values (highest precedence), then
 * env, then defaults. Throws ConfigError naming every invalid setting at once.
 */
export function loadInjectionConfig(
  flags: Readonly<Record<string, unknown>> = {},
  env: Readonly<Record<string, string | undefined>> = process.env,
): InjectionConfig {
  const errors: string[] = [];
  const raw = (key: SettingKey): string | undefined => {
    const s: Setting = INJECTION_SETTINGS[key];
    const fromFlag = flags[s.flag];
    if (typeof fromFlag === 'string') return fromFlag;
    const fromEnv = env[s.env];
    return fromEnv !== undefined && fromEnv !== '' ? fromEnv : s.default;
  };
  const fail = (key: SettingKey, value: string, why: string): void => {
    const s = INJECTION_SETTINGS[key];
    errors.push(`--${s.flag} / ${s.env}: '${value}' ${why}`);
  };
  const text = (key: SettingKey): string | undefined => {
    const value = raw(key);
    if (value === undefined) return undefined;
    const kind: Kind = INJECTION_SETTINGS[key].kind;
    if (kind === 'image' && !IMAGE.test(value)) fail(key, value, 'is not a valid image reference');
    if (kind === 'pullPolicy' && !(PULL_POLICIES as readonly string[]).includes(value))
      fail(key, value, `must be one of ${PULL_POLICIES.join(', ')}`);
    if (kind === 'quantity' && !QUANTITY.test(value)) fail(key, value, 'is not a resource quantity (e.g. 100m, 64Mi)');
    if (kind === 'audience' && /\s/.test(value)) fail(key, value, 'must not contain whitespace');
    return value;
  };
  const number = (key: SettingKey, min: number, max: number): number => {
    const value = raw(key) ?? '';
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) fail(key, value, `must be an integer in [${min}, ${max}]`);
    return n;
  };

  const ports: ProxyPorts = {
    admin: number('adminPort', 1, 65535),
    metrics: number('metricsPort', 1, 65535),
    health: number('healthPort', 1, 65535),
    toxiproxy: number('toxiproxyPort', 1, 65535),
    inbound: number('inboundPort', 1, 65535),
    outbound: number('outboundPort', 1, 65535),
  };
  errors.push(...portLayoutErrors(ports));

  const limits: Record<string, string> = { memory: text('proxyMemoryLimit') ?? '' };
  const cpuLimit = text('proxyCpuLimit');
  if (cpuLimit !== undefined) limits.cpu = cpuLimit;
  const initMemory = text('initMemory') ?? '';
  const kernelMemory = text('kernelMemory') ?? '';
  const config: InjectionConfig = {
    proxyImage: text('proxyImage') ?? '',
    initImage: text('initImage') ?? '',
    imagePullPolicy: text('imagePullPolicy') as PullPolicy,
    // 0 would make the proxy root and defeat the UID-based redirection exclusion.
    proxyUid: number('proxyUid', 1, 2147483647),
    ports,
    proxyResources: {
      requests: { cpu: text('proxyCpuRequest') ?? '', memory: text('proxyMemoryRequest') ?? '' },
      limits,
    },
    initResources: {
      requests: { cpu: text('initCpu') ?? '', memory: initMemory },
      limits: { memory: initMemory },
    },
    kernelResources: {
      requests: { cpu: text('initCpu') ?? '', memory: kernelMemory },
      limits: { memory: kernelMemory },
    },
    failOpenResources: {
      // It waits in a blocking read: no CPU between flips, ~4 ms per flip. The
      // request is its weight when it wakes on a busy node (1m = 2 CPU shares
      // flipped ~860 ms after the restarted proxy took its end on the node).
      requests: { cpu: text('initCpu') ?? '', memory: text('failOpenMemory') ?? '' },
      limits: { memory: text('failOpenMemory') ?? '' },
    },
    tokenAudience: text('tokenAudience'),
    // The API server refuses projected tokens shorter than 10 minutes.
    tokenExpirationSeconds: number('tokenExpiration', 600, 2 ** 32 - 1),
    runVolumeSizeLimit: text('runVolumeSize') ?? '',
  };
  if (errors.length > 0) throw new ConfigError(`invalid injection config:\n  ${errors.join('\n  ')}`);
  return config;
}

/** Every port the proxy binds, in one list: a port taken twice would leave one listener without it. */
export function proxyPortList(p: ProxyPorts): Array<[name: keyof ProxyPorts, port: number]> {
  return [['admin', p.admin], ['metrics', p.metrics], ['health', p.health], ['toxiproxy', p.toxiproxy], ['inbound', p.inbound], ['outbound', p.outbound]];
}

function portLayoutErrors(p: ProxyPorts): string[] {
  const errors: string[] = [];
  const all = proxyPortList(p);
  for (let i = 0; i < all.length; i++)
    for (let j = i + 1; j < all.length; j++)
      if (all[i]![1] === all[j]![1]) errors.push(`proxy ${all[i]![0]} and ${all[j]![0]} ports are both ${all[i]![1]}`);
  return errors;
}
