import { isIPv4, isIPv6 } from 'node:net';
import { run, runOrThrow } from '../exec.ts';
import { FAIL_OPEN_JUMP, gateChainLines, renderWatcherScript } from './fail-open-gate.ts';

export const NFT_TABLE = 'inet faultline';
/** The chain holding the loss rule (netem's fallback). */
const LOSS_CHAIN = 'loss';
/** Loss is drawn from numgen in [0, LOSS_SCALE). */
const LOSS_SCALE = 10_000;

export interface ResolvedUpstream {
  host: string;
  port: number;
  listenPort: number;
  /** Addresses the host resolved to at init time; empty = match the port alone. */
  addresses: string[];
}

/** Loss the kernel applies itself when sch_netem is missing. */
export interface NftLoss {
  device: string;
  percent: number;
  /** Unix seconds after which the rule matches nothing (kernel-side expiry). */
  expiresAtSec: number;
}

export interface RulesetInput {
  proxyUid: number;
  inbound: Array<{ port: number; listenPort: number }>;
  outbound: ResolvedUpstream[];
  /** Loopback ports only the proxy UID may connect to (Toxiproxy's API). */
  proxyOnlyPorts?: number[];
  loss?: NftLoss;
}

function set(values: readonly string[]): string {
  return values.length === 1 ? values[0]! : `{ ${values.join(', ')} }`;
}

/**
 * Renders Faultline's whole nftables state as one `nft -f` transaction.
 *
 * Everything lives in a single table of our own, so we never touch rules of
 * the CNI or kube-proxy, and the leading "create empty, then delete" pair makes
 * re-running converge to exactly this table (nft 1.0.6 has no `destroy`, and a
 * bare `delete` fails when the table does not exist yet). The file is applied
 * atomically: either all of it is live or none of it.
 */
export function renderRuleset(input: RulesetInput): string {
  const lines: string[] = [`table ${NFT_TABLE} {}`, `delete table ${NFT_TABLE}`, `table ${NFT_TABLE} {`];

  // The fail-open gate, first in each redirecting chain, closed (empty) at pod
  // start: faultline-failopen opens it while the proxy is dead. Always there,
  // so the watcher of a pod with nothing to redirect has a gate to flip.
  lines.push(...gateChainLines());

  if (input.inbound.length > 0) {
    lines.push(
      '\tchain prerouting {',
      '\t\ttype nat hook prerouting priority dstnat; policy accept;',
      `\t\t${FAIL_OPEN_JUMP}`,
      ...input.inbound.map((e) => `\t\ttcp dport ${e.port} redirect to :${e.listenPort}`),
      '\t}',
    );
  }

  if (input.outbound.length > 0) {
    const resolved: string[] = [];
    const portOnly: string[] = [];
    for (const u of input.outbound) {
      const v4 = u.addresses.filter((a) => isIPv4(a));
      const v6 = u.addresses.filter((a) => isIPv6(a));
      if (v4.length > 0) resolved.push(`\t\tip daddr ${set(v4)} tcp dport ${u.port} redirect to :${u.listenPort}`);
      if (v6.length > 0) resolved.push(`\t\tip6 daddr ${set(v6)} tcp dport ${u.port} redirect to :${u.listenPort}`);
      if (v4.length === 0 && v6.length === 0) portOnly.push(`\t\ttcp dport ${u.port} redirect to :${u.listenPort}`);
    }
    lines.push(
      '\tchain output {',
      // -100 is dstnat's value; nft 1.0.6 accepts the name only on prerouting.
      '\t\ttype nat hook output priority -100; policy accept;',
      `\t\t${FAIL_OPEN_JUMP}`,
      // The proxy dials the real upstream itself; without this its own
      // connections would be redirected back to it forever.
      `\t\tmeta skuid ${input.proxyUid} return`,
      ...resolved,
    );
    if (portOnly.length > 0) {
      // A port-only match would also catch the proxy's hop to the app on
      // 127.0.0.1 and the app's own loopback services: leave loopback alone.
      lines.push('\t\toifname "lo" return', ...portOnly);
    }
    lines.push('\t}');
  }

  const proxyOnly = input.proxyOnlyPorts ?? [];
  if (proxyOnly.length > 0) {
    lines.push(
      '\tchain proxy_only {',
      // Toxiproxy's API has no authentication and no unix-socket mode: any
      // process in the pod could create a proxy on 0.0.0.0 relaying to a
      // loopback-only service. Its socket owner is the only identity there is.
      '\t\ttype filter hook output priority filter; policy accept;',
      `\t\toifname "lo" tcp dport ${set(proxyOnly.map(String))} meta skuid != ${input.proxyUid} reject with tcp reset`,
      '\t}',
    );
  }

  if (input.loss && lossThreshold(input.loss.percent) > 0) {
    const { device, percent, expiresAtSec } = input.loss;
    const threshold = lossThreshold(percent);
    // numgen yields 0..9999 uniformly (0.01-point resolution); `meta random`
    // would be a raw 32-bit value, and `< 20` would then drop almost nothing.
    // 100% needs no draw (and `< 10000` is out of numgen's range).
    const draw = threshold >= LOSS_SCALE ? '' : ` numgen random mod ${LOSS_SCALE} < ${threshold}`;
    lines.push(
      `\tchain ${LOSS_CHAIN} {`,
      // netem on the root qdisc acts on egress, so the fallback drops the
      // pod's outgoing packets on the same device and nothing else.
      '\t\ttype filter hook postrouting priority filter; policy accept;',
      `\t\tmeta time < ${expiresAtSec} oifname "${device}"${draw} counter drop`,
      '\t}',
    );
  }

  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/** The table whose `failopen` gate faultline-failopen flips (the one holding the redirects). */
export const GATED_TABLE = NFT_TABLE;

/** faultline-failopen's script for that gate (images/build.ts ships it in the init image). */
export function renderFailOpenWatcher(): string {
  return renderWatcherScript(GATED_TABLE);
}

/** numgen draws integers: a percent becomes a threshold in hundredths of a point. */
export function lossThreshold(percent: number): number {
  return Math.min(LOSS_SCALE, Math.max(0, Math.round((percent * LOSS_SCALE) / 100)));
}

export async function applyRuleset(ruleset: string): Promise<void> {
  await runOrThrow(['nft', '-f', '-'], ruleset);
}

/**
 * Takes the loss chain out of the ruleset once its fault has expired. Its
 * `meta time` already stops it matching; removing it leaves nothing of an
 * ended fault behind, even across a faultline-kernel restart. The rest of the
 * table (redirection) stays. False when there is no such chain.
 */
export async function removeLossChain(): Promise<boolean> {
  const listed = await run(['nft', 'list', 'chain', ...NFT_TABLE.split(' '), LOSS_CHAIN]);
  if (listed.code !== 0) {
    if (/No such file or directory/.test(listed.stderr)) return false;
    throw new Error(`nft list chain ${NFT_TABLE} ${LOSS_CHAIN} failed (exit ${listed.code}): ${listed.stderr.trim()}`);
  }
  // One transaction: a base chain must be empty to be deleted.
  await applyRuleset(`flush chain ${NFT_TABLE} ${LOSS_CHAIN}\ndelete chain ${NFT_TABLE} ${LOSS_CHAIN}\n`);
  return true;
}
