// Kubelet traffic passes unfaulted: a chaos policy must never make the kubelet
// restart or unready a pod (a liveness probe failing under a 100% abort is a
// restart loop, not an experiment). Pure: callers give what they can see.
//
//   HTTP probes and httpGet lifecycle hooks carry the kubelet's User-Agent:
//   "kube-probe/<major>.<minor>" (probes, gRPC probes included) and
//   "kube-lifecycle/<major>.<minor>" (hooks). A request carrying one is never
//   faulted. Spoofing it only buys a client an unfaulted request.
//
//   TCP and gRPC probes on a raw or TLS connection show no header the proxy
//   can read, so a connection whose source is the node (status.hostIP/hostIPs,
//   given to the proxy through the downward API) passes raw and unfaulted.
//   Probes are the kubelet's only traffic into a pod from the node's address.

import { unmapped } from './original-destination.ts';

const KUBELET_AGENTS = ['kube-probe/', 'kube-lifecycle/'];

export function isKubeletRequest(headers: Record<string, string | string[] | undefined>): boolean {
  const ua = headers['user-agent'];
  if (typeof ua !== 'string') return false;
  return KUBELET_AGENTS.some((agent) => ua.startsWith(agent));
}

/**
 * The node's addresses as the downward API gives them: status.hostIP, and
 * status.hostIPs (comma-separated as the kubelet renders a list field into env).
 */
export function nodeAddresses(hostIP: string | undefined, hostIPs: string | undefined): Set<string> {
  const all = [hostIP ?? '', ...(hostIPs ?? '').split(',')].map((a) => a.trim()).filter((a) => a !== '');
  return new Set(all.map((a) => unmapped(a).toLowerCase()));
}

export function isFromNode(remoteAddress: string | undefined, node: ReadonlySet<string>): boolean {
  return remoteAddress !== undefined && node.has(unmapped(remoteAddress).toLowerCase());
}
