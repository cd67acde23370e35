// The fail-open gate: while the proxy is dead, the pod's traffic bypasses
// capture and reaches the app (inbound) or the network (outbound) directly,
// instead of being redirected to listeners nobody holds (connection refused
// until the kubelet restarts the proxy, with backoff).
//
// The gate is a regular chain, `failopen`, in the capture table itself, jumped
// to first from each NAT base chain that redirects to the proxy: it holds one
// `accept` while the proxy is down and nothing while it is up. It must live in
// the same table: an `accept` ends only its own base chain, never the base
// chains of other tables at the same hook. NAT chains see only a connection's
// first packet, so flipping the gate changes new connections only; a
// connection keeps the path it started on.
//
// Who flips it: `faultline-failopen`, a native sidecar running the bash
// script rendered below (builtins only, plus `nft` on each flip). It learns
// of the proxy's death from the kernel, not by polling: the proxy holds a FIFO
// in the run volume (PROXY_ALIVE_FILE) open for its whole life, opened only
// once its listeners are bound; the watcher blocks reading the other end, and
// a read returns EOF the moment the last writer is gone, which happens when
// the kernel closes a dead process's descriptors (SIGKILL, OOM kill, crash,
// exit). Reopening blocks until the restarted proxy opens its end again.
// Measured (npm run bench:failopen, load ~19 on 2 cores; docs/security.md):
// death to an open gate 70 ms p50 / 162 ms max, most of it the one nft run;
// no CPU while waiting; 3.1 MiB RSS for bash.
//
// Why not the alternatives (docs/security.md "Fail-open when the proxy dies"):
// - nft `tproxy` falls through (NFT_BREAK) when no transparent listener
//   exists, but only in prerouting (inbound), and it needs IP_TRANSPARENT on
//   the proxy's sockets: CAP_NET_ADMIN or CAP_NET_RAW in the proxy, the
//   container that parses untrusted traffic. Outbound would still need a gate.
// - polling /proc/net/tcp{,6} for the listeners every 100–300 ms costs CPU in
//   every pod forever, grows with the pod's connection count (the files list
//   every socket of the netns) and reacts 10–100× slower.
// - BPF sk_lookup falls through natively when the proxy's socket closes
//   (sockmap entries go with their socket), but it steers inbound only and
//   would replace REDIRECT (and SO_ORIGINAL_DST) altogether.

import { PROXY_ALIVE_FILE, RUN_MOUNT_PATH } from '../../contract/pod-layout.ts';

export const FAIL_OPEN_CHAIN = 'failopen';
/** First rule of every capture base chain (prerouting, output). */
export const FAIL_OPEN_JUMP = `jump ${FAIL_OPEN_CHAIN}`;
/** Where the proxy holds its end of the liveness FIFO (the run volume). */
export const PROXY_ALIVE_PATH = `${RUN_MOUNT_PATH}/${PROXY_ALIVE_FILE}`;

export type GateState = 'open' | 'closed';

const TABLE_NAME = /^(inet|ip|ip6) [a-z][a-z0-9_]{0,31}$/;

function assertTable(table: string): void {
  if (!TABLE_NAME.test(table)) throw new Error(`not an nft table reference ("<family> <name>"): ${JSON.stringify(table)}`);
}

/** The gate chain's declaration inside the table; empty (closed) as written at pod start. */
export function gateChainLines(): string[] {
  return [`\tchain ${FAIL_OPEN_CHAIN} {`, '\t}'];
}

/**
 * One atomic nft command line that sets the gate, whatever it held before
 * (flush, then the rule when opening). The counter shows, in `nft list
 * table`, how many connections bypassed the proxy since the gate last opened.
 */
export function gateCommand(table: string, state: GateState): string {
  assertTable(table);
  const chain = `${table} ${FAIL_OPEN_CHAIN}`;
  return state === 'open' ? `flush chain ${chain}; add rule ${chain} counter accept` : `flush chain ${chain}`;
}

/** Single-quoted for bash: nothing inside is expanded. */
function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The watcher, as the bash script the init image carries. Builtins only
 * between flips (read, exec, printf): the one external program is `nft`,
 * run on each flip. It logs one JSON line per flip, shaped like the other
 * containers' pino lines (level 30 info, 50 error; time in ms).
 *
 * The first look must not block (the proxy may be up or not): opening the
 * FIFO read-write never blocks and makes this process a writer, so a
 * read-only open beside it returns at once; with our own writer closed, a
 * read then times out while the proxy holds its end and sees EOF at once when
 * nobody does.
 */
export function renderWatcherScript(table: string, alivePath: string = PROXY_ALIVE_PATH): string {
  const open = shellQuote(gateCommand(table, 'open'));
  const closed = shellQuote(gateCommand(table, 'closed'));
  return `#!/bin/bash
# faultline-failopen: opens the fail-open gate (${table} ${FAIL_OPEN_CHAIN}) while the
# proxy is dead, closes it while the proxy lives. Rendered by
# pod-setup/redirect/fail-open-gate.ts; do not edit.
set -u
alive=${shellQuote(alivePath)}

log() { # level message
  local us=\${EPOCHREALTIME/./}
  printf '{"level":%d,"time":%d,"name":"failopen","msg":"%s"}\\n' "$1" "\${us:0:-3}" "$2"
}

gate() { # state nft-command
  if ! nft "$2"; then
    log 50 "could not set the fail-open gate $1 (nft failed); exiting for the kubelet to restart us"
    exit 1
  fi
  log 30 "$3"
}

require_fifo() { # a regular file put in its place would make every open return at once: a busy loop
  if [[ ! -p $alive ]]; then
    log 50 "$alive is not a FIFO (faultline-init creates it); exiting"
    exit 1
  fi
}

require_fifo
exec {rw}<>"$alive" {r}<"$alive"
exec {rw}>&-
read -r -t 0.05 -u "$r" _
[[ $? -gt 128 ]] && up=1 || up=0

while :; do
  if ((up)); then
    gate closed ${closed} 'proxy is up: traffic is captured'
    # Returns only at EOF: every writer is gone, i.e. the proxy's process ended.
    while read -r -u "$r" _; do :; done
    gate open ${open} 'proxy is down: traffic bypasses it (fail-open)'
  else
    gate open ${open} 'proxy is not up: traffic bypasses it (fail-open)'
  fi
  exec {r}<&-
  require_fifo
  # Blocks until the (restarted) proxy opens its end.
  exec {r}<"$alive"
  up=1
done
`;
}
