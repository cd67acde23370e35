// CIDRs as the exclusion annotations and the capture wiring carry them. They
// end up inside an nft ruleset, so only a canonical address/prefix passes.

import { isIP } from 'node:net';

/** "10.0.0.0/8", "fd00::/64", or a bare address (a /32 or /128); undefined when malformed. */
export function parseCidr(text: string): { address: string; prefix: number; family: 4 | 6 } | undefined {
  const parts = text.split('/');
  if (parts.length > 2) return undefined;
  const family = isIP(parts[0]!) as 0 | 4 | 6;
  if (family === 0) return undefined;
  const max = family === 4 ? 32 : 128;
  if (parts.length === 1) return { address: parts[0]!, prefix: max, family };
  if (!/^\d{1,3}$/.test(parts[1]!)) return undefined;
  const prefix = Number(parts[1]);
  return prefix <= max ? { address: parts[0]!, prefix, family } : undefined;
}
