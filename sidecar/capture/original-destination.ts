// Where a redirected connection was going. nft's `redirect` rewrites the
// destination to the proxy's listener; conntrack keeps the original, and
// getsockopt(SO_ORIGINAL_DST) reads it back (IPv4: SOL_IP/SO_ORIGINAL_DST,
// IPv6: SOL_IPV6/IP6T_SO_ORIGINAL_DST, both 80). Node has no API for it, so
// koffi (prebuilt binaries, no compiler) calls libc's getsockopt on the
// socket's file descriptor; what that costs per connection is in
// bench/original-destination.ts.

import { createRequire } from 'node:module';
import net from 'node:net';

const SOL_IP = 0;
const SOL_IPV6 = 41;
/** SO_ORIGINAL_DST (linux/netfilter_ipv4.h) and IP6T_SO_ORIGINAL_DST (linux/netfilter_ipv6/ip6_tables.h). */
const SO_ORIGINAL_DST = 80;
const AF_INET = 2;
const AF_INET6 = 10;
const SOCKADDR_IN6_LEN = 28;

export interface Destination {
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
}

export type OriginalDestination =
  | { ok: true; destination: Destination; redirected: boolean }
  | { ok: false; error: string };

/** Decodes a sockaddr_in / sockaddr_in6 as getsockopt fills it (family in host order, port and address in network order). */
export function decodeSockaddr(buf: Uint8Array, length: number): Destination {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (length < 2) throw new Error(`sockaddr of ${length} bytes`);
  const family = view.getUint16(0, true);
  if (family === AF_INET) {
    if (length < 8) throw new Error(`sockaddr_in of ${length} bytes`);
    return { family: 'IPv4', port: view.getUint16(2, false), address: `${buf[4]}.${buf[5]}.${buf[6]}.${buf[7]}` };
  }
  if (family === AF_INET6) {
    if (length < 24) throw new Error(`sockaddr_in6 of ${length} bytes`);
    const groups: number[] = [];
    for (let i = 0; i < 8; i++) groups.push(view.getUint16(8 + i * 2, false));
    return { family: 'IPv6', port: view.getUint16(2, false), address: canonicalIPv6(groups) };
  }
  throw new Error(`unexpected address family ${family}`);
}

/**
 * The RFC 5952 text form ("fd00::1") of eight 16-bit groups, as the WHATWG
 * URL parser serializes an IPv6 host: hex without leading zeros, the first
 * longest run of two or more zero groups as "::". Once per IPv6 connection:
 * 0.26-0.58 µs, against 1.5-2.0 µs for serializing through `new URL` (three
 * alternating rounds, 2026-11-26).
 */
export function canonicalIPv6(groups: readonly number[]): string {
  let runStart = -1;
  let runLength = 1;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === 0) j++;
    if (j - i > runLength) [runStart, runLength] = [i, j - i];
    i = j;
  }
  const hex = (from: number, to: number): string => groups.slice(from, to).map((g) => g.toString(16)).join(':');
  return runStart < 0 ? hex(0, groups.length) : `${hex(0, runStart)}::${hex(runStart + runLength, groups.length)}`;
}

/** "::ffff:10.0.0.1" → "10.0.0.1": a dual-stack listener reports IPv4 peers in mapped form. */
export function unmapped(address: string): string {
  return address.toLowerCase().startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

type GetSockOpt = (fd: number, level: number, name: number, value: Buffer, length: [number]) => number;

// One buffer for every call: getsockopt is synchronous and Node runs one call at a time.
const scratch = Buffer.alloc(SOCKADDR_IN6_LEN);
const scratchLength: [number] = [SOCKADDR_IN6_LEN];

let native: { getsockopt: GetSockOpt; errno: () => number; errnoName: (n: number) => string } | undefined;

function loadNative(): NonNullable<typeof native> {
  if (native) return native;
  // Loaded on first use: the proxy only needs it in capture mode, and the
  // webhook and CLI never pay for the native module.
  const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
  // null: the symbols already in the process (Node links libc, glibc or musl alike).
  const libc = koffi.load(null);
  const getsockopt = libc.func('int getsockopt(int fd, int level, int optname, _Out_ uint8_t *optval, _Inout_ uint32_t *optlen)') as unknown as GetSockOpt;
  const names = new Map<number, string>(Object.entries(koffi.os.errno).map(([k, v]) => [v, k]));
  native = { getsockopt, errno: () => koffi.errno(), errnoName: (n) => names.get(n) ?? `errno ${n}` };
  return native;
}

/** The socket's file descriptor, or undefined if it has none (closed, or not a TCP socket). */
function fdOf(socket: net.Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/**
 * The connection's original destination and whether it differs from where it
 * actually arrived (the listener): `redirected: false` means the client
 * connected to the listener itself, which a capturing proxy must refuse.
 */
export function originalDestination(socket: net.Socket): OriginalDestination {
  const fd = fdOf(socket);
  if (fd === undefined) return { ok: false, error: 'socket has no file descriptor' };
  const local = socket.localAddress;
  const localPort = socket.localPort;
  if (local === undefined || localPort === undefined) return { ok: false, error: 'socket has no local address' };
  // A dual-stack listener holds IPv4 connections on an AF_INET6 socket; their
  // conntrack entry is IPv4, read at SOL_IP.
  const ipv4 = net.isIPv4(unmapped(local));
  const lib = loadNative();
  scratchLength[0] = SOCKADDR_IN6_LEN;
  const rc = lib.getsockopt(fd, ipv4 ? SOL_IP : SOL_IPV6, SO_ORIGINAL_DST, scratch, scratchLength);
  if (rc !== 0) {
    const errno = lib.errno();
    // ENOENT: conntrack has no entry (nf_conntrack not loaded, or not tracked).
    return { ok: false, error: `getsockopt(SO_ORIGINAL_DST): ${lib.errnoName(errno)}` };
  }
  let destination: Destination;
  try {
    destination = decodeSockaddr(scratch, scratchLength[0]);
  } catch (err) {
    return { ok: false, error: `getsockopt(SO_ORIGINAL_DST): ${(err as Error).message}` };
  }
  const redirected = !(destination.port === localPort && destination.address === unmapped(local));
  return { ok: true, destination, redirected };
}
