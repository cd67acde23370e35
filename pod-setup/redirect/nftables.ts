import { run, runOrThrow } from '../exec.ts';

export const NFT_TABLE = 'inet faultline';
/** The chain holding the loss rule (netem's fallback). */
const LOSS_CHAIN = 'loss';
/** Loss is drawn from numgen in [0, LOSS_SCALE). */
const LOSS_SCALE = 10_000;

/** Loss the kernel applies itself when sch_netem is missing. */
export interface NftLoss {
  device: string;
  percent: number;
  /** Unix seconds after which the rule matches nothing (kernel-side expiry). */
  expiresAtSec: number;
}

/** Redirection is the capture table's job (capture-rules.ts); this table guards and drops. */
export interface RulesetInput {
  proxyUid: number;
  /** Loopback ports only the proxy UID may connect to (Toxiproxy's API). */
  proxyOnlyPorts?: number[];
  loss?: NftLoss;
}

function set(values: readonly string[]): string {
  return values.length === 1 ? values[0]! : `{ ${values.join(', ')} }`;
}

/**
 * Renders Faultline's guard-and-drop table (the Toxiproxy API guard, netem's
 * loss fallback) as one `nft -f` transaction; capture is its own table.
 *
 * Everything lives in a single table of our own, so we never touch rules of
 * the CNI or kube-proxy, and the leading "create empty, then delete" pair makes
 * re-running converge to exactly this table (nft 1.0.6 has no `destroy`, and a
 * bare `delete` fails when the table does not exist yet). The file is applied
 * atomically: either all of it is live or none of it.
 */
export function renderRuleset(input: RulesetInput): string {
  const lines: string[] = [`table ${NFT_TABLE} {}`, `delete table ${NFT_TABLE}`, `table ${NFT_TABLE} {`];

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
