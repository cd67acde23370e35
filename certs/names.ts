// The names a serving certificate must carry, and the validation of every
// name a user can type. Pure functions, no I/O.
import { isIP, isIPv4 } from 'node:net';

/** A subjectAltName entry in canonical form, so sets of names compare exactly. */
export type SubjectAltName =
  | { type: 'dns'; name: string }
  /** `bytes` is the 4- or 16-byte network-order address the certificate encodes. */
  | { type: 'ip'; address: string; bytes: Buffer };

// Kubernetes names: a Service name is an RFC 1035 label (must start with a
// letter, it becomes a DNS name), a namespace an RFC 1123 label.
const RFC1035_LABEL = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const RFC1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
// A DNS host label as it may appear in a SAN (case-insensitive; stored lowercase).
const HOST_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function validateServiceName(name: string): void {
  if (!RFC1035_LABEL.test(name)) {
    throw new Error(
      `invalid service name '${name}': a Service name is at most 63 lowercase letters, digits or '-', starting with a letter and ending with a letter or digit`,
    );
  }
}

export function validateNamespace(ns: string): void {
  if (!RFC1123_LABEL.test(ns)) {
    throw new Error(
      `invalid namespace '${ns}': a namespace is at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit`,
    );
  }
}

/**
 * Parses one extra host: an IPv4/IPv6 literal becomes an IP SAN, anything else
 * must be a DNS name (optionally with a leading `*.` wildcard label).
 */
export function parseHost(host: string): SubjectAltName {
  // IPv6 literals are often written bracketed, as in URLs; accept that form.
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (bare.includes('%')) {
    throw new Error(`invalid host '${host}': an IPv6 zone index (%…) cannot appear in a certificate`);
  }
  if (isIP(bare) !== 0) {
    const bytes = ipToBytes(bare);
    return { type: 'ip', address: bytesToIp(bytes), bytes };
  }
  const name = host.toLowerCase();
  const labels = name.split('.');
  const checked = labels[0] === '*' ? labels.slice(1) : labels;
  if (name.length > 253 || checked.length === 0 || !checked.every((l) => HOST_LABEL.test(l))) {
    throw new Error(
      `invalid host '${host}': expected an IPv4/IPv6 address or a DNS name (labels of letters, digits and '-', optionally starting with '*.')`,
    );
  }
  return { type: 'dns', name };
}

/**
 * The SANs of the webhook's serving certificate. The API server dials
 * `NAME.NS.svc` (that is what `clientConfig.service` resolves to); the other
 * forms cover in-cluster clients using search paths or the full cluster domain.
 * Extra hosts (e.g. 127.0.0.1 for `faultline up`, or a URL-based webhook host)
 * follow; duplicates are dropped, order is preserved.
 */
export function servingNames(service: string, namespace: string, hosts: readonly string[] = []): SubjectAltName[] {
  validateServiceName(service);
  validateNamespace(namespace);
  const base = [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
  const all: SubjectAltName[] = [...base.map((name) => ({ type: 'dns' as const, name })), ...hosts.map(parseHost)];
  const seen = new Set<string>();
  return all.filter((san) => {
    const key = sanKey(san);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** A stable identity for a SAN: DNS names by lowercase name, IPs by their bytes. */
export function sanKey(san: SubjectAltName): string {
  return san.type === 'dns' ? `dns:${san.name.toLowerCase()}` : `ip:${san.bytes.toString('hex')}`;
}

/** True when both lists hold the same set of names (order-insensitive). */
export function sameNames(a: readonly SubjectAltName[], b: readonly SubjectAltName[]): boolean {
  const ka = new Set(a.map(sanKey));
  const kb = new Set(b.map(sanKey));
  return ka.size === kb.size && [...ka].every((k) => kb.has(k));
}

/** Network-order bytes of an address already accepted by `net.isIP`. */
function ipToBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  // IPv6: expand "::" and an optional trailing dotted IPv4 part into 8 groups.
  let groups: string[];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
  let text = ip;
  if (v4?.[1]) {
    const [a, b, c, d] = v4[1].split('.').map(Number) as [number, number, number, number];
    text = ip.slice(0, -v4[1].length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const h = head === '' ? [] : head.split(':');
  if (tail === undefined) {
    groups = h;
  } else {
    const t = tail === '' ? [] : tail.split(':');
    groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  }
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** Canonical text of a 4- or 16-byte address (IPv6 compressed by the URL parser, RFC 5952). */
export function bytesToIp(bytes: Buffer): string {
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.length !== 16) throw new Error(`an IP address has 4 or 16 bytes, got ${bytes.length}`);
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}
