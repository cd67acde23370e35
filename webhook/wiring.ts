// Derives a pod's TrafficWiring (which ports and upstreams the proxy fronts)
// from its spec and annotations. Pure: the same pod always gets the same wiring.
import type { V1Container, V1Pod, V1Probe, V1LifecycleHandler } from '@kubernetes/client-node';
import type { TrafficWiring } from '../contract/plans.ts';
import { EXCLUDE_INBOUND_PORTS_ANNOTATION, OUTBOUND_ANNOTATION } from '../policies/wellknown.ts';
import { PROXY_CONTAINER_NAME } from '../contract/pod-layout.ts';
import { MAX_LISTENERS, proxyReservedPort, type InjectionConfig } from './config.ts';

/** Why a pod cannot be wired; the mutate handler turns it into a skip. */
export class WiringError extends Error {
  readonly reason: 'invalid-annotation' | 'port-conflict';
  constructor(reason: WiringError['reason'], message: string) {
    super(message);
    this.reason = reason;
  }
}

/**
 * Containers that serve traffic for the pod's whole life: the app containers and
 * native sidecars (init containers with restartPolicy Always). Plain init
 * containers finish before any traffic arrives, so their ports are not wired.
 */
function servingContainers(pod: V1Pod): V1Container[] {
  const sidecars = (pod.spec?.initContainers ?? []).filter((c) => c.restartPolicy === 'Always');
  return [...sidecars, ...(pod.spec?.containers ?? [])];
}

export interface Upstream {
  host: string;
  port: number;
}

/** `extraOutbound`: upstreams named by the pod's policies, wired after the annotation's (duplicates dropped). */
export function renderWiring(pod: V1Pod, config: InjectionConfig, extraOutbound: readonly Upstream[] = []): TrafficWiring {
  const containers = servingContainers(pod);
  const annotations = pod.metadata?.annotations ?? {};

  const appPorts = new Set<number>();
  for (const c of containers)
    for (const p of c.ports ?? []) if ((p.protocol ?? 'TCP') === 'TCP') appPorts.add(p.containerPort);

  for (const port of appPorts)
    if (proxyReservedPort(config.ports, port))
      throw new WiringError('port-conflict', `container port ${port} collides with a port reserved by ${PROXY_CONTAINER_NAME}`);

  // Kubelet probes and lifecycle hooks come from the node; sending them through the
  // proxy would let an HTTP fault fail a liveness probe and restart the pod.
  const excluded = new Set<number>();
  for (const c of containers) for (const port of kubeletPorts(c)) excluded.add(port);
  const annotated = annotations[EXCLUDE_INBOUND_PORTS_ANNOTATION];
  if (annotated !== undefined) for (const port of parsePortList(annotated)) excluded.add(port);

  // Sorted so the listener a port gets does not depend on container order.
  const inboundPorts = [...appPorts].filter((p) => !excluded.has(p)).sort((a, b) => a - b);
  const outboundTargets = annotations[OUTBOUND_ANNOTATION] !== undefined ? parseUpstreams(annotations[OUTBOUND_ANNOTATION]) : [];
  for (const u of extraOutbound) {
    const host = u.host.toLowerCase().replace(/\.$/, '');
    if (!outboundTargets.some((t) => t.host === host && t.port === u.port)) outboundTargets.push({ host, port: u.port });
  }
  if (inboundPorts.length > MAX_LISTENERS || outboundTargets.length > MAX_LISTENERS)
    throw new WiringError('port-conflict', `the proxy has ${MAX_LISTENERS} listeners per direction; this pod needs ${Math.max(inboundPorts.length, outboundTargets.length)}`);

  return {
    proxyUid: config.proxyUid,
    inbound: inboundPorts.map((port, i) => ({ port, listenPort: config.ports.inboundBase + i })),
    outbound: outboundTargets.map((u, i) => ({ ...u, listenPort: config.ports.outboundBase + i })),
    excludeInboundPorts: [...excluded].sort((a, b) => a - b),
    toxiproxyPort: config.ports.toxiproxy,
  };
}

/** Numeric ports the kubelet connects to for this container's probes and hooks. */
function kubeletPorts(c: V1Container): number[] {
  const named = new Map<string, number>();
  for (const p of c.ports ?? []) if (p.name !== undefined) named.set(p.name, p.containerPort);
  const ports: number[] = [];
  // The kubelet resolves a named probe port against the same container's ports.
  const add = (port: number | string | undefined): void => {
    const n = typeof port === 'number' ? port : port !== undefined && /^\d+$/.test(port) ? Number(port) : named.get(port ?? '');
    if (n !== undefined) ports.push(n);
  };
  const probe = (p: V1Probe | undefined): void => {
    add(p?.httpGet?.port as number | string | undefined);
    add(p?.tcpSocket?.port as number | string | undefined);
    add(p?.grpc?.port);
  };
  const hook = (h: V1LifecycleHandler | undefined): void => {
    add(h?.httpGet?.port as number | string | undefined);
    add(h?.tcpSocket?.port as number | string | undefined);
  };
  probe(c.livenessProbe);
  probe(c.readinessProbe);
  probe(c.startupProbe);
  hook(c.lifecycle?.postStart);
  hook(c.lifecycle?.preStop);
  return ports;
}

function parsePort(text: string, annotation: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 65535)
    throw new WiringError('invalid-annotation', `annotation ${annotation}: '${text}' is not a port number (1-65535)`);
  return n;
}

/** "8081, 9090" → [8081, 9090]; empty entries are tolerated (trailing commas). */
function parsePortList(value: string): number[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => parsePort(s, EXCLUDE_INBOUND_PORTS_ANNOTATION));
}

// RFC 1123 DNS name (what Services and most upstreams are), or an IPv4 literal.
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;
const IPV6 = /^[0-9a-f:.]+$/i;

/** "redis:6379, [fd00::1]:80" → upstreams in annotation order, duplicates dropped. */
export function parseUpstreams(value: string): Upstream[] {
  const seen = new Set<string>();
  const upstreams: Upstream[] = [];
  for (const entry of value.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const m = /^\[([^\]]+)\]:([^:]+)$/.exec(entry) ?? /^([^:[\]]+):([^:]+)$/.exec(entry);
    const bracketed = entry.startsWith('[');
    if (!m || !(bracketed ? IPV6.test(m[1]!) : HOSTNAME.test(m[1]!)))
      throw new WiringError('invalid-annotation', `annotation ${OUTBOUND_ANNOTATION}: '${entry}' is not host:port (IPv6 as [addr]:port)`);
    const host = m[1]!.toLowerCase().replace(/\.$/, '');
    const port = parsePort(m[2]!, OUTBOUND_ANNOTATION);
    const key = `${host}:${port}`;
    if (!seen.has(key)) {
      seen.add(key);
      upstreams.push({ host, port });
    }
  }
  return upstreams;
}
