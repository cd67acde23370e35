import { readFileSync } from 'node:fs';

/** Capability numbers from linux/capability.h, for the ones Faultline needs. */
export const CAPABILITIES = {
  NET_ADMIN: 12,
  NET_RAW: 13,
  SYS_ADMIN: 21,
  MKNOD: 27,
} as const;
export type CapabilityName = keyof typeof CAPABILITIES;

/** Parses the CapEff hex mask out of /proc/<pid>/status text. */
export function parseCapEff(status: string): bigint {
  const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(status);
  if (!m?.[1]) throw new Error('no CapEff line in /proc/self/status');
  return BigInt(`0x${m[1]}`);
}

export function missingCapabilities(capEff: bigint, required: readonly CapabilityName[]): CapabilityName[] {
  return required.filter((name) => (capEff & (1n << BigInt(CAPABILITIES[name]))) === 0n);
}

/**
 * Checks the effective set before anything is applied, so a container
 * without the capability fails with its name instead of with a netlink EPERM
 * halfway through a plan.
 */
export function assertCapabilities(required: readonly CapabilityName[], why: string, statusPath = '/proc/self/status'): void {
  const missing = missingCapabilities(parseCapEff(readFileSync(statusPath, 'utf8')), required);
  if (missing.length > 0) {
    throw new Error(
      `missing capabilit${missing.length > 1 ? 'ies' : 'y'} ${missing.map((c) => `CAP_${c}`).join(', ')} (needed for ${why}); ` +
        `add ${missing.map((c) => c).join(', ')} to the container's securityContext.capabilities.add`,
    );
  }
}
